"""Make a trained model directory the shipped default, with its unknown threshold set.

Example
-------
    python scripts/release_model.py models/run1 --dev ../shared/data/dev

The logic lives in :mod:`fewshot.train.release`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from fewshot.config import ClassifierConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="trained model directory (model file + meta.json)")
    p.add_argument("--dev", required=True, help="held-out speaker-per-folder tree for the threshold")
    p.add_argument("--to", help="destination (default: the package's models/default)")
    p.add_argument("--C", type=float, default=ClassifierConfig.C, help="SVM C stored with the model")
    p.add_argument("--gamma", type=float, default=ClassifierConfig.gamma, help="SVM gamma stored with the model")
    p.add_argument("--multi-condition", action="store_true",
                   help="enroll with degraded copies of each person's speech as well (fewshot.degrade.enrollment_copies)")
    args = p.parse_args(argv)
    if not Path(args.dev).is_dir():
        print(f"error: --dev {args.dev}: folder not found", file=sys.stderr)
        return 2

    from fewshot.errors import FewshotError
    from fewshot.train.release import release

    try:
        r = release(args.model, dev=args.dev, dest=args.to, C=args.C, gamma=args.gamma,
                    multi_condition=args.multi_condition)
    except FewshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"released {r['model_id']} to {r['dest']}: unknown threshold {r['threshold']:.4f} "
          f"(EER {100 * r['eer']:.2f}% on {r['speakers']} speakers, {r['n_target']} target and "
          f"{r['n_nontarget']} non-target trials)")
    lite = r["litert"]
    print(f"wrote {lite['file']} ({lite['bytes'] / 1e6:.2f} MB): cosine to the Keras embeddings min "
          f"{lite['parity']['cosine_min']:.6f} over {lite['parity']['embeddings']} dev embeddings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
