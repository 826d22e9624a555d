"""The frozen :class:`Extractor`: speech in, unit-length voice embeddings out.

It runs the CNN of :mod:`fewshot.model.nn` over log-mel spectrograms and returns the
L2-normalised activations of the layer named ``"embedding"``, the features the
per-group SVMs see. The CNN runs on a backend (:mod:`fewshot.model.backend`): the
exported LiteRT model when the model directory has one, with no TensorFlow
imported, else the Keras model. Both give the same embeddings under the same
model id, so groups work with either. What a model directory holds is
described in :mod:`fewshot.model.modeldir`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..audio.features import l2_normalize, log_mel, segment
from ..audio.vad import normalize_loudness
from ..config import ExtractorConfig, FeatureConfig
from ..errors import CorruptModelError, IncompatibleModelError
from .backend import Backend, LiteRTBackend
from .modeldir import (
    MODEL_FILE,
    keras_file,
    litert_entry,
    litert_file,
    model_identity,
    read_model_meta,
    write_model_meta,
)

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "MODEL_FILE", "Extractor", "default_model_dir", "load_extractor", "model_identity"]

#: ``auto``: the float LiteRT model when the directory has one (and LiteRT is installed), else Keras.
BACKENDS = ("auto", "keras", "litert", "litert-int8")
#: The environment variable that sets the backend when none is asked for.
BACKEND_ENV = "FEWSHOT_BACKEND"


class Extractor:
    """A frozen CNN that maps speech to fixed-size embeddings.

    Parameters
    ----------
    model : keras.Model or Backend
        A Keras model built by :func:`fewshot.model.nn.build_cnn` (or any with a layer
        named ``"embedding"``), or a backend that runs one.
    feature_config : FeatureConfig
    extractor_config : ExtractorConfig
    meta : dict, optional
        What :meth:`load` read from ``meta.json`` (training summary, checksum).
    batch_size : int
        Segments per forward pass.
    """

    def __init__(
        self,
        model,
        *,
        feature_config: FeatureConfig,
        extractor_config: ExtractorConfig,
        meta: dict | None = None,
        batch_size: int = 64,
    ):
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
            raise AttributeError(
                f"the {self.backend.name} backend runs no Keras model; load the extractor with backend='keras'"
            ) from None

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
            window_s = (fixed or cfg.segment_frames) * cfg.hop_ms / 1000
            hop_s = cfg.segment_hop_s if return_segments else window_s
            per_utt = [self.windows(y, window_s=window_s, hop_s=hop_s, min_s=window_s) for y in waveforms]
            if return_segments:
                return per_utt
            if not per_utt:
                return np.zeros((0, self.dim), np.float32)
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
                E[idx[a : a + step]] = self._run(np.stack([chunks[j] for j in idx[a : a + step]]))
        out = np.zeros((len(waveforms), self.dim), np.float32)
        np.add.at(out, np.asarray(owner), l2_normalize(E))
        return l2_normalize(out)

    def windows(
        self,
        y,
        *,
        window_s: float,
        hop_s: float,
        batch: int | None = None,
        n_samples: int | None = None,
        own_frames: bool = False,
        min_s: float | None = None,
        normalise: bool = False,
    ) -> np.ndarray:
        """Unit-length embeddings of the windows of ``y``, ``window_s`` long every ``hop_s``: the network's one door.

        Every path that embeds speech in pieces asks this: enrollment's 3 s
        segments (:meth:`embed`), the turn decoder's 1 s windows
        (:func:`fewshot.turns.timeline.embed_windows`), the enrollment self-check
        (:mod:`fewshot.groups.selfcheck`) and the live stream
        (:class:`fewshot.live.turns.TurnStream`). The windows go through the
        CNN ``batch`` at a time, and a NaN or infinite embedding is refused.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)], or an iterable of such arrays
            Speech at ``feature_config.sr``; pieces in order (with ``n_samples``
            their total length) are read as the windows need them, so a long
            recording's log-mel is never held whole.
        window_s, hop_s : float
            Length and hop of the windows, in seconds.
        batch : int, optional
            Windows per forward pass (default: ``batch_size``).
        n_samples : int, optional
            The length of ``y`` when it is given in pieces.
        own_frames : bool
            ``False``: the windows are cut from one log-mel pass over ``y``
            (frames every ``hop_ms``; the last window ends with ``y``).
            ``True``: the windows are ``y[a:a + window]`` for every ``hop``
            that fits (``y`` itself when shorter), each with its own log-mel,
            cut to ``window_s``.
        min_s : float, optional
            A window of fewer frames than this is repeated (wrapped) up to it
            (:func:`fewshot.audio.features.segment`'s rule); with shared frames only
            ``y`` shorter than one window is.
        normalise : bool
            Bring each window to the model's loudness (``feature_config.target_dbfs``) first.

        Returns
        -------
        E : np.ndarray [shape=(n_windows, dim), dtype=float32]
            Unit-norm rows.

        Raises
        ------
        CorruptModelError
            When the network gives NaN or infinite embeddings.
        """
        cfg, batch = self.feature_config, batch or self.batch_size
        window = round(window_s * 1000 / cfg.hop_ms)
        least = 0 if min_s is None else round(min_s * 1000 / cfg.hop_ms)
        fixed = self.backend.fixed_frames
        if own_frames or (fixed is not None and fixed != window):
            y = y if isinstance(y, np.ndarray) else np.concatenate(list(y))
            if own_frames:
                w, h = round(window_s * cfg.sr), round(hop_s * cfg.sr)
                pieces = [y[a : a + w] for a in range(0, len(y) - w + 1, h)] or [y]
            else:
                n_frames = 1 + len(y) // cfg.hop_length
                pieces = [
                    y[a * cfg.hop_length : (a + window) * cfg.hop_length]
                    for a in window_starts(n_frames, window=window, hop=round(hop_s * 1000 / cfg.hop_ms))
                ]
            if normalise:
                pieces = [normalize_loudness(p, target_dbfs=cfg.target_dbfs) for p in pieces]
            if fixed is not None:
                return self.embed(pieces)
            spectra = [log_mel(p, config=cfg) for p in pieces]
            spectra = [
                segment(S, seg_frames=least, hop_frames=least)[0] if len(S) < least else S[:window] for S in spectra
            ]
            E = np.zeros((len(spectra), self.dim), np.float32)
            by_length: dict[int, list[int]] = {}
            for j, S in enumerate(spectra):
                by_length.setdefault(len(S), []).append(j)
            for idx in by_length.values():
                E[idx] = self._run(np.stack([spectra[j] for j in idx]), batch=batch)
            return l2_normalize(E)
        n = len(y) if n_samples is None else n_samples
        n_frames = 1 + n // cfg.hop_length
        chunks = [y] if isinstance(y, np.ndarray) else y
        if n_frames < window:
            S = log_mel(np.concatenate(list(chunks)), config=cfg)
            S = segment(S, seg_frames=least, hop_frames=least)[0] if len(S) < least else S
            return l2_normalize(self._run(S[None], batch=batch))
        starts = window_starts(n_frames, window=window, hop=round(hop_s * 1000 / cfg.hop_ms))
        out, done, first, held = [], 0, 0, np.zeros((0, cfg.n_mels), np.float32)
        for S in log_mel_stream(chunks, n_samples=n, config=cfg):
            held = np.concatenate([held, S])  # frames first, first + 1, ...
            ready = int(np.searchsorted(starts + window, first + len(held), side="right"))
            for i in range(done, ready, batch):
                part = starts[i : min(i + batch, ready)] - first
                out.append(self._run(np.stack([held[a : a + window] for a in part]), batch=batch))
            done = ready
            if done < len(starts):
                held, first = held[starts[done] - first :], int(starts[done])
        return l2_normalize(np.concatenate(out))

    def _run(self, X: np.ndarray, *, batch: int | None = None) -> np.ndarray:
        """Raw ``"embedding"`` activations of log-mel inputs ``X`` (n, frames, n_mels), in batches; finite."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[-1] != self.feature_config.n_mels:
            raise ValueError(
                f"expected log-mel inputs of shape (n, frames, {self.feature_config.n_mels}), given X.shape={X.shape}"
            )
        batch = batch or self.batch_size
        out = [self.backend.run(X[i : i + batch]) for i in range(0, len(X), batch)]
        E = np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
        if not np.all(np.isfinite(E)):
            raise CorruptModelError(
                f"extractor {self.model_id} produced NaN or infinite embeddings; "
                "its weights are damaged: copy or train it again"
            )
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
            raise IncompatibleModelError(
                f"the {self.backend.name} backend cannot save a model; load the extractor with backend='keras'"
            )
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
    def load(cls, path, *, backend: str | None = None, **kwargs) -> Extractor:
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
            raise IncompatibleModelError(
                f"{path}: the {runner.name} model reads {runner.n_mels} mel bands but its "
                f"feature config says n_mels={feature_config.n_mels}"
            )
        extractor = cls(runner, feature_config=feature_config, extractor_config=extractor_config, meta=meta, **kwargs)
        extractor.path = path
        return extractor


def window_starts(n_frames: int, *, window: int, hop: int) -> np.ndarray:
    """First frames of windows of ``window`` frames every ``hop``, the last one ending at ``n_frames``.

    Examples
    --------
    >>> window_starts(400, window=150, hop=50).tolist()
    [0, 50, 100, 150, 200, 250]
    >>> window_starts(100, window=150, hop=50).tolist()
    [0]
    """
    if n_frames <= window:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, n_frames - window + 1, hop)
    return starts if starts[-1] + window >= n_frames else np.append(starts, n_frames - window)


def log_mel_stream(chunks, *, n_samples: int, config: FeatureConfig, block_frames: int = 6000):
    """:func:`fewshot.audio.features.log_mel` of the ``n_samples`` samples that ``chunks`` give in order, the same
    frames computed ``block_frames`` at a time, each block from the samples its frames see.

    Yields
    ------
    S : np.ndarray [shape=(block_frames or fewer, n_mels), dtype=float32]
        Consecutive blocks of the ``1 + n_samples // hop_length`` frames.
    """
    hop = config.hop_length
    n_frames = 1 + n_samples // hop
    margin = -(-(config.n_fft // 2) // hop)
    chunks, buf, at = iter(chunks), np.zeros(0, np.float32), 0  # buf holds samples at, at + 1, ...
    for f0 in range(0, n_frames, block_frames):
        f1, a = min(f0 + block_frames, n_frames), max(0, f0 - margin)
        end = min((f1 - 1 + margin) * hop + 1, n_samples)
        while at + len(buf) < end:
            buf = np.concatenate([buf, next(chunks)])
        yield log_mel(buf[a * hop - at : end - at], config=config)[f0 - a : f1 - a]
        drop = max(0, f1 - margin) * hop - at
        buf, at = buf[drop:], at + drop


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
        raise IncompatibleModelError(
            f"the LiteRT backend needs ai-edge-litert ({exc}): pip install ai-edge-litert"
        ) from exc
    except (ValueError, RuntimeError) as exc:
        raise CorruptModelError(f"{file}: cannot be loaded by LiteRT ({exc})") from exc


def _keras_backend():
    """:mod:`fewshot.model.keras_backend` (imports TensorFlow), or an error saying what to install or export."""
    try:
        from . import keras_backend
    except ImportError as exc:
        raise IncompatibleModelError(
            f"the Keras backend needs TensorFlow, which cannot be imported ({exc}): "
            "pip install 'fewshot[train]', or export a LiteRT model with "
            "fewshot export MODEL --format tflite (in an environment with TensorFlow)"
        ) from exc
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
