"""Native libraries that print on the terminal: keep their noise off the user's screen."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def silenced(*fds: int):
    """Point the file descriptors ``fds`` (1: standard output, 2: standard error) at ``/dev/null`` for the block.

    C libraries (TensorFlow's logging and converter, LiteRT, libsndfile's MP3
    decoder) write to the descriptors directly, past any Python setting;
    fewshot reports their failures itself, in one line.
    """
    try:
        _flush()
        saved = [(fd, os.dup(fd)) for fd in fds]
    except (OSError, ValueError):  # no descriptor to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd, _ in saved:
            os.dup2(devnull, fd)
        yield
    finally:
        _flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


def quiet_stderr():
    """:func:`silenced` for standard error alone."""
    return silenced(2)
