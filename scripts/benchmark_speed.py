"""Time the extractor and the ``fewshot identify`` command on this machine.

Prints, as medians of repeated runs:
- seconds to embed 60 s of speech (batched) and the real-time factor;
- the same for the feature front end alone (the baseline every run pays);
- seconds for ``fewshot identify`` of one 5 s file from a cold start (a new
  process) and within one process (extractor and group already loaded).

Example
-------
    python scripts/benchmark_speed.py --data ../shared/data/dev
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speech_for_benchmark(data, sr):
    """60 s of real speech from ``data`` (first speakers, in name order), or a synthetic voice."""
    import numpy as np

    from fewshot.eval.protocol import protocol_speech, speaker_folders

    if data and Path(data).is_dir():
        parts = []
        for name, files in speaker_folders(data).items():
            parts.append(protocol_speech(files, sr=sr))
            if sum(map(len, parts)) >= 65 * sr:
                break
        return np.concatenate(parts)[: 65 * sr], f"real speech from {data}"
    t = np.arange(65 * sr) / sr
    y = np.sign(np.sin(2 * np.pi * 140 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.1 * y).astype(np.float32), "a synthetic voice (no --data folder found)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/dev", help="speaker-per-folder tree to take speech from")
    p.add_argument("--model", help="extractor model directory (default: the shipped model)")
    p.add_argument("--repeats", type=int, default=7, help="runs per measurement (median reported)")
    args = p.parse_args(argv)

    import soundfile as sf

    from fewshot.extractor import load_extractor
    from fewshot.features import log_mel
    from fewshot.identifier import SpeakerIdentifier

    ex = load_extractor(args.model)
    sr = ex.feature_config.sr
    y, origin = speech_for_benchmark(args.data, sr)
    sixty = y[: 60 * sr]
    print(f"audio: {origin}")
    print(f"model: {ex.model_id} ({ex.dim}-d embedding), CPU threads: {os.cpu_count()}")
    ex.embed([sixty])  # warm-up: trace the graph once
    t_feat = median_time(lambda: log_mel(sixty, config=ex.feature_config), args.repeats)
    t_embed = median_time(lambda: ex.embed([sixty]), args.repeats)
    print(f"log-mel of 60 s:   {t_feat:.3f} s  ({60 / t_feat:.0f}x real time)")
    print(f"embed 60 s:        {t_embed:.3f} s  ({60 / t_embed:.0f}x real time; "
          f"{t_embed / t_feat:.1f}x the front end alone)")

    with tempfile.TemporaryDirectory() as home:
        enroll = [y[i * 15 * sr:(i + 1) * 15 * sr] for i in range(3)]
        sid = SpeakerIdentifier(ex, store=Path(home) / "s.sqlite")
        for i, e in enumerate(enroll):
            sid.enroll("bench", f"speaker{i}", [e], sr_in=sr)
        clip = Path(home) / "five.wav"
        sf.write(clip, y[60 * sr:65 * sr], sr)
        sid.identify("bench", clip)
        t_warm = median_time(lambda: sid.identify("bench", clip), args.repeats)
        env = {**os.environ, "FEWSHOT_HOME": home}
        cmd = [sys.executable, "-m", "fewshot.cli", "identify", "--group", "bench", "--store",
               str(Path(home) / "s.sqlite"), str(clip)] + (["--model", args.model] if args.model else [])
        t_cold = median_time(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True),
                             max(3, args.repeats // 2))
    print(f"identify 5 s file, within one process: {t_warm:.3f} s")
    print(f"identify 5 s file, cold start (new process, `fewshot identify`): {t_cold:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
