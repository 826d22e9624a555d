"""Calibrate a model's "unknown" (a cohort and a threshold model) and its enrollment self-check.

Example
-------
    .venv/bin/python scripts/calibrate_unknown.py fewshot/models/default \
        --train ../shared/data/train --dev ../shared/data/dev --cache-dir /tmp/cal-cache

Writes the cohort file and the ``open_set`` block into the model directory's
``meta.json`` and makes the model decide unknown at ``--rate`` outsiders
accepted, at every group size, length of speech and condition
(:mod:`fewshot.groups.openset`). The model's id does not change, so enrolled groups
keep working. Before that it prints the checks: the model fitted on the
training speakers and measured on dev's, and fitted without each corpus and
measured on it. Embeddings are cached under ``--cache-dir`` (per model), so a
second run is quick. The logic lives in :mod:`fewshot.train.calibration`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fewshot.progress import add_progress_argument, progress_bar


def main(argv=None) -> int:
    from fewshot.train.calibration import DEFAULT_RATE, RATES
    from fewshot.train.enrollment_check import CHECK_CONDITIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="model directory (meta.json and its model files)")
    p.add_argument(
        "--train",
        required=True,
        help="training speaker-per-folder tree (the cohort, and calibration speakers with enough speech)",
    )
    p.add_argument(
        "--dev", required=True, help="held-out speaker-per-folder tree (calibration speakers, and the held-out check)"
    )
    p.add_argument(
        "--cache", default="cache/speech", help="waveform cache of the training speech (default: %(default)s)"
    )
    p.add_argument(
        "--cache-dir",
        default="cache/calibration",
        help="cache of the calibration's speech and embeddings (default: %(default)s)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"false-accept rate the model ships with (default: {DEFAULT_RATE:g}; {RATES[0]:g}-{RATES[-1]:g})",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=12,
        help="random groups per size a threshold model is fitted on (default: 12; the checks are measured on at least 48)",
    )
    p.add_argument(
        "--check-conditions",
        default=",".join(CHECK_CONDITIONS),
        help="recording conditions the enrollment self-check is calibrated in (default: %(default)s; "
        "'none' keeps the model's self-check as it is)",
    )
    p.add_argument("--dry-run", action="store_true", help="measure and print, but leave the model as it is")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    add_progress_argument(p)
    args = p.parse_args(argv)
    for flag, folder in (("--train", args.train), ("--dev", args.dev), ("model", args.model)):
        if not Path(folder).is_dir():
            print(f"error: {flag} {folder}: folder not found (the data lives in ../shared/data)", file=sys.stderr)
            return 2
    if not RATES[0] <= args.rate <= RATES[-1]:
        print(f"error: --rate {args.rate:g}: must be within {RATES[0]:g}-{RATES[-1]:g}", file=sys.stderr)
        return 2
    from fewshot.eval.conditions import CONDITIONS

    checks = (
        ()
        if args.check_conditions == "none"
        else tuple(c.strip() for c in args.check_conditions.split(",") if c.strip())
    )
    if (not checks and args.check_conditions != "none") or any(c not in CONDITIONS for c in checks):
        print(
            f"error: --check-conditions {args.check_conditions!r}: 'none' or names from {', '.join(CONDITIONS)}",
            file=sys.stderr,
        )
        return 2
    if args.draws < 2:
        print(f"error: --draws {args.draws}: at least 2", file=sys.stderr)
        return 2

    from fewshot.errors import FewshotError
    from fewshot.train.calibrate import calibrate_model

    def progress(it, total=None):
        return progress_bar(always=args.progress)(it, total=total)

    try:
        r = calibrate_model(
            args.model,
            train=args.train,
            dev=args.dev,
            cache_dir=args.cache_dir,
            speech_cache=args.cache,
            rate=args.rate,
            draws=args.draws,
            progress=progress,
            check_conditions=checks,
            write=not args.dry_run,
        )
    except FewshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1, default=str))
    print(f"{'measured (not written)' if args.dry_run else 'calibrated'} {r['model_id']} ({args.model}): {r['source']}")
    print(
        f"thresholds at {r['rate']:.0%} outsiders accepted, 5 s of clean speech, by group size: "
        + ", ".join(f"{n}: {t:.3f}" for n, t in r["thresholds"].items())
    )
    for name, c in r["checks"].items():
        lo, hi = c["worst_low"], c["worst_high"]
        print(
            f"check {name}: outsiders accepted {100 * c['false_accept_min']:.1f}-{100 * c['false_accept_max']:.1f}% "
            f"over {len(c['cells'])} cells of group size 1-20 x condition x corpus (lowest: {_cell(lo)}; highest: "
            f"{_cell(hi)})"
        )
        print(
            "  members rejected, groups of 10, 5 s pieces: "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in c["members_rejected_10"].items())
        )
        print(
            "  verify (groups of one, 5 s pieces): "
            + ", ".join(
                f"{k} FA {100 * v['false_accept_rate']:.1f}% FR {100 * v['false_reject_rate']:.1f}% "
                f"EER {100 * v['eer']:.1f}%"
                for k, v in c["verify"].items()
            )
        )
        k = c["condition_known"]
        print(
            f"  with a threshold model per condition (a bound: identify cannot know the condition): outsiders "
            f"accepted {100 * k['false_accept_min']:.1f}-{100 * k['false_accept_max']:.1f}%, members rejected, "
            "groups of 10: " + ", ".join(f"{n} {100 * v:.1f}%" for n, v in k["members_rejected_10"].items())
        )
        print(
            "  enrolled and heard in room0.3+ssn20: "
            + "; ".join(
                f"at {100 * float(rate):g}% outsiders accepted {100 * v['false_accept_rate']:.1f}%, members rejected "
                f"(groups of 10) {100 * v['members_rejected_10']:.1f}%"
                for rate, v in c["enrolled_in_room"].items()
            )
        )
        rows = r["enrollment_check"].get(name, [])
        if rows:
            print(
                "  self-check: "
                + ", ".join(
                    f"{x['seconds']:g} s {x['corpus']} {x['condition']} refused {100 * x['genuine_refused']:.0f}% "
                    f"caught {100 * x['mixed_caught']:.0f}%"
                    for x in rows
                )
            )
    if r["enrollment_check"]:
        print("self-check thresholds: " + ", ".join(f"{s:g} s: {t:.3f}" for s, t in r["check_table"]))
    return 0


def _cell(c) -> str:
    return (
        f"{100 * c['false_accept_rate']:.1f}% in groups of {c['N']}, {c['condition']}, {c['corpus']}, "
        f"{c['outsider_pieces']} pieces"
    )


if __name__ == "__main__":
    raise SystemExit(main())
