"""Time the extractor and the ``fewshot identify`` command on this machine, and its peak memory on long files.

``speed`` prints, side by side for the Keras model and the LiteRT float and
int8 models (a backend the model directory lacks is shown as ``-``), as
medians of repeated runs:
- seconds for ``fewshot identify`` of one 5 s file from a cold start (a new
  process) and within one process (extractor and group already loaded);
- seconds to embed one 60 s utterance, and a batch of twelve 5 s pieces of it,
  with the real-time factor;
- the log-mel front end alone on 60 s (the same for every backend);
- seconds for one ``fewshot identify`` call on 500 files of 5 s (a new
  process), and for ``fewshot groups`` from a cold start.

``enroll`` prints what multi-condition enrollment costs: seconds to embed 15
and 35 s of speech, and to embed its three degraded copies as well
(:func:`fewshot.audio.degrade.enrollment_copies`), with the default backend.

``memory`` writes a long file (``--hours``, 2 by default: the speech looped)
in each of several formats into a temporary folder, one at a time, and
prints the peak resident memory of ``fewshot identify`` of it (of the largest
process of its tree, ffmpeg included), its time and its answer, beside a 5 s
file's; for the first format, also of ``fewshot identify --segments`` (who
speaks when) and of ``fewshot enroll`` (which uses 60 s of the file's speech). The peak is read by a small launcher process
(``resource.getrusage(RUSAGE_CHILDREN)``): a process started from this large
one would count the memory it had before its ``exec``, a copy of this one's.

Example
-------
    python scripts/benchmark_speed.py --data ../shared/data/dev --repeats 5
    python scripts/benchmark_speed.py --parts memory --hours 2
    python scripts/benchmark_speed.py --parts enroll --repeats 7
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
#: Files of 5 s in the one-call batch measurement.
MANY_FILES = 500
#: Long files of the memory benchmark: sample rate, channels, ffmpeg's encoder options, and whether the
#: encoded loop is repeated (slow encoders) rather than the whole file encoded (FLAC's header holds its length).
FORMATS = {
    "wav": (16000, 1, ["-c:a", "pcm_s16le"], False),
    "mp3": (16000, 1, ["-c:a", "libmp3lame", "-b:a", "64k"], True),
    "flac": (48000, 2, ["-c:a", "flac"], False),
    "m4a": (44100, 2, ["-c:a", "aac", "-b:a", "128k"], True),
}


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
    print(f"note: {data} is missing: the benchmark runs on a synthetic voice instead of real speech", file=sys.stderr)
    t = np.arange(110 * sr) / sr
    y = np.sign(np.sin(2 * np.pi * 140 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.1 * y).astype(np.float32), f"a synthetic voice ({data} not found)"


def enrolled_store(home: Path, model, y, sr) -> Path:
    """A store with a group of three people (15 s each, the first 45 s of ``y``), and the 5 s file to identify."""
    import soundfile as sf

    from fewshot.identifier import SpeakerIdentifier
    from fewshot.model.extractor import load_extractor

    sid = SpeakerIdentifier(load_extractor(model), store=home / "s.sqlite")
    for i in range(3):
        # a 15 s slice of the joined speech may hold two voices, which enrollment refuses unless forced
        sid.enroll("bench", f"speaker{i}", [y[i * 15 * sr : (i + 1) * 15 * sr]], sr_in=sr, force=True)
    sf.write(home / "five.wav", y[105 * sr : 110 * sr], sr)
    many = home / "many"
    many.mkdir()
    for k in range(MANY_FILES):  # 5 s pieces of the 60 s not enrolled, each starting 0.1 s later than the last
        a = 45 * sr + (k % 11) * 5 * sr + (k // 11) * sr // 10
        sf.write(many / f"{k:03d}.wav", y[a : a + 5 * sr], sr)
    return home / "five.wav"


def measure(backend, model, y, home, clip, repeats, cold_repeats) -> dict:
    """Seconds per task for one backend: ``cold``, ``warm``, ``long`` (60 s) and ``batch`` (12 x 5 s)."""
    from fewshot.identifier import SpeakerIdentifier
    from fewshot.model.extractor import load_extractor

    ex = load_extractor(model, backend=backend)
    sr = ex.feature_config.sr
    sixty = y[45 * sr : 105 * sr]
    pieces = [sixty[i * 5 * sr : (i + 1) * 5 * sr] for i in range(12)]
    sid = SpeakerIdentifier(ex, store=home / "s.sqlite")
    sid.identify("bench", clip)  # warm-up: first calls build the graph or allocate the interpreter
    ex.embed(pieces)
    out = {
        "warm": median_time(lambda: sid.identify("bench", clip), repeats),
        "long": median_time(lambda: ex.embed([sixty]), repeats),
        "batch": median_time(lambda: ex.embed(pieces), repeats),
    }
    env = {**os.environ, "FEWSHOT_HOME": str(home), "FEWSHOT_BACKEND": backend}
    base = [sys.executable, "-m", "fewshot.cli", "identify", "--group", "bench", "--store", str(home / "s.sqlite")] + (
        ["--model", str(model)] if model else []
    )
    out["cold"] = median_time(
        lambda: subprocess.run(base + [str(clip)], env=env, check=True, capture_output=True), cold_repeats
    )
    files = sorted(str(f) for f in (home / "many").glob("*.wav"))
    out["many"] = median_time(
        lambda: subprocess.run(base + files, env=env, check=True, capture_output=True), max(1, cold_repeats // 2)
    )
    groups = [sys.executable, "-m", "fewshot.cli", "groups", "--store", str(home / "s.sqlite")]
    out["groups"] = median_time(lambda: subprocess.run(groups, env=env, check=True, capture_output=True), cold_repeats)
    return out


def enroll_cost(model, y, sr, repeats) -> list[str]:
    """Seconds to embed 15 and 35 s of enrollment speech, and what its degraded copies add."""
    from fewshot.audio.degrade import enrollment_copies
    from fewshot.model.extractor import load_extractor

    ex = load_extractor(model)
    lines = []
    for seconds in (15, 35):
        speech = y[: seconds * sr]
        ex.embed([speech], return_segments=True)  # warm-up
        plain = median_time(lambda s=speech: ex.embed([s], return_segments=True), repeats)
        copies = median_time(lambda s=speech: ex.embed(enrollment_copies(s, sr=sr), return_segments=True), repeats)
        lines.append(
            f"enrollment of {seconds} s of speech: embedding {plain:.3f} s; its three degraded copies "
            f"(multi-condition enrollment) {copies:.3f} s more"
        )
    return lines


def available(model) -> list[str]:
    """The backends the model directory has files for."""
    import json

    from fewshot.model.extractor import default_model_dir

    meta = json.loads((Path(model or default_model_dir()) / "meta.json").read_text())
    lite = meta.get("litert", {})
    return ["keras"] + [b for b, p in (("litert", "float"), ("litert-int8", "int8")) if p in lite]


def table(results: dict) -> list[str]:
    """The side-by-side lines, one per measurement."""
    rows = [
        ("`fewshot identify` 5 s file, cold start", "cold", None),
        ("identify 5 s file, within one process", "warm", None),
        ("embed one 60 s utterance", "long", 60.0),
        ("embed 12 pieces of 5 s, one call", "batch", 60.0),
        (f"`fewshot identify` of {MANY_FILES} files of 5 s, cold", "many", None),
        ("`fewshot groups`, cold start", "groups", None),
    ]
    lines = [f"{'':42s}" + "".join(f"{b:>20s}" for b in BACKENDS)]
    for label, key, seconds in rows:
        cells = []
        for b in BACKENDS:
            t = results.get(b, {}).get(key)
            cells.append("-" if t is None else f"{t:.3f} s" + (f" ({seconds / t:.0f}x)" if seconds else ""))
        lines.append(f"{label:42s}" + "".join(f"{c:>20s}" for c in cells))
    return lines


def long_file(y, sr, fmt, folder: Path, hours: float) -> Path:
    """``y`` looped for ``hours`` as a ``fmt`` file of :data:`FORMATS` (by ffmpeg, in flat memory)."""
    import numpy as np
    import soundfile as sf

    from fewshot.audio.decode import resample

    rate, channels, codec, repeat = FORMATS[fmt]
    x = resample(y, orig_sr=sr, target_sr=rate) if rate != sr else y
    if channels == 2:  # the second channel quieter, so that the mix is the same speech
        x = np.stack([x, 0.7 * x], axis=1)
    raw, loop, out = folder / "raw.wav", folder / f"loop.{fmt}", folder / f"long.{fmt}"
    sf.write(raw, x, rate, subtype="PCM_16")
    ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    if repeat:
        subprocess.run(ffmpeg + ["-i", str(raw), *codec, str(loop)], check=True)
        codec = ["-c", "copy"]
    subprocess.run(
        ffmpeg + ["-stream_loop", "-1", "-i", str(loop if repeat else raw), "-t", str(hours * 3600), *codec, str(out)],
        check=True,
    )
    raw.unlink()
    loop.unlink(missing_ok=True)
    return out


#: The small launcher: runs a command, then prints the peak resident memory (KB) of the largest process it ran.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def peak_memory(cmd, env) -> tuple[float, float, str]:
    """Peak resident memory (MB) of the largest process of ``cmd``'s tree, its seconds, and its last line."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, *cmd], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit status {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return int(proc.stderr.split()[-1]) / 1024, seconds, proc.stdout.strip().splitlines()[-1]


def memory(args, y, sr, home, clip) -> list[str]:
    """The memory table: ``fewshot identify`` of the 5 s file, then of a long file in each format."""
    import soundfile as sf

    env = {**os.environ, "FEWSHOT_HOME": str(home)}
    cmd = [sys.executable, "-m", "fewshot.cli", "identify", "--group", "bench", "--store", str(home / "s.sqlite")] + (
        ["--model", str(args.model)] if args.model else []
    )
    mb, seconds, said = peak_memory(cmd + [str(clip)], env)
    lines = [
        "| file | size | decoded by | peak memory | time | answer |",
        "|---|---|---|---|---|---|",
        (
            f"| 5 s, 16 kHz mono wav | {clip.stat().st_size / 1e6:.1f} MB | libsndfile | {mb:.0f} MB | "
            f"{seconds:.1f} s | {said.split(': ', 1)[-1]} |"
        ),
    ]
    print(lines[-1], flush=True)
    for fmt in args.formats:
        rate, channels = FORMATS[fmt][:2]
        with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
            t0 = time.perf_counter()
            path = long_file(y, sr, fmt, Path(folder), args.hours)
            made, size = time.perf_counter() - t0, path.stat().st_size
            try:
                sf.info(str(path))
                decoder = "libsndfile"
            except Exception:
                decoder = "ffmpeg"
            mb, seconds, said = peak_memory(cmd + [str(path)], env)
            lines.append(
                f"| {args.hours:g} h, {rate / 1000:g} kHz {'mono' if channels == 1 else 'stereo'} {fmt} | "
                f"{size / 1e6:.0f} MB | {decoder} | {mb:.0f} MB | {seconds:.0f} s | "
                f"{said.split(': ', 1)[-1]} |"
            )
            print(lines[-1] + f"  (file written in {made:.0f} s)", flush=True)
            if fmt != args.formats[0]:
                continue
            other = {
                "identify --segments": cmd[:4] + ["--segments"] + cmd[4:],
                "enroll": [
                    *cmd[:3],
                    "enroll",
                    "--group",
                    "long",
                    "--speaker",
                    "reader",
                    "--force",
                    "--store",
                    str(home / "enroll.sqlite"),
                    *cmd[8:],
                ],
            }
            for what, command in other.items():
                mb, seconds, said = peak_memory(command + [str(path)], env)
                lines.append(
                    f"| the same, `fewshot {what}` | | | {mb:.0f} MB | {seconds:.0f} s | {said.strip()[:60]} |"
                )
                print(lines[-1], flush=True)
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/dev", help="speaker-per-folder tree to take speech from")
    p.add_argument("--model", help="extractor model directory (default: the shipped model)")
    p.add_argument("--repeats", type=int, default=5, help="runs per measurement (median reported)")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=["speed", "enroll", "memory"],
        default=["speed", "enroll", "memory"],
        help="what to measure (default: all)",
    )
    p.add_argument("--hours", type=float, default=2.0, help="length of the long files of the memory part")
    kinds = ", ".join(f"{f} ({r / 1000:g} kHz, {'mono' if c == 1 else 'stereo'})" for f, (r, c, *_) in FORMATS.items())
    p.add_argument(
        "--formats",
        nargs="+",
        choices=list(FORMATS),
        default=list(FORMATS),
        help=f"long files of the memory part: {kinds}",
    )
    p.add_argument("--tmp", help="folder for the long files (default: the system's temporary folder)")
    args = p.parse_args(argv)

    from fewshot.audio.features import log_mel
    from fewshot.config import FeatureConfig
    from fewshot.model.extractor import load_extractor

    cfg = FeatureConfig()
    y, origin = speech_for_benchmark(args.data, cfg.sr)
    print(
        f"audio: {origin}: 3 people enrolled from 0-45 s (15 s each), 45-105 s embedded as one 60 s utterance "
        f"and as 12 pieces of 5 s, 105-110 s the file identified; the long files loop all 110 s"
    )
    print(
        f"model: {load_extractor(args.model).model_id}, CPU threads: {os.cpu_count()}, medians of {args.repeats} "
        f"runs (cold start: {args.repeats} new processes)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["FEWSHOT_HOME"] = tmp  # the group's fitted SVM is cached there, for the new processes to find
        clip = enrolled_store(home, args.model, y, cfg.sr)
        if "speed" in args.parts:
            t_feat = median_time(lambda: log_mel(y[: 60 * cfg.sr], config=cfg), args.repeats)
            results = {
                b: measure(b, args.model, y, home, clip, args.repeats, args.repeats) for b in available(args.model)
            }
            print("\n".join(table(results)))
            print(f"log-mel front end alone, 60 s: {t_feat:.3f} s ({60 / t_feat:.0f}x real time), every backend")
        if "enroll" in args.parts:
            print("\n".join(enroll_cost(args.model, y, cfg.sr, args.repeats)))
        if "memory" in args.parts:
            print(
                "\npeak memory of `fewshot identify` (and `--segments`, `enroll`), one run each, the default backend:"
            )
            lines = memory(args, y, cfg.sr, home, clip)
            print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
