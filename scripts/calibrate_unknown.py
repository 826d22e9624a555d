"""Calibrate a model's "unknown" (a cohort and thresholds by group size) and its enrollment self-check.

Example
-------
    .venv/bin/python scripts/calibrate_unknown.py fewshot/models/default \
        --train ../shared/data/train --dev ../shared/data/dev

Writes the cohort file and the ``open_set`` block into the model directory's
``meta.json`` and makes the model decide unknown at ``--rate`` outsiders
accepted, at every group size (:mod:`fewshot.openset`). The model's id does not
change, so enrolled groups keep working. The logic lives in
:mod:`fewshot.train.calibration`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fewshot.progress import add_progress_argument, progress_bar


def main(argv=None) -> int:
    from fewshot.train.calibration import DEFAULT_RATE, RATES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="model directory (meta.json and its model files)")
    p.add_argument("--train", required=True, help="training speaker-per-folder tree (the cohort)")
    p.add_argument("--dev", required=True, help="held-out speaker-per-folder tree (the thresholds)")
    p.add_argument("--cache", default="cache/speech", help="waveform cache of the training speech (default: %(default)s)")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE,
                   help=f"false-accept rate the model ships with (default: {DEFAULT_RATE:g}; "
                        f"{RATES[0]:g}-{RATES[-1]:g})")
    p.add_argument("--draws", type=int, default=60, help="random groups per size (default: 60)")
    add_progress_argument(p)
    args = p.parse_args(argv)
    for flag, folder in (("--train", args.train), ("--dev", args.dev), ("model", args.model)):
        if not Path(folder).is_dir():
            print(f"error: {flag} {folder}: folder not found (the data lives in ../shared/data)", file=sys.stderr)
            return 2
    if not RATES[0] <= args.rate <= RATES[-1]:
        print(f"error: --rate {args.rate:g}: must be within {RATES[0]:g}-{RATES[-1]:g}", file=sys.stderr)
        return 2

    from fewshot.errors import FewshotError
    from fewshot.train.calibration import calibrate_model

    def progress(it, total=None):
        return progress_bar(always=args.progress)(it, total=total)

    try:
        r = calibrate_model(args.model, train=args.train, dev=args.dev, cache_dir=args.cache, rate=args.rate,
                            draws=args.draws, progress=progress)
    except FewshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"calibrated {r['model_id']} ({args.model}): cohort of {r['cohort_speakers']} training speakers "
          f"({r['cohort_file']}), thresholds from {r['dev_speakers']} dev speakers")
    print(f"thresholds at {r['rate']:.0%} outsiders accepted, by group size: "
          + ", ".join(f"{n}: {t:.3f}" for n, t in r["thresholds"].items()))
    print("two-fold check (thresholds from half the speakers, measured on the other half):")
    for n, v in r["held_out"].items():
        print(f"  groups of {n:2d}: outsiders accepted {100 * v['false_accept_rate']:.1f}%, "
              f"members rejected {100 * v['false_reject_rate']:.1f}%")
    print("enrollment self-check (thresholds flag 5% of clean dev enrollments):")
    for T, v in r["enrollment_check"].items():
        print(f"  {T:g} s: enrollments with 20% of a second voice flagged {100 * v['mixed']:.1f}% "
              f"(one stretch {100 * v['mixed_one_stretch']:.1f}%, two {100 * v['mixed_two_stretches']:.1f}%); "
              f"clean flagged {100 * v['clean']:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
