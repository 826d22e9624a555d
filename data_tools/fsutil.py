"""Atomic file writes.

Every file the pipeline produces is first written next to its final name and
then moved into place with :func:`os.replace`, so an interrupted run never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fewshot.persistence import atomic_write_bytes as _atomic_write_bytes


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`fewshot.persistence.atomic_write_bytes`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. Its folder is created if missing.
    data : bytes
        Content to write.
    """
    _atomic_write_bytes(path, data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    text : str
        Content to write.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented, key-sorted JSON to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    value : Any
        JSON-serialisable value.
    """
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any | None:
    """Read a JSON file, returning ``None`` when it is missing or unreadable.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    Any or None
        The decoded value, or ``None``.
    """
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
