"""Progress bars on standard error: on a terminal only (tqdm's ``disable=None``), or always with ``--progress``.

So a log file does not get one long line of ``\\r`` updates. tqdm comes with the extras, not with the runtime
(``pip install .``): without it there are no bars.
"""

from __future__ import annotations

import sys


def add_progress_argument(parser) -> None:
    """``--progress`` on a command's parser."""
    parser.add_argument(
        "--progress", action="store_true", help="show progress bars on standard error even when it is not a terminal"
    )


def progress_bar(*, always: bool = False):
    """``tqdm`` writing to standard error, ``leave=False``, shown on a terminal or when ``always``.

    Returns
    -------
    callable or None
        ``tqdm`` with those defaults (called like ``tqdm``), or ``None`` when tqdm is not installed.
    """
    import functools
    import importlib.util

    if importlib.util.find_spec("tqdm") is None:
        return None
    from tqdm import tqdm

    return functools.partial(tqdm, leave=False, file=sys.stderr, disable=False if always else None)


def loader_progress(desc: str, unit: str, *, always: bool = False):
    """A ``progress(iterable, total)`` callback (the loaders' convention) drawing :func:`progress_bar`, or ``None``."""
    bar = progress_bar(always=always)
    return bar and (lambda it, total: bar(it, total=total, desc=desc, unit=unit))
