"""Make a trained model directory the shipped default, with its unknown threshold set and its aligners.

Example
-------
    python scripts/release_model.py models/run1 --dev ../shared/data/dev --train ../shared/data/train
    python scripts/release_model.py fewshot/models/default --aligners-only --dev ../shared/data/dev \
        --train ../shared/data/train

With ``--train``, an aligner from every extractor shipped before (from the git
history, written to ``models/previous/``, or the folders given with
``--previous``) to the released one is trained and shipped beside it, and its
measurements are printed as a Markdown table. ``--aligners-only`` (re)builds
the aligners of a model already released, leaving the model as it is.

The logic lives in :mod:`fewshot.train.release`, :mod:`fewshot.train.align`
and :mod:`fewshot.train.previous`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def previous_extractors(args, dest: Path, sha256: str) -> list:
    """The earlier extractors to build aligners from: ``--previous`` folders, else the git history
    of the destination's folder and of the folders its model shipped in under a former name."""
    from fewshot.model.extractor import FORMER_NAMES, default_model_dir
    from fewshot.train.previous import SHIPPED_PATH, from_folder, previous_models

    if args.previous:
        return [p for p in map(from_folder, args.previous) if p.sha256 != sha256]
    in_package = dest.resolve().parent == default_model_dir().parent.resolve()
    name = dest.name if in_package else "default"
    folders = [
        f"fewshot/models/{name}" if in_package else SHIPPED_PATH,
        *(f"fewshot/models/{old}" for old, new in FORMER_NAMES.items() if new == name),
    ]
    found, seen = [], {sha256}
    for shipped in folders:
        found += previous_models(args.history, args.previous_dir, shipped=shipped, exclude_sha256=seen)
        seen |= {p.sha256 for p in found}
    return found


def print_aligners(results: list) -> None:
    from fewshot.train.align import ROWS

    for r in results:
        e = r["entry"]
        print(
            f"\naligner from {' / '.join(r['from'])} ({r['commit'][:7] or 'folder'}): {e['shape']}, {e['file']} "
            f"({e['bytes'] / 1e3:.0f} kB), mapping {r['rows']} segments of 10 people: {r['map_ms']:.2f} ms"
        )
        for shape, f in r["candidates"].items():
            print(
                f"  {shape:7s} mapped: 3 people {100 * f['acc_3']:.1f}%, 10 people {100 * f['acc_10']:.1f}%, "
                f"all {100 * f['acc_all']:.1f}%, EER {100 * f['eer']:.2f}%"
            )
        print("\n| enrollment embedded by / test embedded by | 3 people | 10 people | all | EER |")
        print("|---|---|---|---|---|")
        for row in ROWS:
            if row in r["table"]:
                f = r["table"][row]
                print(
                    f"| {row} | {100 * f['acc_3']:.1f}% | {100 * f['acc_10']:.1f}% | {100 * f['acc_all']:.1f}% "
                    f"| {100 * f['eer']:.2f}% |"
                )


def main(argv=None) -> int:
    from fewshot.config import ClassifierConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="trained model directory (model file + meta.json)")
    p.add_argument(
        "--dev", required=True, help="held-out speaker-per-folder tree for the threshold and the aligners' measurements"
    )
    p.add_argument("--to", help="destination (default: the package's models/default)")
    p.add_argument("--C", type=float, default=ClassifierConfig.C, help="SVM C stored with the model")
    p.add_argument("--gamma", type=float, default=ClassifierConfig.gamma, help="SVM gamma stored with the model")
    p.add_argument(
        "--multi-condition",
        action="store_true",
        help="enroll with degraded copies of each person's speech as well (fewshot.audio.degrade.enrollment_copies)",
    )
    p.add_argument(
        "--train",
        help="training speech (speaker-per-folder tree or manifest.csv) for the aligners from "
        "earlier extractors; without it, none are shipped",
    )
    p.add_argument(
        "--previous",
        nargs="+",
        metavar="DIR",
        help="model directories of earlier releases (default: every extractor shipped in the git history)",
    )
    p.add_argument(
        "--history",
        default=str(REPO),
        help="git repository whose history holds the shipped extractors (default: this one)",
    )
    p.add_argument(
        "--previous-dir",
        default="models/previous",
        help="where extractors from the history are written (default: models/previous)",
    )
    p.add_argument("--cache", default="cache/align", help="embeddings of the training speech, per model")
    p.add_argument(
        "--aligners-only", action="store_true", help="MODEL is already released: only (re)build its aligners"
    )
    args = p.parse_args(argv)
    for flag, path in (("--dev", args.dev), ("--train", args.train)):
        if path is not None and not Path(path).exists():
            print(f"error: {flag} {path}: not found", file=sys.stderr)
            return 2
    if args.aligners_only and not args.train:
        print("error: --aligners-only needs --train", file=sys.stderr)
        return 2

    import subprocess

    from fewshot.errors import FewshotError
    from fewshot.model.extractor import default_model_dir
    from fewshot.model.modeldir import read_model_meta
    from fewshot.train.release import add_aligners, release

    dest = Path(args.model if args.aligners_only else (args.to or default_model_dir()))
    try:
        sha256 = read_model_meta(Path(args.model))[0]["sha256"]
        previous = previous_extractors(args, dest, sha256) if args.train else []
        if args.aligners_only:
            print_aligners(add_aligners(dest, previous, train=args.train, dev=args.dev, cache_dir=args.cache))
            return 0
        r = release(
            args.model,
            dev=args.dev,
            dest=dest,
            C=args.C,
            gamma=args.gamma,
            multi_condition=args.multi_condition,
            train=args.train,
            previous=previous,
            cache_dir=args.cache,
        )
    except (FewshotError, subprocess.CalledProcessError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"released {r['model_id']} to {r['dest']}: unknown threshold {r['threshold']:.4f} "
        f"(EER {100 * r['eer']:.2f}% on {r['speakers']} speakers, {r['n_target']} target and "
        f"{r['n_nontarget']} non-target trials)"
    )
    lite = r["litert"]
    print(
        f"wrote {lite['file']} ({lite['bytes'] / 1e6:.2f} MB): cosine to the Keras embeddings min "
        f"{lite['parity']['cosine_min']:.6f} over {lite['parity']['embeddings']} dev embeddings"
    )
    if not args.train:
        print(
            "no aligners: groups enrolled with earlier extractors need re-enrolling or `fewshot groups upgrade` "
            "(give --train to ship aligners from them)"
        )
    print_aligners(r["aligners"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
