"""The frozen :class:`Extractor`: speech in, unit-length voice embeddings out.

It runs the CNN of :mod:`fewshot.nn` over log-mel spectrograms and returns the
L2-normalised activations of the layer named ``"embedding"``, the features the
per-group SVMs see. The CNN runs on a backend (:mod:`fewshot.backend`): the
exported LiteRT model when the model directory has one, with no TensorFlow
imported, else the Keras model. Both give the same embeddings under the same
model id, so groups work with either. What a model directory holds is
described in :mod:`fewshot.modeldir`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np

from .backend import Backend, LiteRTBackend
from .config import ExtractorConfig, FeatureConfig
from .errors import CorruptModelError, IncompatibleModelError
from .features import l2_normalize, log_mel, segment
from .modeldir import (MODEL_FILE, keras_file, litert_entry, litert_file, model_identity, read_model_meta,
                       write_model_meta)

logger = logging.getLogger(__name__)

__all__ = ["Extractor", "load_extractor", "default_model_dir", "model_identity", "MODEL_FILE", "BACKENDS"]

#: ``auto``: the float LiteRT model when the directory has one (and LiteRT is installed), else Keras.
BACKENDS = ("auto", "keras", "litert", "litert-int8")
#: The environment variable that sets the backend when none is asked for.
BACKEND_ENV = "FEWSHOT_BACKEND"


class Extractor:
    """A frozen CNN that maps speech to fixed-size embeddings.

    Parameters
    ----------
    model : keras.Model or Backend
        A Keras model built by :func:`fewshot.nn.build_cnn` (or any with a layer
        named ``"embedding"``), or a backend that runs one.
    feature_config : FeatureConfig
    extractor_config : ExtractorConfig
    meta : dict, optional
        What :meth:`load` read from ``meta.json`` (training summary, checksum).
    batch_size : int
        Segments per forward pass.
    """

    def __init__(self, model, *, feature_config: FeatureConfig, extractor_config: ExtractorConfig,
                 meta: dict | None = None, batch_size: int = 64):
        self.backend = model if isinstance(model, Backend) else _keras_backend().KerasBackend(model)
        self.feature_config = feature_config
        self.extractor_config = extractor_config
        self.meta = dict(meta or {})
        self.batch_size = batch_size
        #: The model directory it was loaded from (``None`` for a model in memory).
        self.path = None

    @property
    def model(self):
        """The Keras model of the ``"embedding"`` output (Keras backend only)."""
        try:
            return self.backend.model
        except AttributeError:
            raise AttributeError(f"the {self.backend.name} backend runs no Keras model; load the extractor with "
                                 "backend='keras'") from None

    @property
    def dim(self) -> int:
        return self.backend.dim

    @property
    def model_id(self) -> str:
        """Identifies what makes the embeddings: embeddings from two ids are never mixed.

        Derived (:func:`model_identity`) from the model file's checksum and the
        feature and extractor configuration when the model was saved or loaded,
        never taken from ``meta.json`` on trust.
        """
        return self.meta.get("model_id", "unsaved")

    def embed(self, waveforms, *, return_segments: bool = False, max_chunk_s: float = 20.0):
        """Embed speech: one unit-length vector per utterance, or one per segment.

        Statistics pooling takes any length, so an utterance is not cut into
        segments: its whole log-mel spectrogram goes through the CNN (padded by
        repetition to at least ``feature_config.segment_s``). Utterances longer
        than ``max_chunk_s`` are cut into equal chunks whose normalised
        embeddings are averaged; utterances of equal length are batched. A
        model with a fixed input length (``arch="original"``) gets the mean of
        its non-overlapping segments instead.

        Parameters
        ----------
        waveforms : list of np.ndarray [shape=(n,)], or one such array
            Mono float32 audio at ``feature_config.sr`` (16 kHz), any length.
        return_segments : bool
            Instead, embed each utterance's overlapping segments
            (``feature_config.segment_s`` long, every ``segment_hop_s``): the
            points an SVM learns a person from.
        max_chunk_s : float
            Longest piece embedded in one pass.

        Returns
        -------
        E : np.ndarray [shape=(len(waveforms), dim), dtype=float32]
            Unit-norm rows; never NaN. With ``return_segments``: a list with one
            array of shape ``(n_segments_i, dim)`` per waveform.
        """
        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            waveforms = [waveforms]
        waveforms = [np.asarray(y, dtype=np.float32) for y in waveforms]
        cfg = self.feature_config
        fixed = self.backend.fixed_frames
        if return_segments or fixed is not None:
            frames = fixed or cfg.segment_frames
            hop = cfg.segment_hop_frames if return_segments else frames
            segs = [segment(log_mel(y, config=cfg), seg_frames=frames, hop_frames=hop) for y in waveforms]
            E = l2_normalize(self._run(np.concatenate(segs))) if segs else np.zeros((0, self.dim), np.float32)
            bounds = np.cumsum([0] + [len(s) for s in segs])
            per_utt = [E[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            if return_segments:
                return per_utt
            return l2_normalize(np.stack([e.mean(axis=0) for e in per_utt]))
        if not waveforms:
            return np.zeros((0, self.dim), np.float32)
        max_frames = max(cfg.segment_frames, int(round(max_chunk_s * 1000 / cfg.hop_ms)))
        chunks, owner = [], []
        for i, y in enumerate(waveforms):
            S = log_mel(y, config=cfg)
            if len(S) < cfg.segment_frames:
                S = segment(S, seg_frames=cfg.segment_frames, hop_frames=cfg.segment_frames)[0]
            k = -(-len(S) // max_frames)
            bounds = np.linspace(0, len(S), k + 1).astype(int)
            chunks += [S[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            owner += [i] * k
        E = np.zeros((len(chunks), self.dim), np.float32)
        by_length: dict[int, list[int]] = {}
        for j, c in enumerate(chunks):
            by_length.setdefault(len(c), []).append(j)
        for length, idx in by_length.items():
            step = max(1, self.batch_size * cfg.segment_frames // length)  # as many frames as a batch of segments
            for a in range(0, len(idx), step):
                E[idx[a:a + step]] = self._run(np.stack([chunks[j] for j in idx[a:a + step]]))
        out = np.zeros((len(waveforms), self.dim), np.float32)
        np.add.at(out, np.asarray(owner), l2_normalize(E))
        return l2_normalize(out)

    def _run(self, X: np.ndarray) -> np.ndarray:
        """Raw ``"embedding"`` activations of log-mel inputs ``X`` (n, frames, n_mels), in batches."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[-1] != self.feature_config.n_mels:
            raise ValueError(f"expected log-mel inputs of shape (n, frames, {self.feature_config.n_mels}), "
                             f"given X.shape={X.shape}")
        out = [self.backend.run(X[i:i + self.batch_size]) for i in range(0, len(X), self.batch_size)]
        E = np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
        if not np.all(np.isfinite(E)):
            raise CorruptModelError(f"extractor {self.model_id} produced NaN or infinite embeddings; "
                                    "its weights are damaged: copy or train it again")
        return E

    def save(self, path, *, training: dict | None = None) -> Path:
        """Write the Keras model and ``meta.json`` into the directory ``path``, atomically as a pair.

        The weights go to a new file named by their checksum
        (``extractor-<sha256[:12]>.keras``); replacing ``meta.json``, which names
        it, is the single step that switches to the new model. A kill at any
        moment leaves either the old pair or the new one. Model files no longer
        named (the old weights, LiteRT models exported from them) are removed
        afterwards.

        Raises
        ------
        IncompatibleModelError
            On a LiteRT backend, which has no Keras model to write.
        """
        if not hasattr(self.backend, "write"):
            raise IncompatibleModelError(f"the {self.backend.name} backend cannot save a model; load the extractor "
                                         "with backend='keras'")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model_file, digest = self.backend.write(path)
        meta = {
            "model_id": model_identity(digest, self.feature_config, self.extractor_config),
            "sha256": digest,
            "model_file": model_file,
            "feature_config": self.feature_config.to_dict(),
            "extractor_config": self.extractor_config.to_dict(),
            "embedding_dim": self.dim,
            "training": training if training is not None else self.meta.get("training", {}),
        }
        if "classifier" in self.meta:
            meta["classifier"] = self.meta["classifier"]
        self.meta = write_model_meta(path, meta)
        self.path = path
        return path

    @classmethod
    def load(cls, path, *, backend: str | None = None, **kwargs) -> "Extractor":
        """Load a model directory written by :meth:`save` (or by training), on a backend.

        Parameters
        ----------
        path : str or Path
        backend : str, optional
            One of :data:`BACKENDS`; default: ``$FEWSHOT_BACKEND``, else ``"auto"``
            (the float LiteRT model when the directory has one, else Keras).

        Raises
        ------
        IncompatibleModelError
            Missing metadata, another format, a feature config this version
            does not know, or a backend the directory or the installation lacks.
        CorruptModelError
            A model file does not match its checksum or cannot be read.
        """
        path = Path(path)
        meta, feature_config, extractor_config = read_model_meta(path)
        runner = _open_backend(path, meta, _backend_choice(meta, backend))
        if runner.n_mels != feature_config.n_mels:
            raise IncompatibleModelError(f"{path}: the {runner.name} model reads {runner.n_mels} mel bands but its "
                                         f"feature config says n_mels={feature_config.n_mels}")
        extractor = cls(runner, feature_config=feature_config, extractor_config=extractor_config, meta=meta, **kwargs)
        extractor.path = path
        return extractor


def _backend_choice(meta: dict, requested: str | None) -> str:
    """The backend to load: ``requested``, ``$FEWSHOT_BACKEND``, or what ``"auto"`` picks for ``meta``."""
    choice = requested or os.environ.get(BACKEND_ENV) or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; given {choice!r}")
    if choice != "auto":
        return choice
    has_litert = litert_entry(meta, "float") is not None and importlib.util.find_spec("ai_edge_litert") is not None
    return "litert" if has_litert else "keras"


def _open_backend(path: Path, meta: dict, choice: str) -> Backend:
    """The backend ``choice`` on the checked model file of the directory ``path``."""
    if choice == "keras":
        file = keras_file(path, meta)
        return _keras_backend().KerasBackend.read(file)
    precision = "int8" if choice == "litert-int8" else "float"
    file = litert_file(path, meta, precision)
    try:
        return LiteRTBackend(file, precision=precision)
    except ImportError as exc:
        raise IncompatibleModelError(f"the LiteRT backend needs ai-edge-litert ({exc}): pip install ai-edge-litert") \
            from exc
    except (ValueError, RuntimeError) as exc:
        raise CorruptModelError(f"{file}: cannot be loaded by LiteRT ({exc})") from exc


def _keras_backend():
    """:mod:`fewshot.keras_backend` (imports TensorFlow), or an error saying what to install or export."""
    try:
        from . import keras_backend
    except ImportError as exc:
        raise IncompatibleModelError(f"the Keras backend needs TensorFlow, which cannot be imported ({exc}): "
                                     "pip install 'fewshot[train]', or export a LiteRT model with "
                                     "fewshot export MODEL --format tflite (in an environment with TensorFlow)") \
            from exc
    return keras_backend


#: Names that shipped models had before, and the model each now is: the robust model shipped as
#: ``rooms`` became the default (the same file, so the same id), and ``--model rooms`` still works.
FORMER_NAMES = {"rooms": "default"}


def default_model_dir(name: str = "default") -> Path:
    """Directory of an extractor shipped inside the package (``default``, or a name in :data:`FORMER_NAMES`)."""
    return Path(str(resources.files("fewshot") / "models" / FORMER_NAMES.get(name, name)))


def load_extractor(path=None, **kwargs) -> Extractor:
    """Load the default extractor shipped with fewshot, a shipped one by name, or the model directory ``path``.

    A bare name such as ``"default"`` (or ``"rooms"``, its former name) is a model
    shipped with fewshot unless a folder of that name exists in the working directory. Keyword arguments go
    to :meth:`Extractor.load` (``backend``) and the constructor (``batch_size``).
    """
    if path is None:
        path = default_model_dir()
    elif "/" not in str(path) and not Path(path).exists() and default_model_dir(str(path)).is_dir():
        path = default_model_dir(str(path))
    return Extractor.load(path, **kwargs)
