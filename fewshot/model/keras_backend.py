"""The Keras backend: the extractor's CNN through TensorFlow.

Imported only when a Keras model is built, loaded, trained, saved or exported
(importing this module imports TensorFlow, quietly).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CorruptModelError
from ..persistence import file_digest
from .backend import Backend
from .nn import keras  # TensorFlow imported quietly


class KerasBackend(Backend):
    """The ``"embedding"`` output of a Keras model, run by one compiled TensorFlow function.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`fewshot.model.nn.build_cnn` (or any model with a layer named ``"embedding"``).
    """

    name = "keras"

    def __init__(self, model):
        self.model = keras.Model(model.inputs[0], model.get_layer("embedding").output)
        self._forward = None

    @property
    def dim(self) -> int:
        return int(self.model.output.shape[-1])

    @property
    def fixed_frames(self) -> int | None:
        return self.model.inputs[0].shape[1]

    @property
    def n_mels(self) -> int:
        """Mel bands of the model's input."""
        return int(self.model.inputs[0].shape[-1])

    def run(self, X: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        if self._forward is None:  # one trace for every batch size and length: nothing to retrace
            spec = tf.TensorSpec([None, self.fixed_frames, self.n_mels], tf.float32)
            self._forward = tf.function(
                lambda x: self.model(x, training=False), input_signature=[spec], autograph=False
            )
        return self._forward(tf.constant(X, dtype=tf.float32)).numpy()

    def write(self, path: Path) -> tuple[str, str]:
        """Save the model into the directory ``path`` as ``extractor-<sha256[:12]>.keras``.

        Returns
        -------
        name, sha256 : str
            The file's name and checksum.
        """
        tmp = path / f".extractor.{os.getpid()}.tmp.keras"
        self.model.save(tmp)
        digest = file_digest(tmp)
        name = f"extractor-{digest[:12]}.keras"
        tmp.replace(path / name)
        return name, digest

    @classmethod
    def read(cls, file: Path) -> KerasBackend:
        """Load a ``.keras`` file (already checked against its checksum)."""
        try:
            return cls(keras.saving.load_model(file, compile=False))
        except Exception as exc:
            raise CorruptModelError(f"{file}: cannot be loaded by Keras ({exc})") from exc
