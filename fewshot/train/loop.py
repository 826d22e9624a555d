"""The fit loop: strategy, model, checkpoints, few-shot validation, early stopping.

An output directory holds, when training ends (or at any moment during it):

- ``extractor.keras`` + ``meta.json``: the best extractor so far, by few-shot
  accuracy on held-out speakers (a model directory :func:`load_extractor` reads);
- ``checkpoint/``: the last epoch's weights and optimizer state, to resume from;
- ``state.json``: epochs done, best score, the arguments of the run;
- ``log.csv`` and ``tensorboard/``: per-epoch loss and validation figures.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import ExtractorConfig, FeatureConfig
from . import checkpoints, distribute
from .augment import AugmentConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Arguments of one training run (saved in ``state.json`` and the model's metadata)."""

    epochs: int = 12
    steps_per_epoch: int = 150
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    margin: float = 0.2
    scale: float = 30.0
    margin_warmup_epochs: float = 2.0
    speeds: tuple = (0.9, 1.0, 1.1)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    seed: int = 0
    patience: int = 8
    val_draws: int = 20
    strategy: str = "default"
    #: Weight of the distillation loss toward the teacher's embeddings (0: no teacher).
    distill_weight: float = 0.0
    #: Where the weights start from (a fine-tuning run): a run directory's last checkpoint, or a
    #: model directory (a released extractor; the class centres then start at each class's mean embedding).
    init: str | None = None

    def run_dict(self) -> dict:
        """The arguments that identify the run (the two above only where they are set)."""
        d = asdict(self)
        for key, unset in (("distill_weight", 0.0), ("init", None)):
            if d[key] == unset:
                del d[key]
        return d


def build_training_model(
    extractor_config,
    *,
    n_mels: int,
    n_classes: int,
    tc: TrainConfig,
    total_steps: int,
    sync_batchnorm: bool = False,
    teacher_dim: int | None = None,
    init_checkpoint=None,
    init_weights=None,
):
    """The extractor CNN with a cosine head, compiled with the angular-margin loss.

    With ``teacher_dim``, a second output projects the embedding to the
    teacher's width (a linear map used only in training) for the distillation
    loss. ``init_checkpoint``: weights of an earlier run's CNN and head to start from;
    ``init_weights``: ``(cnn_weights, class_centres)`` to start from instead
    (from :func:`.checkpoints.extractor_start`).
    """
    import keras

    from ..model.nn import build_cnn
    from .losses import AdditiveAngularMarginLoss, CosineClassifier, DistillationLoss

    frames = extractor_config.crop_frames if extractor_config.arch == "original" else None
    cnn = build_cnn(extractor_config, n_mels=n_mels, n_frames=frames, sync_batchnorm=sync_batchnorm)
    head = CosineClassifier(n_classes, name="class_cosines", dtype="float32")(cnn.output)
    model = keras.Model(cnn.inputs, head, name="train_model")
    if init_weights is not None:
        cnn.set_weights(init_weights[0])
        model.get_layer("class_cosines").w.assign(np.asarray(init_weights[1], np.float32).T)
    if init_checkpoint is not None:
        import tensorflow as tf

        tf.train.Checkpoint(model=model).restore(str(init_checkpoint)).expect_partial()
    if teacher_dim:
        projection = keras.layers.Dense(teacher_dim, use_bias=False, name="teacher_projection", dtype="float32")(
            cnn.output
        )
        model = keras.Model(cnn.inputs, [head, projection], name="train_model")
    warmup = max(1, min(tc.steps_per_epoch, total_steps // 10))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total_steps - warmup), warmup_target=tc.learning_rate, warmup_steps=warmup, alpha=0.01
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=tc.weight_decay)
    loss = AdditiveAngularMarginLoss(
        tc.margin,
        tc.scale,
        step_counter=optimizer.iterations,
        warmup_steps=int(tc.margin_warmup_epochs * tc.steps_per_epoch),
    )
    if teacher_dim:
        model.compile(optimizer=optimizer, loss=[loss, DistillationLoss()], loss_weights=[1.0, tc.distill_weight])
    else:
        model.compile(optimizer=optimizer, loss=loss)
    return model


def train(
    train_source,
    out,
    *,
    feature_config: FeatureConfig,
    extractor_config: ExtractorConfig,
    train_config: TrainConfig,
    dev=None,
    cache_dir=None,
    workers: int = 2,
    progress=None,
    verbose: int = 1,
    whiten: bool = True,
    stop_after_epochs: int | None = None,
) -> dict:
    """Train (or resume) an extractor; returns the run's ``state`` dictionary.

    Parameters
    ----------
    train_source : path
        A speaker-per-folder tree or a ``manifest.csv``.
    out : path
        Output directory (see the module docstring). An existing ``state.json``
        there is resumed from, when it was written with the same arguments.
    dev : path, optional
        A speaker-per-folder tree of held-out speakers for few-shot validation.
        Without it the checkpoint of the last epoch is kept as the model.
    whiten : bool
        When training ends, fold within-class covariance normalisation on the
        training speakers into the kept model (:mod:`fewshot.train.whitening`).
        Running again on a finished run only adds this step if it is missing.
    stop_after_epochs : int, optional
        Train at most this many epochs in this call, then return (a time-boxed
        run; the same call resumes). Not part of the run's arguments.
    """
    from .data import CropSampler, corpus_speech, list_training_speakers

    tc, out = train_config, Path(out)
    # what can be checked without TensorFlow is checked first
    speakers = list_training_speakers(train_source)
    init = (
        checkpoints.start_point(tc.init, feature_config=feature_config, extractor_config=extractor_config)
        if tc.init and not (out / "state.json").is_file()
        else None
    )

    import keras
    import tensorflow as tf

    from ..model.extractor import Extractor
    from .validation import DevSet

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(tc.seed)
    tf.config.experimental.enable_op_determinism()
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = distribute.make_strategy(tc.strategy)
    task_id = distribute.task_id(strategy)
    if task_id:
        # every worker trains the same weights; only the chief writes to OUT
        out = out / f".worker{task_id}"
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    waves, classes = corpus_speech(
        speakers,
        config=feature_config,
        speeds=tc.speeds,
        cache_dir=cache_dir or out / "speech_cache",
        workers=workers,
        progress=progress,
    )
    hours = sum(len(w) for w, c in zip(waves, classes) if "@" not in c) / feature_config.sr / 3600
    # the whitening layer is added after training; it is not part of what is trained
    trained_config = {k: v for k, v in extractor_config.to_dict().items() if k != "whitened"}
    run_args = {
        "train_config": tc.run_dict(),
        "feature_config": feature_config.to_dict(),
        "extractor_config": trained_config,
        "n_classes": len(classes),
    }
    state = {"epoch": 0, "best": None, "best_epoch": None, "wait": 0, "seconds": 0.0, **run_args}
    if (out / "state.json").is_file():
        saved = json.loads((out / "state.json").read_text())
        if {k: saved.get(k) for k in run_args} != json.loads(json.dumps(run_args)):
            raise RuntimeError(f"{out} holds a run with other arguments; choose another --out")
        state = saved
    total_steps = tc.epochs * tc.steps_per_epoch
    targets, teacher_info = None, None
    if tc.distill_weight:
        if task_id or strategy.num_replicas_in_sync > 1:
            raise RuntimeError("distillation runs on one device (strategy default)")
        from .teacher import class_targets

        targets, teacher_info = class_targets(
            waves,
            classes,
            feature_config=feature_config,
            extractor_config=extractor_config,
            cache_dir=cache_dir or out / "speech_cache",
            progress=progress,
        )
    init = init if state["epoch"] == 0 else None
    init_weights = None
    if init and init[0] == "extractor":
        init_weights = checkpoints.extractor_start(
            init[1], waves, feature_config=feature_config, extractor_config=extractor_config
        )
    with strategy.scope():
        model = build_training_model(
            extractor_config,
            n_mels=feature_config.n_mels,
            n_classes=len(classes),
            tc=tc,
            total_steps=total_steps,
            sync_batchnorm=strategy.num_replicas_in_sync > 1,
            teacher_dim=teacher_info["dim"] if teacher_info else None,
            init_checkpoint=init[1] if init and init[0] == "checkpoint" else None,
            init_weights=init_weights,
        )
    ckpt, manager = checkpoints.checkpoint_manager(model, out)
    if state["epoch"] > 0:
        checkpoints.restore_checkpoint(model, ckpt, manager, out, state["epoch"])
        logger.info("resuming after epoch %d", state["epoch"])
    real_waves = [w for w, c in zip(waves, classes) if "@" not in c]
    dev_set = DevSet.load(dev, feature_config=feature_config, seed=tc.seed) if dev else None
    from .whitening import whiten_kept_model

    if state["epoch"] >= tc.epochs or state["wait"] >= tc.patience:
        if whiten and task_id == 0:
            whiten_kept_model(out, real_waves, dev=dev_set, draws=tc.val_draws, augment=tc.augment)
        return state

    first_epoch = state["epoch"]
    stop_after = tc.epochs if stop_after_epochs is None else stop_after_epochs
    sampler = CropSampler(
        waves,
        feature_config=feature_config,
        crop_frames=extractor_config.crop_frames,
        batch_size=tc.batch_size,
        seed=tc.seed + 7919 * task_id,
        augment=tc.augment,
        targets=targets,
        target_hop=teacher_info and teacher_info["hop"],
    )
    dataset = sampler.dataset(start_batch=state["epoch"] * tc.steps_per_epoch)
    summary = {
        "source": str(train_source),
        "speakers": len(speakers),
        "classes": len(classes),
        "hours_of_speech": round(hours, 2),
        "recipe": run_args["train_config"],
    }
    if teacher_info:
        summary["teacher"] = teacher_info

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            extractor = Extractor(model, feature_config=feature_config, extractor_config=extractor_config)
            state["epoch"] = epoch + 1
            state["seconds"] = state.get("seconds", 0.0) + time.time() - self.t0
            improved = dev_set is None
            if dev_set:
                scores = dev_set.scores(extractor, draws=tc.val_draws)
                logs.update({f"val_{k}": v for k, v in scores.items()})
                key = dev_set.selection_key(scores)
                improved = state["best"] is None or key > tuple(state["best"])
                if improved:
                    state["best"], state["best_epoch"], state["wait"] = list(key), epoch + 1, 0
                else:
                    state["wait"] += 1
                print(f"epoch {epoch + 1}: {dev_set.describe(scores)}{' (best)' if improved else ''}", flush=True)
            if improved:
                extractor.save(
                    out,
                    training={
                        **summary,
                        "epochs": epoch + 1,
                        "dev": logs_to_dev(logs),
                        "train_seconds": round(state["seconds"], 1),
                    },
                )
            checkpoints.save_checkpoint(manager, out, epoch + 1, state)
            if state["wait"] >= tc.patience or epoch + 1 - first_epoch >= stop_after:
                self.model.stop_training = True
            self.t0 = time.time()

        def on_train_begin(self, logs=None):
            self.t0 = time.time()

    callbacks = [
        Validation(),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
    ]
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    distribute.fit(
        model,
        dataset,
        strategy=strategy,
        epochs=tc.epochs,
        initial_epoch=state["epoch"],
        steps_per_epoch=tc.steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    finished = state["epoch"] >= tc.epochs or state["wait"] >= tc.patience
    if whiten and task_id == 0 and finished:
        whiten_kept_model(out, real_waves, dev=dev_set, draws=tc.val_draws, augment=tc.augment)
    state["wall_seconds_this_run"] = round(time.time() - t_start, 1)
    return state


def logs_to_dev(logs: dict) -> dict:
    return {k[4:]: round(float(v), 4) for k, v in logs.items() if k.startswith("val_")}
