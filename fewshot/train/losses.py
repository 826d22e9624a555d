"""Training losses: the additive angular margin softmax (ArcFace) head, and distillation toward a teacher."""

from __future__ import annotations

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="fewshot")
class CosineClassifier(layers.Layer):
    """Cosine similarity of the (normalised) embedding to one weight vector per class."""

    def __init__(self, n_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.n_classes = n_classes

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.n_classes), initializer="glorot_uniform", name="class_centres"
        )

    def call(self, x):
        x = ops.cast(x, "float32")
        x = x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-12)
        w = self.w / ops.sqrt(ops.sum(ops.square(self.w), axis=0, keepdims=True) + 1e-12)
        return ops.matmul(x, w)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}


@keras.saving.register_keras_serializable(package="fewshot")
class AdditiveAngularMarginLoss(keras.losses.Loss):
    """Softmax cross-entropy on ``scale * cos(theta + margin)`` for the true class.

    The margin grows linearly from 0 to ``margin`` over ``warmup_steps``
    optimizer steps (read from ``step_counter``), which keeps the first epoch
    from collapsing when the class centres are still random.
    """

    def __init__(
        self,
        margin: float = 0.2,
        scale: float = 30.0,
        warmup_steps: int = 0,
        step_counter=None,
        name="aam_softmax",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.margin = margin
        self.scale = scale
        self.warmup_steps = warmup_steps
        self.step_counter = step_counter

    def call(self, y_true, y_pred):
        m = self.margin
        if self.warmup_steps and self.step_counter is not None:
            ramp = ops.cast(self.step_counter, "float32") / float(self.warmup_steps)
            m = m * ops.clip(ramp, 0.0, 1.0)
        cos = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-7, 1.0 - 1e-7)
        sin = ops.sqrt(1.0 - ops.square(cos))
        phi = cos * ops.cos(m) - sin * ops.sin(m)
        # beyond theta + m = pi, cos(theta + m) stops decreasing: fall back to a linear penalty
        phi = ops.where(cos > math.cos(math.pi - self.margin), phi, cos - self.margin * math.sin(self.margin))
        onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(cos)[-1])
        logits = self.scale * (onehot * phi + (1.0 - onehot) * cos)
        return keras.losses.categorical_crossentropy(onehot, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "scale": self.scale, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="fewshot")
class DistillationLoss(keras.losses.Loss):
    """``1 - cos(student, teacher)`` per crop, zero where the crop has no teacher target.

    ``y_true`` is ``(batch, dim + 1)``: the teacher's embedding of the clean
    crop, then a weight column (1 or 0); ``y_pred`` is the student's embedding
    of the degraded crop, projected to the teacher's width.
    """

    def __init__(self, name="distillation", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        t, w = y_true[:, :-1], y_true[:, -1]
        s = ops.cast(y_pred, "float32")
        cos = ops.sum(s * t, axis=-1) / ops.sqrt(ops.sum(s * s, axis=-1) * ops.sum(t * t, axis=-1) + 1e-12)
        return w * (1.0 - cos)
