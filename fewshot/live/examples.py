"""Example recordings for the README's commands and the demo's file mode: two synthetic people, spoken by espeak-ng.

Example
-------
    .venv/bin/python scripts/example_voices.py          # in the folder where the commands will run
    python -m fewshot.live.examples --out voices        # the same, from any installation

Writes ``ann1.wav``, ``ann2.m4a`` and ``who.wav`` (ann), ``bob.mp3`` (bob) and
``meeting.flac`` (ann and bob taking turns) into the current folder (or ``--out``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

VOICES = {"ann": ("en+f2", 80, 165), "bob": ("en-us+m3", 20, 150)}
TEXTS = [
    "The North Wind and the Sun were disputing which was the stronger, when a traveller came along wrapped in "
    "a warm cloak. They agreed that the one who first succeeded in making the traveller take his cloak off "
    "should be considered stronger than the other.",
    "Then the North Wind blew as hard as he could, but the more he blew the more closely did the traveller "
    "fold his cloak around him; and at last the North Wind gave up the attempt.",
    "Then the Sun shined out warmly, and immediately the traveller took off his cloak. And so the North Wind "
    "was obliged to confess that the Sun was the stronger of the two.",
    "A Fox one day spied a beautiful bunch of ripe grapes hanging from a vine trained along the branches of a "
    "tree. The grapes seemed ready to burst with juice.",
]


def speak(path: Path, who: str, text: str) -> Path:
    voice, pitch, speed = VOICES[who]
    wav = path.with_suffix(".tmp.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    if path.suffix == ".wav":
        wav.replace(path)
    else:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), str(path)], check=True)
        wav.unlink()
    return path


def main(argv=None, prog=None) -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--out", default=".", help="folder to write into (default: the current one)")
    args = p.parse_args(argv)
    missing = [t for t in ("espeak-ng", "ffmpeg") if shutil.which(t) is None]
    if missing:
        print(
            f"error: {', '.join(missing)} not installed: run scripts/setup.sh (or apt-get install espeak-ng ffmpeg)",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = [
        speak(out / "ann1.wav", "ann", TEXTS[0] + " " + TEXTS[1]),
        speak(out / "ann2.m4a", "ann", TEXTS[2]),
        speak(out / "bob.mp3", "bob", " ".join(TEXTS[:3])),
        speak(out / "who.wav", "ann", TEXTS[3]),
    ]
    parts = [speak(out / f"part{i}.wav", who, TEXTS[i % 4]) for i, who in enumerate(["ann", "bob", "ann", "bob"])]
    listing = out / "parts.txt"
    listing.write_text("".join(f"file '{q.resolve()}'\n" for q in parts))
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            str(out / "meeting.flac"),
        ],
        check=True,
    )
    for q in parts + [listing]:
        q.unlink()
    made.append(out / "meeting.flac")
    print("wrote " + ", ".join(str(m) for m in made))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
