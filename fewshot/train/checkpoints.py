"""Where a training run starts and resumes: its checkpoints, and ``--init``.

``--init`` names either another run's directory (its last checkpoint) or a
model directory (a released extractor: its network, and class centres computed
from it); :func:`start_point` tells which, before any slow step.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from ..config import ExtractorConfig, FeatureConfig
from ..persistence import atomic_write_bytes


def start_point(run, *, feature_config: FeatureConfig, extractor_config: ExtractorConfig) -> tuple[str, str]:
    """Where ``--init run`` starts, checked without TensorFlow: a wrong ``--init`` is refused before any slow step.

    Returns ``("checkpoint", path)`` for a run directory's last checkpoint (read
    from the state file that ``tf.train.CheckpointManager`` keeps), or
    ``("extractor", run)`` for a model directory without checkpoints (a
    released extractor) of the same features and network.
    """
    folder = Path(run) / "checkpoint"
    state = folder / "checkpoint"
    if not folder.exists() and (Path(run) / "meta.json").is_file():
        from ..model.modeldir import read_model_meta

        _, fc, ec = read_model_meta(Path(run))
        if fc != feature_config or dataclasses.replace(ec, whitened=False) != extractor_config:
            raise FileNotFoundError(
                f"{run}: the model's features or network differ from this run's "
                f"({fc}, {ec}); it cannot be a starting point"
            )
        return "extractor", str(run)
    text = state.read_text(encoding="utf-8", errors="replace")[:4096] if state.is_file() else ""
    match = re.search(r'^model_checkpoint_path:\s*"([A-Za-z0-9_.-]+)"\s*$', text, re.MULTILINE)
    if match is None or match.group(1).startswith(".") or not (folder / f"{match.group(1)}.index").is_file():
        raise FileNotFoundError(
            f"{run}: no training checkpoint to start from (checkpoint/ is missing or empty, "
            "and it is not a model directory)"
        )
    return "checkpoint", str(folder / match.group(1))


#: seconds of each class's speech whose mean embedding starts its class centre (``--init`` from a model)
CENTRE_SECONDS = 12.0


def extractor_start(path, waves, *, feature_config: FeatureConfig, extractor_config: ExtractorConfig):
    """The CNN weights of the extractor in model directory ``path`` (its whitening layer dropped)
    and a starting centre for each class: the mean unit embedding of its first 3 s segments
    (up to :data:`CENTRE_SECONDS`), so the head agrees with the network from the first step."""
    from ..model.extractor import Extractor
    from ..model.nn import build_cnn
    from .data import int16_to_float

    ex = Extractor.load(path, backend="keras")
    weights = ex.model.get_weights()
    if ex.extractor_config.whitened:
        weights = weights[:-2]
    cnn = build_cnn(extractor_config, n_mels=feature_config.n_mels)
    cnn.set_weights(weights)
    bare = Extractor(cnn, feature_config=feature_config, extractor_config=extractor_config)
    n = int(CENTRE_SECONDS * feature_config.sr)
    centres = np.stack([bare.embed([int16_to_float(y[:n])], return_segments=True)[0].mean(axis=0) for y in waves])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True) + 1e-12
    return weights, centres


def checkpoint_manager(model, out: Path):
    import tensorflow as tf

    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    return ckpt, tf.train.CheckpointManager(ckpt, str(out / "checkpoint"), max_to_keep=1)


def save_checkpoint(manager, out: Path, epoch: int, state: dict) -> None:
    """The epoch's weights and optimizer state (``tf.train.CheckpointManager``), then ``state.json``.

    ``state.json`` is written last: a kill in between leaves the previous epoch's
    state pointing at a newer checkpoint, which :func:`restore_checkpoint` refuses
    to mix; the manager's own index names the newest complete checkpoint.
    """
    manager.save(checkpoint_number=epoch)
    atomic_write_bytes(out / "state.json", json.dumps(state, indent=2).encode())


def restore_checkpoint(model, ckpt, manager, out: Path, epoch: int) -> None:
    model.optimizer.build(model.trainable_variables)
    path = manager.latest_checkpoint
    if path is not None:
        if not path.endswith(f"-{epoch}"):
            raise RuntimeError(
                f"{out}: the last checkpoint ({path}) is not of epoch {epoch} in state.json; start a new --out"
            )
        ckpt.restore(path).assert_existing_objects_matched()
        return
    legacy = out / "checkpoint" / "optimizer.npz"  # runs checkpointed by hand before CheckpointManager
    if not legacy.is_file():
        raise RuntimeError(f"{out}: state.json says epoch {epoch} but there is no checkpoint; start a new --out")
    model.load_weights(out / "checkpoint" / "model.weights.h5")
    with np.load(legacy) as z:
        values = [z[f"arr_{i}"] for i in range(len(z.files))]
    if len(values) != len(model.optimizer.variables):
        raise RuntimeError(f"{legacy}: optimizer state does not match this model; start a new --out")
    for var, val in zip(model.optimizer.variables, values):
        var.assign(val)
