"""Where the CNN is defined: one builder function, and the frozen :class:`Extractor`.

The extractor turns log-mel segments into the activations of the layer named
``"embedding"``; those (averaged per utterance and L2-normalised) are the
features the per-group SVMs see.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np

from .config import ExtractorConfig, FeatureConfig
from .errors import CorruptModelError, IncompatibleModelError
from .features import log_mel, segment
from .persistence import check_checksum, read_meta, sha256_file, write_meta

logger = logging.getLogger(__name__)

MODEL_FILE = "extractor.keras"
META_FILE = "meta.json"

from ._tf import import_tensorflow  # noqa: E402

import_tensorflow()
import keras  # noqa: E402
from keras import layers  # noqa: E402


@keras.saving.register_keras_serializable(package="fewshot")
class TimeMeanNorm(layers.Layer):
    """Subtract each band's mean over time (cepstral mean normalisation)."""

    def call(self, x):
        return x - keras.ops.mean(x, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="fewshot")
class StatsPooling(layers.Layer):
    """Mean and standard deviation over time: ``(batch, time, d) -> (batch, 2 d)``."""

    def call(self, x):
        mean = keras.ops.mean(x, axis=1)
        var = keras.ops.mean(keras.ops.square(x - keras.ops.expand_dims(mean, 1)), axis=1)
        return keras.ops.concatenate([mean, keras.ops.sqrt(var + 1e-5)], axis=-1)


def _residual_block(x, filters: int, stride: int, name: str, bn):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = bn(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = bn(name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = bn(name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def build_cnn(config: ExtractorConfig, *, n_mels: int, n_frames: int | None = None,
              sync_batchnorm: bool = False) -> keras.Model:
    """Build the extractor CNN; its output is the layer named ``"embedding"``.

    Parameters
    ----------
    config : ExtractorConfig
        ``arch="resnet"``: residual stages over the (time, mel) image, statistics
        pooling over time (any length in), a dense embedding layer.
        ``whitened=True`` adds a frozen linear layer after the unit-normalised
        dense layer (set by :func:`fewshot.whitening.whiten_extractor`).
        ``arch="original"``: two blocks of two 3x3 convolutions (8 and 16 filters)
        with 2x2 pooling, flattened straight into the embedding (fixed length in).
    n_mels : int
        Mel bands of the input.
    n_frames : int, optional
        Fixed input length; required for ``"original"``, ``None`` (any) otherwise.
    sync_batchnorm : bool
        Batch statistics over all replicas (for distributed training), so that
        every worker ends with the same moving averages.

    Returns
    -------
    model : keras.Model
        ``(batch, n_frames, n_mels) -> (batch, embedding_dim)``.
    """
    if config.arch == "original":
        n_frames = n_frames or config.crop_frames
    inputs = keras.Input((n_frames, n_mels), name="log_mel")
    x = TimeMeanNorm(name="mean_norm")(inputs)
    x = layers.Reshape((-1, n_mels, 1), name="as_image")(x)
    if config.arch == "original":
        for i, filters in enumerate((8, 16)):
            for j in range(2):
                x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv{j}")(x)
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        outputs = layers.Flatten(name="embedding")(x)
        return keras.Model(inputs, outputs, name="original_cnn")
    if config.arch != "resnet":
        raise ValueError(f"unknown arch {config.arch!r}; expected 'resnet' or 'original'")
    if len(config.channels) != len(config.blocks):
        raise ValueError(f"channels {config.channels} and blocks {config.blocks} differ in length")
    def bn(name):
        return layers.BatchNormalization(synchronized=sync_batchnorm, name=name)

    x = layers.Conv2D(config.channels[0], 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = bn(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, (filters, n_blocks) in enumerate(zip(config.channels, config.blocks)):
        for j in range(n_blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            x = _residual_block(x, filters, stride, name=f"stage{i}_block{j}", bn=bn)
    freq = x.shape[2]
    x = layers.Reshape((-1, freq * config.channels[-1]), name="frames")(x)
    x = StatsPooling(name="stats_pool")(x)
    if not config.whitened:
        outputs = layers.Dense(config.embedding_dim, name="embedding")(x)
        return keras.Model(inputs, outputs, name="fewshot_cnn")
    x = layers.Dense(config.embedding_dim, name="speaker_dense")(x)
    x = layers.UnitNormalization(name="unit_norm")(x)
    outputs = layers.Dense(config.embedding_dim, trainable=False, name="embedding")(x)
    return keras.Model(inputs, outputs, name="fewshot_cnn")


class Extractor:
    """A frozen CNN that maps speech to fixed-size embeddings.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`build_cnn` (or a model with a layer named ``"embedding"``).
    feature_config : FeatureConfig
    extractor_config : ExtractorConfig
    meta : dict, optional
        What :meth:`load` read from ``meta.json`` (training summary, checksum).
    batch_size : int
        Segments per forward pass.
    """

    def __init__(self, model, *, feature_config: FeatureConfig, extractor_config: ExtractorConfig,
                 meta: dict | None = None, batch_size: int = 64):
        self.model = keras.Model(model.inputs, model.get_layer("embedding").output)
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
        """Identifies the weights: embeddings from two ids are never mixed."""
        return self.meta.get("model_id") or self.meta.get("sha256", "unsaved")[:16]

    def _call_model(self, x):
        return self.model(x, training=False)

    def embed_segments(self, segments: np.ndarray) -> np.ndarray:
        """Embed log-mel segments.

        Parameters
        ----------
        segments : np.ndarray [shape=(n_seg, seg_frames, n_mels)]

        Returns
        -------
        E : np.ndarray [shape=(n_seg, dim), dtype=float32]
            Raw activations of the ``"embedding"`` layer.
        """
        import tensorflow as tf

        segments = np.asarray(segments, dtype=np.float32)
        if segments.ndim != 3 or segments.shape[-1] != self.feature_config.n_mels:
            raise ValueError(
                f"expected segments of shape (n_seg, frames, {self.feature_config.n_mels}), "
                f"given segments.shape={segments.shape}"
            )
        if self._forward is None:
            self._forward = tf.function(self._call_model, reduce_retracing=True, autograph=False)
        out = [
            self._forward(tf.constant(segments[i : i + self.batch_size])).numpy()
            for i in range(0, len(segments), self.batch_size)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    def segments(self, y: np.ndarray, *, overlap: bool = True) -> np.ndarray:
        """Log-mel segments of one waveform, at this model's input length.

        With ``overlap=False`` segments follow each other without overlap (half
        the work; what :meth:`embed` uses), otherwise they advance by
        ``feature_config.segment_hop_s`` (more points for an SVM to learn from).
        """
        cfg = self.feature_config
        frames = self.model.inputs[0].shape[1] or cfg.segment_frames
        hop = cfg.segment_hop_frames if overlap else frames
        return segment(log_mel(y, config=cfg), seg_frames=frames, hop_frames=hop)

    def embed_utterances_segments(self, waveforms, *, overlap: bool = True) -> list[np.ndarray]:
        """Per waveform, the L2-normalised embedding of each of its segments.

        Returns
        -------
        list of np.ndarray [shape=(n_seg_i, dim)]
        """
        seg_lists = [self.segments(np.asarray(y, dtype=np.float32), overlap=overlap) for y in waveforms]
        if not seg_lists:
            return []
        E = l2_normalize(self.embed_segments(np.concatenate(seg_lists)))
        bounds = np.cumsum([0] + [len(s) for s in seg_lists])
        return [E[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def embed(self, waveforms, *, max_chunk_s: float = 20.0) -> np.ndarray:
        """Embed whole utterances, each in one pass, and L2-normalise.

        Statistics pooling takes any length, so an utterance is not cut into
        segments: its whole log-mel spectrogram goes through the CNN (padded by
        repetition to at least ``feature_config.segment_s``). Utterances longer
        than ``max_chunk_s`` are cut into equal chunks whose normalised
        embeddings are averaged. Utterances of equal length are batched. A
        model with a fixed input length (``arch="original"``) gets the mean of
        its non-overlapping segments instead.

        Parameters
        ----------
        waveforms : list of np.ndarray [shape=(n,)]
            Mono float32 audio at ``feature_config.sr`` (16 kHz), any length.
        max_chunk_s : float
            Longest piece embedded in one pass.

        Returns
        -------
        E : np.ndarray [shape=(len(waveforms), dim), dtype=float32]
            Unit-norm rows; never NaN.
        """
        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            waveforms = [waveforms]
        if len(waveforms) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.model.inputs[0].shape[1] is not None:
            per_utt = self.embed_utterances_segments(waveforms, overlap=False)
            return l2_normalize(np.stack([e.mean(axis=0) for e in per_utt]))
        cfg = self.feature_config
        max_frames = max(cfg.segment_frames, int(round(max_chunk_s * 1000 / cfg.hop_ms)))
        chunks, owner = [], []
        for i, y in enumerate(waveforms):
            S = log_mel(np.asarray(y, dtype=np.float32), config=cfg)
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
                E[idx[a:a + step]] = self.embed_segments(np.stack([chunks[j] for j in idx[a:a + step]]))
        out = np.zeros((len(waveforms), self.dim), np.float32)
        np.add.at(out, np.asarray(owner), l2_normalize(E))
        return l2_normalize(out)

    def save(self, path, *, training: dict | None = None) -> Path:
        """Write ``extractor.keras`` and ``meta.json`` into the directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".{MODEL_FILE}.tmp.keras"
        self.model.save(tmp)
        digest = sha256_file(tmp)
        tmp.replace(path / MODEL_FILE)
        meta = {
            "model_id": digest[:16],
            "sha256": digest,
            "feature_config": self.feature_config.to_dict(),
            "extractor_config": self.extractor_config.to_dict(),
            "embedding_dim": self.dim,
            "training": training if training is not None else self.meta.get("training", {}),
        }
        self.meta = write_meta(path / META_FILE, kind="extractor", payload=meta)
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
        meta = read_meta(path / META_FILE, kind="extractor")
        model_file = path / MODEL_FILE
        if not model_file.is_file():
            raise IncompatibleModelError(f"{model_file}: model file not found")
        check_checksum(model_file, meta["sha256"])
        feature_config = FeatureConfig.from_dict(meta["feature_config"])
        extractor_config = ExtractorConfig.from_dict(meta["extractor_config"])
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


def l2_normalize(E: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero, never NaN)."""
    E = np.asarray(E, dtype=np.float32)
    norms = np.linalg.norm(E, axis=-1, keepdims=True)
    return E / np.maximum(norms, 1e-12)


def default_model_dir() -> Path:
    """Directory of the default extractor shipped inside the package."""
    return Path(str(resources.files("fewshot") / "models" / "default"))


def load_extractor(path=None, **kwargs) -> Extractor:
    """Load the default extractor shipped with fewshot, or the model directory ``path``."""
    return Extractor.load(default_model_dir() if path is None else path, **kwargs)
