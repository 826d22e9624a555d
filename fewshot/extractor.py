"""The frozen :class:`Extractor`: speech in, unit-length voice embeddings out.

It runs the CNN of :mod:`fewshot.nn` over log-mel spectrograms and returns the
L2-normalised activations of the layer named ``"embedding"``, the features the
per-group SVMs see. A model directory holds ``extractor.keras`` and ``meta.json``.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np

from .config import ExtractorConfig, FeatureConfig
from .errors import CorruptModelError, IncompatibleModelError
from .features import l2_normalize, log_mel, segment
from .persistence import check_checksum, file_digest, read_meta, write_meta

logger = logging.getLogger(__name__)

#: The model file of directories whose ``meta.json`` names none (the first shipped models).
MODEL_FILE = "extractor.keras"
META_FILE = "meta.json"

from .nn import keras  # noqa: E402  (TensorFlow imported quietly)


class Extractor:
    """A frozen CNN that maps speech to fixed-size embeddings.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`fewshot.nn.build_cnn` (or a model with a layer named ``"embedding"``).
    feature_config : FeatureConfig
    extractor_config : ExtractorConfig
    meta : dict, optional
        What :meth:`load` read from ``meta.json`` (training summary, checksum).
    batch_size : int
        Segments per forward pass.
    """

    def __init__(self, model, *, feature_config: FeatureConfig, extractor_config: ExtractorConfig,
                 meta: dict | None = None, batch_size: int = 64):
        self.model = keras.Model(model.inputs[0], model.get_layer("embedding").output)
        self.feature_config = feature_config
        self.extractor_config = extractor_config
        self.meta = dict(meta or {})
        self.batch_size = batch_size
        self._forward = None

    @property
    def dim(self) -> int:
        return int(self.model.output.shape[-1])

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
        fixed = self.model.inputs[0].shape[1]
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
        import tensorflow as tf

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[-1] != self.feature_config.n_mels:
            raise ValueError(f"expected log-mel inputs of shape (n, frames, {self.feature_config.n_mels}), "
                             f"given X.shape={X.shape}")
        if self._forward is None:
            self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True,
                                        autograph=False)
        out = [self._forward(tf.constant(X[i:i + self.batch_size])).numpy()
               for i in range(0, len(X), self.batch_size)]
        E = np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
        if not np.all(np.isfinite(E)):
            raise CorruptModelError(f"extractor {self.model_id} produced NaN or infinite embeddings; "
                                    "its weights are damaged: copy or train it again")
        return E

    def save(self, path, *, training: dict | None = None) -> Path:
        """Write the model and ``meta.json`` into the directory ``path``, atomically as a pair.

        The weights go to a new file named by their checksum
        (``extractor-<sha256[:12]>.keras``); replacing ``meta.json``, which names
        it, is the single step that switches to the new model. A kill at any
        moment leaves either the old pair or the new one. Model files no longer
        named are removed afterwards.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".extractor.{os.getpid()}.tmp.keras"
        self.model.save(tmp)
        digest = file_digest(tmp)
        model_file = f"extractor-{digest[:12]}.keras"
        tmp.replace(path / model_file)
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
        self.meta = write_meta(path / META_FILE, kind="extractor", payload=meta)
        for old in path.glob("extractor*.keras"):
            if old.name != model_file:
                old.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path, **kwargs) -> "Extractor":
        """Load a model directory written by :meth:`save` (or by training).

        Raises
        ------
        IncompatibleModelError
            Missing metadata, another format, or a feature config this version
            does not know.
        CorruptModelError
            The ``.keras`` file does not match its checksum or cannot be read.
        """
        path = Path(path)
        meta = read_meta(path / META_FILE, kind="extractor", required=("sha256", "feature_config", "extractor_config"))
        model_file = path / str(meta.get("model_file", MODEL_FILE))
        if model_file.parent != path or not model_file.is_file():
            raise IncompatibleModelError(f"{model_file}: model file not found")
        check_checksum(model_file, meta["sha256"])
        feature_config = FeatureConfig.from_dict(meta["feature_config"])
        extractor_config = ExtractorConfig.from_dict(meta["extractor_config"])
        derived = model_identity(meta["sha256"], feature_config, extractor_config)
        if "model_file" in meta and meta.get("model_id") != derived:
            raise CorruptModelError(f"{path / META_FILE}: model_id {meta.get('model_id')!r} does not match the model "
                                    f"file and configuration ({derived}); the metadata was edited or damaged")
        meta["model_id"] = derived
        if "classifier" in meta:
            from .config import ClassifierConfig

            try:
                ClassifierConfig.from_dict(meta["classifier"]).validate()
            except (TypeError, ValueError) as exc:
                raise CorruptModelError(f"{path / META_FILE}: bad classifier settings ({exc})") from exc
        try:
            model = keras.saving.load_model(model_file, compile=False)
        except Exception as exc:
            raise CorruptModelError(f"{model_file}: cannot be loaded by Keras ({exc})") from exc
        if model.inputs[0].shape[-1] != feature_config.n_mels:
            raise IncompatibleModelError(
                f"{model_file}: model reads {model.inputs[0].shape[-1]} mel bands but its "
                f"feature config says n_mels={feature_config.n_mels}"
            )
        return cls(model, feature_config=feature_config, extractor_config=extractor_config, meta=meta, **kwargs)


def model_identity(sha256: str, feature_config: FeatureConfig, extractor_config: ExtractorConfig) -> str:
    """The id of a model: a hash of its weights file's SHA-256 and of every setting that shapes its embeddings."""
    import hashlib
    import json

    blob = json.dumps({"sha256": sha256, "feature_config": feature_config.to_dict(),
                       "extractor_config": extractor_config.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_model_dir() -> Path:
    """Directory of the default extractor shipped inside the package."""
    return Path(str(resources.files("fewshot") / "models" / "default"))


def load_extractor(path=None, **kwargs) -> Extractor:
    """Load the default extractor shipped with fewshot, or the model directory ``path``."""
    return Extractor.load(default_model_dir() if path is None else path, **kwargs)
