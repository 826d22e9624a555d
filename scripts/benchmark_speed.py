"""Time the extractor and the ``fewshot identify`` command on this machine, backend by backend.

Prints, side by side for the Keras model and the LiteRT float and int8 models
(a backend the model directory lacks is shown as ``-``), as medians of
repeated runs:
- seconds for ``fewshot identify`` of one 5 s file from a cold start (a new
  process) and within one process (extractor and group already loaded);
- seconds to embed one 60 s utterance, and a batch of twelve 5 s pieces of it,
  with the real-time factor;
- the log-mel front end alone on 60 s (the same for every backend).

Example
-------
    python scripts/benchmark_speed.py --data ../shared/data/dev --repeats 5
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

BACKENDS = ("keras", "litert", "litert-int8")


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speech_for_benchmark(data, sr):
    """110 s of real speech from ``data`` (first speakers, in name order), or a synthetic voice."""
    import numpy as np

    from fewshot.eval.protocol import protocol_speech, speaker_folders

    if data and Path(data).is_dir():
        parts = []
        for name, files in speaker_folders(data).items():
            parts.append(protocol_speech(files, sr=sr))
            if sum(map(len, parts)) >= 110 * sr:
                break
        return np.concatenate(parts)[: 110 * sr], f"real speech from {data} (first speakers in name order)"
    t = np.arange(110 * sr) / sr
    y = np.sign(np.sin(2 * np.pi * 140 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.1 * y).astype(np.float32), "a synthetic voice (no --data folder found)"


def enrolled_store(home: Path, model, y, sr) -> Path:
    """A store with a group of three people (15 s each, the first 45 s of ``y``), and the 5 s file to identify."""
    import soundfile as sf

    from fewshot.extractor import load_extractor
    from fewshot.identifier import SpeakerIdentifier

    sid = SpeakerIdentifier(load_extractor(model), store=home / "s.sqlite")
    for i in range(3):
        sid.enroll("bench", f"speaker{i}", [y[i * 15 * sr:(i + 1) * 15 * sr]], sr_in=sr)
    sf.write(home / "five.wav", y[105 * sr:110 * sr], sr)
    return home / "five.wav"


def measure(backend, model, y, home, clip, repeats, cold_repeats) -> dict:
    """Seconds per task for one backend: ``cold``, ``warm``, ``long`` (60 s) and ``batch`` (12 x 5 s)."""
    from fewshot.extractor import load_extractor
    from fewshot.identifier import SpeakerIdentifier

    ex = load_extractor(model, backend=backend)
    sr = ex.feature_config.sr
    sixty = y[45 * sr:105 * sr]
    pieces = [sixty[i * 5 * sr:(i + 1) * 5 * sr] for i in range(12)]
    sid = SpeakerIdentifier(ex, store=home / "s.sqlite")
    sid.identify("bench", clip)  # warm-up: first calls build the graph or allocate the interpreter
    ex.embed(pieces)
    out = {"warm": median_time(lambda: sid.identify("bench", clip), repeats),
           "long": median_time(lambda: ex.embed([sixty]), repeats),
           "batch": median_time(lambda: ex.embed(pieces), repeats)}
    env = {**os.environ, "FEWSHOT_HOME": str(home), "FEWSHOT_BACKEND": backend}
    cmd = [sys.executable, "-m", "fewshot.cli", "identify", "--group", "bench", "--store", str(home / "s.sqlite"),
           str(clip)] + (["--model", str(model)] if model else [])
    out["cold"] = median_time(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True), cold_repeats)
    return out


def available(model) -> list[str]:
    """The backends the model directory has files for."""
    import json

    from fewshot.extractor import default_model_dir

    meta = json.loads((Path(model or default_model_dir()) / "meta.json").read_text())
    lite = meta.get("litert", {})
    return ["keras"] + [b for b, p in (("litert", "float"), ("litert-int8", "int8")) if p in lite]


def table(results: dict) -> list[str]:
    """The side-by-side lines, one per measurement."""
    rows = [("`fewshot identify` 5 s file, cold start", "cold", None),
            ("identify 5 s file, within one process", "warm", None),
            ("embed one 60 s utterance", "long", 60.0),
            ("embed 12 pieces of 5 s, one call", "batch", 60.0)]
    lines = [f"{'':42s}" + "".join(f"{b:>20s}" for b in BACKENDS)]
    for label, key, seconds in rows:
        cells = []
        for b in BACKENDS:
            t = results.get(b, {}).get(key)
            cells.append("-" if t is None else f"{t:.3f} s" + (f" ({seconds / t:.0f}x)" if seconds else ""))
        lines.append(f"{label:42s}" + "".join(f"{c:>20s}" for c in cells))
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/dev", help="speaker-per-folder tree to take speech from")
    p.add_argument("--model", help="extractor model directory (default: the shipped model)")
    p.add_argument("--repeats", type=int, default=5, help="runs per measurement (median reported)")
    args = p.parse_args(argv)

    from fewshot.config import FeatureConfig
    from fewshot.extractor import load_extractor
    from fewshot.features import log_mel

    cfg = FeatureConfig()
    y, origin = speech_for_benchmark(args.data, cfg.sr)
    print(f"audio: {origin}: 3 people enrolled from 0-45 s (15 s each), 45-105 s embedded as one 60 s utterance "
          f"and as 12 pieces of 5 s, 105-110 s the file identified")
    print(f"model: {load_extractor(args.model).model_id}, CPU threads: {os.cpu_count()}, medians of {args.repeats} "
          f"runs (cold start: {args.repeats} new processes)")
    t_feat = median_time(lambda: log_mel(y[: 60 * cfg.sr], config=cfg), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        clip = enrolled_store(home, args.model, y, cfg.sr)
        results = {b: measure(b, args.model, y, home, clip, args.repeats, args.repeats) for b in available(args.model)}
    print("\n".join(table(results)))
    print(f"log-mel front end alone, 60 s: {t_feat:.3f} s ({60 / t_feat:.0f}x real time), every backend")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
