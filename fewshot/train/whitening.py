"""Within-class covariance normalisation (WCCN), folded into the extractor.

After training, the unit-normalised embeddings of the training speakers'
segments give a global mean ``mu`` and a within-speaker covariance ``S_w``.
The map ``x -> (x - mu) W`` with ``W = (S_w + reg * mean(eig(S_w)) I)^(-1/2)``
shrinks the directions in which one voice varies (channel, phrase, noise)
relative to the directions that separate voices. It becomes a frozen dense
layer named ``"embedding"`` at the end of the CNN, so every consumer (SVMs,
cosine scores, the enrollment store) sees the whitened embedding.

A run trained with degraded crops fits it on degraded crops too (drawn as
training draws them, :func:`fewshot.train.augment.degrade_crop`), so that the
directions a room, noise or another microphone move a voice in are shrunk as
well: on the shipped model this lowered the dev EER in all but one condition
measured (README, the levers table).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

#: degraded 3 s crops per training speaker added to the fit when the run trained with degraded crops
DEGRADED_PER_CLASS = 20


def within_class_whitening(E: np.ndarray, labels: np.ndarray, *, reg: float = 0.3):
    """Mean and WCCN matrix of the embeddings ``E`` grouped by ``labels``.

    Parameters
    ----------
    E : np.ndarray [shape=(n, d)]
        Unit-normalised embeddings.
    labels : np.ndarray [shape=(n,)]
        Speaker of each row; at least two speakers.
    reg : float
        Added to the eigenvalues of ``S_w``, relative to their mean; larger is
        closer to plain centring. 0.3 was best of 0.03-1 on dev.

    Returns
    -------
    mu : np.ndarray [shape=(d,)]
    W : np.ndarray [shape=(d, d)]
        Symmetric; whitened embeddings are ``(E - mu) @ W``.
    """
    E = np.asarray(E, dtype=np.float64)
    labels = np.asarray(labels)
    classes, inverse = np.unique(labels, return_inverse=True)
    if len(classes) < 2 or len(E) != len(labels):
        raise ValueError(f"need embeddings of at least two speakers, given {len(classes)} for {len(E)} rows")
    means = np.zeros((len(classes), E.shape[1]))
    np.add.at(means, inverse, E)
    means /= np.bincount(inverse)[:, None]
    R = E - means[inverse]
    Sw = R.T @ R / len(E)
    w, V = np.linalg.eigh(Sw)
    w = np.clip(w, 0.0, None)
    W = (V / np.sqrt(w + reg * max(w.mean(), 1e-12))) @ V.T
    return E.mean(axis=0), W


def embed_classes(
    extractor, waves, *, max_segments: int = 40, seed: int = 0, augment=None, degraded: int = DEGRADED_PER_CLASS
):
    """Unit-normalised embeddings of 3 s segments (1.5 s hop) of every class's speech.

    ``waves`` holds one waveform per class (float, or int16 as training caches
    it); at most ``max_segments`` random segments of each are kept. With an
    :class:`~fewshot.train.augment.AugmentConfig` ``augment``, ``degraded``
    more 3 s crops of each class at random places are embedded after one
    random draw of its room, noise and microphone each (babble and shaped
    noise from the first 3 s of the other classes).

    Returns
    -------
    E : np.ndarray [shape=(n, dim)]
    labels : np.ndarray [shape=(n,)]
    """
    rng = np.random.default_rng(seed)
    from .data import int16_to_float

    waves = [int16_to_float(y) for y in waves]
    E, labels = [], []
    for k, y in enumerate(waves):
        e = extractor.embed([y], return_segments=True)[0]
        if len(e) > max_segments:
            e = e[np.sort(rng.choice(len(e), max_segments, replace=False))]
        E.append(e)
        labels.append(np.full(len(e), k))
    if augment is not None and degraded > 0:
        from .augment import degrade_crop

        sr = extractor.feature_config.sr
        n = int(extractor.feature_config.segment_s * sr)
        firsts = [(k, y[:n]) for k, y in enumerate(waves) if len(y) >= n]
        for k, y in enumerate(waves):
            if len(y) < n:
                continue
            others = [o for j, o in firsts if j != k]  # babble and shaped noise from other voices only
            crops = [
                degrade_crop(y[s : s + n], sr=sr, rng=rng, others=others, config=augment)
                for s in rng.integers(0, len(y) - n + 1, degraded)
            ]
            E.append(extractor.embed(crops))
            labels.append(np.full(len(crops), k))
    return np.concatenate(E), np.concatenate(labels)


def whiten_extractor(extractor, mu: np.ndarray, W: np.ndarray):
    """A new :class:`~fewshot.model.extractor.Extractor` ending in the frozen map ``(x - mu) W``.

    ``extractor`` must be an unwhitened ``"resnet"`` extractor; its weights are
    copied unchanged.
    """
    from ..model.extractor import Extractor
    from ..model.nn import build_cnn

    cfg = extractor.extractor_config
    if cfg.arch != "resnet" or cfg.whitened:
        raise ValueError(f"can only whiten an unwhitened resnet extractor, given {cfg}")
    new_cfg = dataclasses.replace(cfg, whitened=True)
    model = build_cnn(new_cfg, n_mels=extractor.feature_config.n_mels)
    W = np.asarray(W, np.float32)
    weights = extractor.model.get_weights() + [W, (-np.asarray(mu, np.float32) @ W).astype(np.float32)]
    shapes = [tuple(v.shape) for v in model.weights]
    if shapes != [w.shape for w in weights]:
        raise ValueError(f"weights do not fit the whitened model: {shapes} vs {[w.shape for w in weights]}")
    model.set_weights(weights)
    return Extractor(
        model,
        feature_config=extractor.feature_config,
        extractor_config=new_cfg,
        meta=extractor.meta,
        batch_size=extractor.batch_size,
    )


def whiten_kept_model(out: Path, waves, *, dev=None, draws: int = 20, reg: float = 0.3, augment=None) -> None:
    """Replace the kept model in ``out`` by its whitened version (once).

    ``waves`` are the real training speakers only: speed-perturbed copies vary
    in other directions than a voice does and made the map worse on dev.
    ``dev`` is the run's :class:`~fewshot.train.validation.DevSet`;
    ``augment`` the run's waveform augmentation, which adds degraded crops
    (see :func:`embed_classes`).
    """
    from ..model.extractor import Extractor

    out = Path(out)
    ex = Extractor.load(out)
    if ex.extractor_config.whitened or ex.extractor_config.arch != "resnet":
        return
    t0 = time.time()
    E, labels = embed_classes(ex, waves, augment=augment)
    mu, W = within_class_whitening(E, labels, reg=reg)
    wex = whiten_extractor(ex, mu, W)
    training = dict(ex.meta.get("training", {}))
    training["whitening"] = {
        "segments": int(len(E)),
        "classes": int(len(np.unique(labels))),
        "reg": reg,
        "degraded_per_class": DEGRADED_PER_CLASS if augment is not None else 0,
    }
    if dev:
        scores = dev.scores(wex, draws=draws)
        training["dev_before_whitening"] = training.get("dev", {})
        training["dev"] = {k: round(float(v), 4) for k, v in scores.items()}
        print(f"whitened: {dev.describe(scores)}", flush=True)
    training["whitening"]["seconds"] = round(time.time() - t0, 1)
    wex.save(out, training=training)
