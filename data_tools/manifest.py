"""The corpus manifest: ``manifest.csv``.

Contract
--------
One CSV file with the header ``path,speaker_id,book_id,duration_s,split``.
``path`` is relative to the manifest's folder (POSIX separators),
``speaker_id`` is the LibriVox ``reader_id``, ``duration_s`` a positive number
of seconds and ``split`` one of ``train``, ``val`` or ``test``; no speaker may
appear in two splits and no path twice. :func:`read_manifest` returns rows
with absolute paths; :func:`write_manifest` writes atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .fsutil import atomic_write_text

COLUMNS = ("path", "speaker_id", "book_id", "duration_s", "split")
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest does not follow the contract."""


@dataclass(frozen=True)
class ManifestRow:
    """One audio segment of the corpus.

    Attributes
    ----------
    path : pathlib.Path
        Absolute path of the WAV segment.
    speaker_id : str
        LibriVox ``reader_id`` of the narrator.
    book_id : str
        LibriVox book id the segment comes from.
    duration_s : float
        Segment length in seconds.
    split : str
        ``train``, ``val`` or ``test``.
    """

    path: Path
    speaker_id: str
    book_id: str
    duration_s: float
    split: str


def validate_rows(rows: Iterable[ManifestRow]) -> None:
    """Check the contract (except file existence).

    Raises
    ------
    ManifestError
        Listing up to ten problems.
    """
    problems: list[str] = []
    seen: set[Path] = set()
    split_of: dict[str, str] = {}
    for i, row in enumerate(rows):
        where = f"row {i + 1} ({row.path})"
        if row.path in seen:
            problems.append(f"{where}: duplicate path")
        seen.add(row.path)
        if not str(row.speaker_id).strip():
            problems.append(f"{where}: empty speaker_id")
        if not (isinstance(row.duration_s, (int, float)) and math.isfinite(row.duration_s)
                and row.duration_s > 0):
            problems.append(f"{where}: duration_s must be a positive number")
        if row.split not in SPLITS:
            problems.append(f"{where}: split {row.split!r} not in {SPLITS}")
        other = split_of.setdefault(row.speaker_id, row.split)
        if other != row.split:
            problems.append(f"{where}: speaker {row.speaker_id} is in both {other} and {row.split}")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ManifestError("; ".join(problems[:10]) + more)


def read_manifest(path) -> list[ManifestRow]:
    """Read and validate ``manifest.csv``.

    Parameters
    ----------
    path : path-like
        The manifest file.

    Returns
    -------
    list of ManifestRow
        Rows in file order, with ``path`` made absolute against the manifest's folder.

    Raises
    ------
    ManifestError
        When columns, values or splits break the contract.
    """
    path = Path(path)
    root = Path(os.path.abspath(path)).parent
    rows: list[ManifestRow] = []
    with open(path, "r", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ManifestError(f"{path}: columns {reader.fieldnames} != {list(COLUMNS)}")
        for line, record in enumerate(reader, start=2):
            rel = (record["path"] or "").strip()
            if not rel or os.path.isabs(rel) or rel.startswith(("/", "\\")):
                raise ManifestError(f"{path}:{line}: path must be relative, got {rel!r}")
            try:
                duration = float(record["duration_s"])
            except (TypeError, ValueError):
                raise ManifestError(f"{path}:{line}: duration_s {record['duration_s']!r} is not a number") from None
            rows.append(ManifestRow(Path(os.path.normpath(root / rel)), record["speaker_id"].strip(),
                                    (record["book_id"] or "").strip(), duration, record["split"].strip()))
    try:
        validate_rows(rows)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    return rows


def write_manifest(path, rows: Iterable[ManifestRow]) -> None:
    """Validate ``rows`` and write them to ``path`` atomically.

    Parameters
    ----------
    path : path-like
        Destination ``manifest.csv``; row paths are written relative to its folder.
    rows : iterable of ManifestRow
        Rows with absolute (or current-directory-relative) paths.
    """
    path = Path(path)
    rows = list(rows)
    validate_rows(rows)
    root = Path(os.path.abspath(path)).parent
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        rel = Path(os.path.relpath(os.path.abspath(row.path), root)).as_posix()
        writer.writerow([rel, row.speaker_id, row.book_id, f"{row.duration_s:.3f}", row.split])
    atomic_write_text(path, out.getvalue())


def validate_manifest(path, check_files: bool = True) -> list[ManifestRow]:
    """Read a manifest and, optionally, check that every file exists.

    Raises
    ------
    ManifestError
        When the manifest breaks the contract or files are missing.
    """
    rows = read_manifest(path)
    if check_files:
        missing = [str(r.path) for r in rows if not r.path.is_file()]
        if missing:
            raise ManifestError(f"{path}: {len(missing)} missing files, e.g. {missing[:3]}")
    return rows
