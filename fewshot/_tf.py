"""Import TensorFlow once, without its C++ start-up banner on the terminal."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def import_tensorflow():
    """Return the ``tensorflow`` module; its native start-up lines are dropped.

    TensorFlow's C++ logging writes to file descriptor 2 before any setting can
    silence it, so standard error is pointed at ``/dev/null`` for the import
    only. An import that fails is retried with standard error intact, so its
    error message is seen.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        try:
            import keras  # noqa: F401  (imports TensorFlow too)
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        except ImportError:
            tf = None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if tf is None:
        import tensorflow as tf
    return tf
