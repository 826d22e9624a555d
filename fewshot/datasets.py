"""Datasets on disk: speaker-per-folder trees, and the corpus manifest ``manifest.csv``.

A speaker-per-folder tree has one folder per speaker with audio files inside
(``../shared/data/train``); an optional ``SPEAKERS.tsv`` beside it gives genders.

Manifest contract
-----------------
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .persistence import atomic_write_text

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm", ".opus", ".aac"}
COLUMNS = ("path", "speaker_id", "book_id", "duration_s", "split")


def speaker_folders(root) -> dict[str, list[Path]]:
    """``{speaker: [audio files in name order]}`` for a speaker-per-folder tree."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in d.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if files:
            out[d.name] = files
    return out


def read_genders(root) -> dict[str, str]:
    """Speaker genders from a ``SPEAKERS.tsv`` in ``root`` or its parent, if any."""
    for cand in (Path(root) / "SPEAKERS.tsv", Path(root).parent / "SPEAKERS.tsv"):
        if cand.is_file():
            lines = cand.read_text().splitlines()
            head = lines[0].split("\t")
            if "speaker" in head and "gender" in head:
                i, j = head.index("speaker"), head.index("gender")
                rows = [ln.split("\t") for ln in lines[1:] if ln.strip()]
                return {r[i]: r[j] for r in rows if len(r) > max(i, j) and r[j]}
    return {}


def read_manifest_speakers(path, *, split: str = "train") -> dict[str, list[Path]]:
    """``{speaker: [files]}`` of a manifest's rows of ``split`` (and rows without a split)."""
    out: dict[str, list[Path]] = {}
    for r in read_manifest(path):
        if r.split in ("", split):
            out.setdefault(str(r.speaker_id), []).append(Path(r.path))
    return {k: sorted(v) for k, v in sorted(out.items())}


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
        if not (isinstance(row.duration_s, (int, float)) and math.isfinite(row.duration_s) and row.duration_s > 0):
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
    with open(path, encoding="utf-8", newline="") as handle:
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
            rows.append(
                ManifestRow(
                    Path(os.path.normpath(root / rel)),
                    record["speaker_id"].strip(),
                    (record["book_id"] or "").strip(),
                    duration,
                    record["split"].strip(),
                )
            )
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
