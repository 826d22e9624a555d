"""Train the fewshot extractor CNN on a speaker-per-folder tree or a manifest.csv.

Example
-------
    python scripts/train_extractor.py ../shared/data/train --dev ../shared/data/dev --out models/run1

Run it again with the same arguments to resume after an interruption.

Distillation from the CAM++ teacher (the ``teacher`` extra; embed the
training speech once with ``scripts/teacher_targets.py`` first), here as a
fine-tuning run that starts from the last checkpoint of ``models/run1``:

    python scripts/train_extractor.py ../shared/data/train --dev ../shared/data/dev --out models/run2 \
        --init models/run1 --distill 1.0 --epochs 4 --lr 1e-3
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from fewshot.progress import add_progress_argument, loader_progress


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", help="speaker-per-folder tree (e.g. ../shared/data/train) or manifest.csv")
    p.add_argument("--out", required=True, help="output model directory (resumed if it exists)")
    p.add_argument("--dev", help="held-out speaker-per-folder tree for few-shot model selection")
    p.add_argument(
        "--arch",
        choices=["resnet", "original"],
        default="resnet",
        help="resnet: the default extractor; original: the first project's small CNN",
    )
    p.add_argument("--epochs", type=int, default=12, help="maximum epochs")
    p.add_argument("--steps-per-epoch", type=int, default=150, help="batches per epoch")
    p.add_argument("--batch-size", type=int, default=128, help="crops per batch (global)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--margin", type=float, default=0.2, help="additive angular margin (radians)")
    p.add_argument("--no-augment", action="store_true", help="train without noise/reverb/masks")
    p.add_argument(
        "--noise",
        metavar="DIR",
        help="folder of recorded background noises (e.g. ../shared/data/noise) mixed into noisy crops "
        "beside the synthetic noise; training draws from the first two thirds of each recording",
    )
    p.add_argument(
        "--speeds",
        type=float,
        nargs="+",
        default=[0.9, 1.0, 1.1],
        help="speed perturbation factors; each non-1 factor makes new speakers",
    )
    p.add_argument("--channels", type=int, nargs="+", help="filters per residual stage")
    p.add_argument("--blocks", type=int, nargs="+", help="residual blocks per stage")
    p.add_argument("--embedding-dim", type=int, default=192, help="width of the embedding layer")
    p.add_argument("--patience", type=int, default=8, help="epochs without improvement before stopping")
    p.add_argument("--seed", type=int, default=0, help="seed; the same seed gives the same model on CPU")
    p.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multiworker"],
        default="default",
        help="tf.distribute strategy (multiworker reads TF_CONFIG)",
    )
    p.add_argument("--workers", type=int, default=2, help="processes for feature extraction")
    p.add_argument("--cache", help="feature cache folder (default: OUT/feature_cache)")
    p.add_argument("--val-draws", type=int, default=20, help="groups drawn per size in validation")
    p.add_argument(
        "--distill",
        type=float,
        default=0.0,
        metavar="WEIGHT",
        help="weight of the loss pulling the embedding of each degraded crop toward the CAM++ "
        "teacher's embedding of the clean crop (0: no teacher)",
    )
    p.add_argument(
        "--init",
        metavar="RUN",
        help="start from the last checkpoint of this earlier run (same data and network), or from "
        "the network of a model directory such as fewshot/models/default (its whitening layer "
        "dropped, each class centre at the class's mean embedding); the margin then needs no "
        "warm-up",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help="train at most N epochs in this run, then stop (run the same command again to go on)",
    )
    p.add_argument(
        "--no-whiten",
        action="store_true",
        help="keep the trained embedding layer as it is (no within-class whitening at the end)",
    )
    add_progress_argument(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from fewshot.config import ExtractorConfig, FeatureConfig
    from fewshot.train.augment import AugmentConfig
    from fewshot.train.loop import TrainConfig, train

    if args.dev and not Path(args.dev).is_dir():
        print(f"error: --dev {args.dev}: folder not found", file=sys.stderr)
        return 2
    if args.noise and not Path(args.noise).is_dir():
        print(f"error: --noise {args.noise}: folder not found", file=sys.stderr)
        return 2
    if args.stop_after is not None and args.stop_after < 1:
        print(f"error: --stop-after {args.stop_after}: must be at least 1 epoch", file=sys.stderr)
        return 2
    defaults = ExtractorConfig()
    fc = FeatureConfig()
    ec = ExtractorConfig(
        arch=args.arch,
        channels=tuple(args.channels or defaults.channels),
        blocks=tuple(args.blocks or defaults.blocks),
        embedding_dim=args.embedding_dim,
        crop_frames=fc.segment_frames if args.arch == "original" else defaults.crop_frames,
    )
    tc = TrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        margin=args.margin,
        speeds=tuple(args.speeds),
        augment=None if args.no_augment else AugmentConfig(noise_dir=args.noise or ""),
        seed=args.seed,
        patience=args.patience,
        val_draws=args.val_draws,
        strategy=args.strategy,
        distill_weight=args.distill,
        init=args.init,
        **({"margin_warmup_epochs": 0.0} if args.init else {}),
    )
    t0 = time.time()
    try:
        state = train(
            args.train,
            args.out,
            feature_config=fc,
            extractor_config=ec,
            train_config=tc,
            dev=args.dev,
            cache_dir=args.cache,
            workers=args.workers,
            whiten=not args.no_whiten,
            stop_after_epochs=args.stop_after,
            progress=loader_progress("Features", "files", always=args.progress),
        )
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"done: {state['epoch']} epochs, best epoch {state['best_epoch']} ({state['best']}), "
        f"{time.time() - t0:.0f} s this run; model in {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
