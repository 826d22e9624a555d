"""Where the CNN is defined: its custom layers and :func:`build_cnn`.

The extractor's output is the layer named ``"embedding"``; those activations
(L2-normalised) are the features the per-group SVMs see.
"""

from __future__ import annotations

from .._tf import import_tensorflow
from ..config import ExtractorConfig

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


def build_cnn(
    config: ExtractorConfig, *, n_mels: int, n_frames: int | None = None, sync_batchnorm: bool = False
) -> keras.Model:
    """Build the extractor CNN; its output is the layer named ``"embedding"``.

    Parameters
    ----------
    config : ExtractorConfig
        ``arch="resnet"``: residual stages over the (time, mel) image, statistics
        pooling over time (any length in), a dense embedding layer.
        ``whitened=True`` adds a frozen linear layer after the unit-normalised
        dense layer (set by :func:`fewshot.train.whitening.whiten_extractor`).
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
