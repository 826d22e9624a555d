"""Native libraries that print on the terminal: keep their noise off the user's screen."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_stderr():
    """Point file descriptor 2 at ``/dev/null`` for the block.

    C libraries (TensorFlow's logging, libsndfile's MP3 decoder) write to the
    descriptor directly, past any Python setting; fewshot reports their
    failures itself, in one line.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
