"""Native libraries that print on the terminal: keep their noise off the user's screen."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

#: Per silenced descriptor: how many blocks silence it now, and the copy of what it pointed at.
_silenced: dict[int, list] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def silenced(*fds: int):
    """Point the file descriptors ``fds`` (1: standard output, 2: standard error) at ``/dev/null`` for the block.

    C libraries (TensorFlow's logging and converter, LiteRT, libsndfile's MP3
    decoder) write to the descriptors directly, past any Python setting;
    fewshot reports their failures itself, in one line. Blocks may overlap in
    several threads (files decoded in parallel): a descriptor is silenced by
    the first of them and given back by the last.
    """
    done = []
    try:
        with _lock:
            for fd in fds:
                if fd not in _silenced:
                    _flush()
                    copy, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, fd)
                    except OSError:
                        os.close(copy)
                        raise
                    finally:
                        os.close(devnull)
                    _silenced[fd] = [0, copy]
                _silenced[fd][0] += 1
                done.append(fd)
    except (OSError, ValueError):  # no descriptor to silence
        _release(done)
        yield
        return
    try:
        yield
    finally:
        _release(done)


def _release(fds) -> None:
    """End one block's silencing of ``fds``: the last block out points them back."""
    with _lock:
        for fd in fds:
            entry = _silenced.get(fd)
            if entry is None:
                continue
            entry[0] -= 1
            if entry[0] <= 0:
                _flush()
                os.dup2(entry[1], fd)
                os.close(entry[1])
                del _silenced[fd]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


def quiet_stderr():
    """:func:`silenced` for standard error alone."""
    return silenced(2)
