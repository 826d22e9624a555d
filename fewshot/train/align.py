"""Aligners from earlier extractors to a new one: paired embeddings, fitting, choice.

The runtime side (applying an aligner to a group's voiceprints) is
:mod:`fewshot.model.align`. Here, at release time:

1. :func:`paired_embeddings`: the speech of every training speaker (the
   runtime's decoding and VAD, :func:`fewshot.audio.vad.load_speech`, at most
   ``max_seconds`` of it) cut into the 3 s enrollment segments the store keeps,
   embedded by every extractor; cached per model under ``cache_dir``.
2. :func:`fit_aligner`: a map from the old embeddings to the new ones:
   ``"identity"`` keeps them as they are, ``"linear"`` is least squares, and
   ``"mlp1"``, ``"mlp2"`` (a residual MLP of one or two hidden layers beside
   the linear map) start from it and are trained with a cosine loss to the
   paired new embedding, in Keras.
3. :func:`mapped_figures`: the standard protocol of :mod:`fewshot.eval.protocol`
   with the enrollment embedded by the old model and mapped, the test pieces by
   the new one. :func:`choose_shape` keeps the simplest shape unless a more
   complex one measures clearly better; :func:`fewshot.train.release.add_aligners`
   runs these steps and ships the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..audio.vad import load_speech
from ..errors import AudioError
from ..model.align import Aligner
from ..persistence import atomic_save_npz, read_npz_cache

logger = logging.getLogger(__name__)

#: Aligner shapes, simplest first: hidden layers of the residual MLP beside the linear map
#: (``None``: the identity, the old embeddings as they are, for extractors of one dimension).
SHAPES = {"identity": None, "linear": (), "mlp1": (256,), "mlp2": (256, 256)}


def training_speech(root, *, max_seconds: float = 90.0, config=None):
    """``(speaker, speech)`` of each training speaker: their files' speech, concatenated, at most ``max_seconds``."""
    from ..config import FeatureConfig
    from .data import list_training_speakers

    limit = int(max_seconds * (config or FeatureConfig()).sr)
    for name, files in sorted(list_training_speakers(root).items()):
        parts, total = [], 0
        for f in files:
            try:
                y = load_speech(f, config=config).samples
            except AudioError as exc:
                logger.info("%s: left out (%s)", f, exc.reason)
                continue
            parts.append(y)
            total += len(y)
            if total >= limit:
                break
        if parts:
            yield name, np.concatenate(parts)[:limit]


def _cache_key(root, *, max_seconds: float, max_segments: int, seed: int) -> str:
    from .data import list_training_speakers

    files = sorted(
        (n, str(Path(f).resolve()), Path(f).stat().st_size)
        for n, fs in list_training_speakers(root).items()
        for f in fs
    )
    blob = json.dumps([files, max_seconds, max_segments, seed])
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def paired_embeddings(
    extractors, root, *, cache_dir=None, max_seconds: float = 90.0, max_segments: int = 60, seed: int = 0, progress=None
) -> tuple[dict, np.ndarray]:
    """Embeddings of the same training segments under every extractor.

    Parameters
    ----------
    extractors : list of Extractor
        Extractors of one feature configuration (one sample rate, one segment length).
    root : path
        Speaker-per-folder tree or ``manifest.csv`` (:func:`fewshot.train.data.list_training_speakers`).
    cache_dir : path, optional
        Where each extractor's embeddings are kept (``<model id>-<data key>.npz``) for later releases.
    max_seconds, max_segments : float, int
        Speech per speaker, and how many of its segments (drawn at random, the same for every model).

    Returns
    -------
    E : dict
        ``{model_id: np.ndarray [shape=(n, dim)]}``, rows paired across models.
    labels : np.ndarray [shape=(n,)]
        The speaker of each row (an index).
    """
    key = _cache_key(root, max_seconds=max_seconds, max_segments=max_segments, seed=seed)
    files = {ex.model_id: Path(cache_dir) / f"{ex.model_id}-{key}.npz" for ex in extractors} if cache_dir else {}
    out, labels = {}, None
    for model_id, f in files.items():
        z = read_npz_cache(f, keys=("E", "labels"))
        if z is not None and z["E"].ndim == 2 and len(z["E"]) == len(z["labels"]):
            out[model_id], labels = z["E"], z["labels"]
    todo = [ex for ex in extractors if ex.model_id not in out]
    if todo:
        rng = np.random.default_rng(seed)
        parts, labs = {ex.model_id: [] for ex in todo}, []
        speech = training_speech(root, max_seconds=max_seconds, config=todo[0].feature_config)
        for k, (_, y) in enumerate(progress(speech) if progress is not None else speech):
            per = {ex.model_id: ex.embed([y], return_segments=True)[0] for ex in todo}
            n = len(next(iter(per.values())))
            keep = np.sort(rng.choice(n, max_segments, replace=False)) if n > max_segments else np.arange(n)
            for model_id, E in per.items():
                parts[model_id].append(E[keep])
            labs.append(np.full(len(keep), k))
        labels = np.concatenate(labs)
        for model_id, P in parts.items():
            out[model_id] = np.concatenate(P)
            if cache_dir:
                atomic_save_npz(files[model_id], E=out[model_id], labels=labels)
    return out, labels


def fit_linear(X: np.ndarray, Y: np.ndarray, *, reg: float = 1e-6) -> Aligner:
    """Ridge least squares ``Y ~ X A + a`` (``reg`` relative to the number of rows; the bias is not shrunk).

    With thousands of pairs for 193 x 192 numbers, the least shrinkage is best:
    over five folds of the training speakers (first shipped model to today's),
    the held-out pairs' cosine falls from 0.996 at ``reg=1e-7`` to 0.983 at
    ``1e-4`` and 0.940 at ``1e-3``.
    """
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    Xa = np.c_[X, np.ones(len(X))]
    R = reg * len(X) * np.eye(Xa.shape[1])
    R[-1, -1] = 0.0
    B = np.linalg.solve(Xa.T @ Xa + R, Xa.T @ Y)
    return Aligner(B[:-1].astype(np.float32), B[-1].astype(np.float32))


def fit_aligner(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    shape: str = "linear",
    epochs: int = 40,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> Aligner:
    """An aligner of ``shape`` (:data:`SHAPES`) from old embeddings ``X`` to new ones ``Y``.

    Parameters
    ----------
    X, Y : np.ndarray [shape=(n, d_in)], [shape=(n, d_out)]
        Unit-length embeddings of the same segments by the old and the new extractor.
    shape : str
        A key of :data:`SHAPES`: ``"identity"`` fits nothing, ``"linear"`` is
        :func:`fit_linear`'s map; the MLPs start from it, their residual branch at zero.
    epochs, batch_size, learning_rate : int, int, float
        For the MLPs: Adam on the cosine loss ``1 - cos(f(x), y)``. A speaker
        term added to it (a softmax over the training speakers' new-model
        centroids, weight 0.5) did worse on dev, for the first shipped model
        and for the epoch-8 robust model.

    Returns
    -------
    Aligner
    """
    if SHAPES[shape] is None:
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"no identity between embeddings of {X.shape[1]} and {Y.shape[1]} numbers")
        return Aligner.identity(X.shape[1])
    init = fit_linear(X, Y)
    if not SHAPES[shape]:
        return init
    import keras

    keras.utils.set_random_seed(seed)
    d_out = Y.shape[1]
    inp = keras.Input((X.shape[1],))
    h = inp
    for k, width in enumerate(SHAPES[shape]):
        h = keras.layers.Dense(width, activation="relu", name=f"hidden{k}")(h)
    h = keras.layers.Dense(d_out, kernel_initializer="zeros", name=f"hidden{len(SHAPES[shape])}")(h)
    out = keras.layers.Add()([keras.layers.Dense(d_out, name="linear")(inp), h])
    model = keras.Model(inp, keras.layers.UnitNormalization()(out))
    model.get_layer("linear").set_weights([init.A, init.a])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.CosineSimilarity())
    model.fit(
        np.asarray(X, np.float32),
        np.asarray(Y, np.float32),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
    )
    A, a = model.get_layer("linear").get_weights()
    hidden = tuple(tuple(model.get_layer(f"hidden{k}").get_weights()) for k in range(len(SHAPES[shape]) + 1))
    return Aligner(A, a, hidden)


#: The rows of the model-change table: who embedded the enrollment, and who the test pieces.
ROWS = (
    "old model / old model",
    "old model, mapped / new model",
    "old model, no mapping / new model",
    "new model / new model",
)


def mapped_figures(
    old,
    new,
    aligner: Aligner | None,
    *,
    rows=ROWS,
    T: float = 15.0,
    C: float = 10.0,
    gamma: float = 1.0,
    draws: int = 100,
    seed: int = 0,
) -> dict:
    """The standard protocol's figures for the ``rows`` of :data:`ROWS`.

    Parameters
    ----------
    old, new : EmbeddedSpeakers
        :func:`fewshot.eval.protocol.embed_protocol` of the same speakers by the old and the new extractor.
    aligner : Aligner or None
        Without one, the mapped row is left out (and the unmapped one when the dimensions differ).
    C, gamma : float
        The new model's SVM settings.

    Returns
    -------
    dict
        ``{row: {"acc_3", "acc_10", "acc_all", "eer"}}`` (:func:`fewshot.eval.benchmark.condition_figures`:
        mean accuracy over ``draws`` groups per size, the same groups for every row; EER of each
        speaker's enrollment centroid against every test piece).
    """
    from ..config import ClassifierConfig
    from ..eval.benchmark import condition_figures
    from ..eval.protocol import EmbeddedSpeakers

    same_dim = old.enroll[T][0].shape[1] == new.enroll[T][0].shape[1]
    views = {
        ROWS[0]: (old.enroll[T], old.tests),
        ROWS[1]: ([aligner.transform(e) for e in old.enroll[T]], new.tests) if aligner is not None else None,
        ROWS[2]: (old.enroll[T], new.tests) if same_dim else None,
        ROWS[3]: (new.enroll[T], new.tests),
    }
    cc = ClassifierConfig(C=C, gamma=gamma)
    return {
        row: condition_figures(
            EmbeddedSpeakers(new.names, {T: enroll}, tests, new.genders),
            classifier=cc,
            group_sizes=(3, 10, "all"),
            T=T,
            draws=draws,
            seed=seed,
        )
        for row, view in views.items()
        if row in rows and view is not None
        for enroll, tests in [view]
    }


def choose_shape(candidates: dict, *, margin: float = 0.005) -> str:
    """The shape to ship: the simplest, unless a more complex one is better by ``margin``.

    ``candidates`` maps each shape (simplest first) to its mapped-row figures; a
    shape's merit is the mean of its accuracy on 10 people and on all speakers
    and of one minus its EER. The default margin, half a point of merit, is
    about three of dev's 213 all-speaker test pieces (0.47 points of accuracy
    each), what one aligner differs from another by with the seed alone.
    """

    def merit(f):
        return (f["acc_10"] + f["acc_all"] + 1.0 - f["eer"]) / 3

    best = next(iter(candidates))
    for shape, f in candidates.items():
        if merit(f) > merit(candidates[best]) + margin:
            best = shape
    return best
