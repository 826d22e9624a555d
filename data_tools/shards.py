"""Splitting the work over machines and merging the results.

Contract
--------
Every machine runs the same selection; machine ``i`` of ``n`` (``--shard i/n``)
builds only the narrators with ``shard_of(reader_id, n) == i``, a stable hash,
so the shards are disjoint and together cover the selection.
:func:`merge_manifests` joins shard manifests into one, with paths relative
to the merged manifest and a split recomputed over all speakers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from fewshot.datasets import ManifestError, ManifestRow, read_manifest, write_manifest

from .splits import apply_splits


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (0-based ``i < n``) into ``(i, n)``."""
    try:
        index, count = (int(p) for p in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= i < n")
    return index, count


def shard_of(speaker_id: str, count: int) -> int:
    """Shard (0 to ``count - 1``) that builds narrator ``speaker_id``."""
    digest = hashlib.sha1(str(speaker_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def in_shard(speaker_id: str, shard: tuple[int, int]) -> bool:
    """True when ``speaker_id`` belongs to ``shard`` = ``(i, n)``."""
    return shard_of(speaker_id, shard[1]) == shard[0]


def _manifest_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "manifest.csv" if path.is_dir() else path


def merge_manifests(inputs: Iterable[str | Path], out: str | Path, seed: int = 0,
                    val_fraction: float = 0.1, test_fraction: float = 0.1,
                    exclude: Iterable[str] = ()) -> list[ManifestRow]:
    """Merge shard manifests into ``out``.

    Parameters
    ----------
    inputs : iterable of path-like
        Shard manifests, or folders holding ``manifest.csv``.
    out : path-like
        Merged manifest file, or a folder to hold ``manifest.csv``.
    seed, val_fraction, test_fraction, exclude
        Passed to :func:`data_tools.splits.apply_splits`.

    Returns
    -------
    list of ManifestRow
        The merged rows, sorted by path.

    Raises
    ------
    ManifestError
        When one speaker appears in two shards.
    """
    owner: dict[str, Path] = {}
    rows: dict[Path, ManifestRow] = {}
    for item in inputs:
        path = _manifest_file(item)
        for row in read_manifest(path):
            first = owner.setdefault(row.speaker_id, path)
            if first != path:
                raise ManifestError(f"speaker {row.speaker_id} is in both {first} and {path}")
            rows[row.path] = row
    merged = apply_splits(sorted(rows.values(), key=lambda r: str(r.path)), seed,
                          val_fraction, test_fraction, exclude)
    out = Path(out)
    target = out / "manifest.csv" if out.is_dir() or not out.suffix else out
    write_manifest(target, merged)
    return merged
