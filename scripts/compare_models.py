"""Two extractors on the same test pieces: all-speaker identification, paired.

Each model runs as ``fewshot identify`` runs it (its stored SVM settings and
multi-condition enrollment) on the standard protocol's all-speaker group (15 s
enrollment, 5 s test pieces); the script prints each model's accuracy, the pieces
only one of them gets right, and the exact McNemar test of that split: whether a
difference in accuracy is larger than the test pieces can tell apart.

Example
-------
    python scripts/compare_models.py fewshot/models/default models/previous/f0a595192efd06d4 \
        --dev ../shared/data/dev

A model of ``models/previous/`` that is not there yet (an extractor shipped
before, by its id) is first written there from the git history
(:func:`fewshot.train.previous.previous_models`, about a second).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREVIOUS = Path("models/previous")


def from_history(model: str) -> None:
    """Write the extractors shipped before into ``models/previous/`` when ``model`` is one of them and missing.

    Raises
    ------
    FileNotFoundError
        When ``model`` is not among them, or the git history cannot be read.
    """
    from fewshot.model.extractor import FORMER_NAMES
    from fewshot.train.previous import SHIPPED_PATH, previous_models

    path = Path(model)
    if path.exists() or path.parent != PREVIOUS:
        return
    seen, ids = set(), []
    try:
        for shipped in (SHIPPED_PATH, *(f"fewshot/models/{old}" for old in FORMER_NAMES)):
            found = previous_models(REPO, PREVIOUS, shipped=shipped, exclude_sha256=seen)
            seen |= {m.sha256 for m in found}
            ids += [m.model_id for m in found]
    except ValueError as exc:
        raise FileNotFoundError(
            f"{model}: not found, and the extractors shipped before could not be taken from "
            f"the git history of {REPO} ({exc})"
        ) from None
    if not path.exists():
        raise FileNotFoundError(f"{model}: no extractor of that id was shipped before (shipped: {', '.join(ids)})")
    print(f"wrote the extractors shipped before into {PREVIOUS}/ from the git history: {', '.join(ids)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_a", help="model directory (or a shipped model's name)")
    p.add_argument("model_b", help="model directory to compare it with")
    p.add_argument("--dev", required=True, help="speaker-per-folder tree of held-out speakers")
    p.add_argument("--enroll-seconds", type=float, default=15.0)
    args = p.parse_args(argv)
    if not Path(args.dev).is_dir():
        print(f"error: {args.dev}: folder not found (the held-out speakers, e.g. ../shared/data/dev)", file=sys.stderr)
        return 2

    import numpy as np

    from fewshot.config import ClassifierConfig
    from fewshot.errors import FewshotError
    from fewshot.eval.benchmark import embed_as_enrolled, paired_comparison
    from fewshot.eval.protocol import episode, prepare_protocol
    from fewshot.model.extractor import load_extractor

    T = args.enroll_seconds
    try:
        for m in (args.model_a, args.model_b):
            from_history(m)
        extractors = [load_extractor(m) for m in (args.model_a, args.model_b)]
    except (FewshotError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    speakers = prepare_protocol(args.dev, enroll_seconds=[T])
    if len(speakers) < 2:
        print(f"error: {args.dev}: fewer than 2 speakers with enough speech for the protocol", file=sys.stderr)
        return 2
    right = []
    for ex in extractors:
        cc = ClassifierConfig.of_model(ex)
        r = episode(embed_as_enrolled(ex, speakers, cc), np.arange(len(speakers)), T=T, classifier=cc, open_set=False)
        right.append(r["y_true"] == r["y_pred"])
    c = paired_comparison(*right)
    print(f"{len(speakers)} speakers of {args.dev}, {c['pieces']} test pieces of 5 s, {T:g} s enrollment, all speakers")
    for name, ex, acc in (
        (args.model_a, extractors[0], c["accuracy_a"]),
        (args.model_b, extractors[1], c["accuracy_b"]),
    ):
        print(f"  {name} ({ex.model_id}): {100 * acc:.1f}%")
    print(
        f"  right with {args.model_a} only: {c['only_a_right']}; with {args.model_b} only: {c['only_b_right']}; "
        f"exact McNemar test p = {c['mcnemar_p']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
