"""Checks for names that come from the catalogue or archive.org.

Contract
--------
Catalogue and metadata values are untrusted. LibriVox ids (``reader_id``,
book ``id``) are used only when they match :data:`ID_PATTERN`, and every path
built from such values goes through :func:`safe_join`, which refuses any
result that does not resolve to a path strictly inside its root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ID_PATTERN = re.compile(r"[0-9]{1,12}")


class UnsafePathError(ValueError):
    """A path built from untrusted names would leave its root folder."""


def is_valid_id(value: str) -> bool:
    """True when ``value`` is a LibriVox id (digits only, as :data:`ID_PATTERN` says)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """``root`` joined with ``parts``, checked to stay strictly inside ``root``.

    Parameters
    ----------
    root : path-like
        Folder the result must lie in (it need not exist yet).
    *parts : str
        Untrusted path pieces, such as an item identifier and a file name.

    Returns
    -------
    Path
        ``root`` followed by the normalised relative path (symbolic links and
        ``..`` resolved), in the same form (relative or absolute) as ``root``.

    Raises
    ------
    UnsafePathError
        When the result is ``root`` itself or lies outside it (``..``, an
        absolute part, a link pointing away), or a part is not a usable name.
    """
    root = Path(root)
    try:
        base = root.resolve()
        target = base.joinpath(*parts).resolve()
    except (OSError, ValueError, TypeError) as exc:
        raise UnsafePathError(f"unusable path {list(parts)!r}: {exc}") from None
    if target == base or not target.is_relative_to(base):
        raise UnsafePathError(f"path {'/'.join(map(str, parts))!r} leaves {root}")
    return root / target.relative_to(base)
