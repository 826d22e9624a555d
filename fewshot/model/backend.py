"""What runs the extractor's CNN: a backend maps log-mel batches to raw embeddings.

Two backends give the same embeddings (cosine >= 0.9999 for float LiteRT):

- :class:`LiteRTBackend` (here): an exported ``.tflite`` file through
  ``ai_edge_litert``, without TensorFlow; what identification runs on;
- :class:`fewshot.model.keras_backend.KerasBackend`: the ``.keras`` model through
  TensorFlow, for training, saving and export (imported only when asked for).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .._native import quiet_stderr


class Backend:
    """The interface of a backend.

    Attributes
    ----------
    name : str
        ``"keras"``, ``"litert"`` or ``"litert-int8"``.
    dim : int
        Width of the embedding.
    fixed_frames : int or None
        The input length the model requires, ``None`` for any.
    """

    name = ""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def fixed_frames(self) -> int | None:
        raise NotImplementedError

    def run(self, X: np.ndarray) -> np.ndarray:
        """Raw ``"embedding"`` activations ``(n, dim)`` of one batch of log-mel inputs ``X`` ``(n, frames, n_mels)``."""
        raise NotImplementedError


def cpu_threads() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LiteRTBackend(Backend):
    """A ``.tflite`` extractor run by the LiteRT interpreter (XNNPACK on CPU).

    The model takes any batch size and number of frames: the interpreter's
    input is resized whenever a batch's shape differs from the last one.
    Calls are serialised (one interpreter, one thread at a time).

    Parameters
    ----------
    path : str or Path
        The ``.tflite`` file.
    precision : str
        ``"float"`` or ``"int8"`` (what the file holds; for :attr:`name`).
    num_threads : int, optional
        Default: every core this process may use.
    """

    def __init__(self, path, *, precision: str = "float", num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.name = "litert" if precision == "float" else f"litert-{precision}"
        with quiet_stderr():  # the interpreter announces its CPU delegate on standard error
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads or cpu_threads())
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._shape = tuple(self._input["shape"])
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self._output["shape_signature"][-1])

    @property
    def fixed_frames(self) -> int | None:
        frames = int(self._input["shape_signature"][1])
        return None if frames < 0 else frames

    @property
    def n_mels(self) -> int:
        """Mel bands of the model's input."""
        return int(self._input["shape_signature"][-1])

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        with self._lock:
            if X.shape != self._shape:
                self._interpreter.resize_tensor_input(self._input["index"], X.shape, strict=True)
                self._interpreter.allocate_tensors()
                self._shape = X.shape
            self._interpreter.set_tensor(self._input["index"], X)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()
