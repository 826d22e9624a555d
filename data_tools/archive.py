"""archive.org item metadata and chapter planning.

Contract
--------
Input: an item identifier (from a book's ``url_iarchive``).
Output: the item's MP3 files as :class:`ArchiveFile` records in chapter order,
64 kbps files preferred (128 kbps when an item has no 64 kbps set). Metadata is
cached as JSON under ``cache_dir``; :func:`plan_chapters` picks the leading
chapters that cover a time budget, so only what is needed gets downloaded.
"""

from __future__ import annotations

import json
import logging
import posixpath
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fewshot.persistence import atomic_write_json, read_json

from .net import PoliteClient
from .paths import safe_join

logger = logging.getLogger(__name__)

ARCHIVE_BASE = "https://archive.org"
MP3_FORMATS = ("64Kbps MP3", "128Kbps MP3")


class MetadataError(Exception):
    """An item has no usable metadata (missing item, no files, bad JSON)."""


@dataclass(frozen=True)
class ArchiveFile:
    """One file of an archive.org item."""

    name: str
    format: str
    size: int | None
    md5: str | None
    length_s: float | None

    def estimated_seconds(self, kbps: int = 64) -> float | None:
        """``length_s``, or a guess from the size at ``kbps`` when length is missing."""
        if self.length_s is not None:
            return self.length_s
        if self.size:
            return self.size * 8.0 / (kbps * 1000.0)
        return None


def parse_length(value: Any) -> float | None:
    """Seconds from ``"123.4"``, ``"02:03"`` or ``"01:02:03"``; ``None`` if unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        if ":" in text:
            total = 0.0
            for part in text.split(":"):
                total = total * 60 + float(part)
            return total
        return float(text)
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def metadata_url(archive_base: str, identifier: str) -> str:
    """``<base>/metadata/<identifier>``."""
    return f"{archive_base.rstrip('/')}/metadata/{urllib.parse.quote(identifier)}"


def download_url(archive_base: str, identifier: str, name: str) -> str:
    """``<base>/download/<identifier>/<name>`` with the name URL-quoted."""
    return f"{archive_base.rstrip('/')}/download/{urllib.parse.quote(identifier)}/{urllib.parse.quote(name)}"


def parse_files(data: Any) -> list[ArchiveFile]:
    """The ``files`` list of a metadata response as :class:`ArchiveFile` records."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise MetadataError("metadata has no files list")
    files = []
    for entry in data["files"]:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        md5 = str(entry["md5"]).lower() if entry.get("md5") else None
        files.append(
            ArchiveFile(
                str(entry["name"]),
                str(entry.get("format", "")),
                _int_or_none(entry.get("size")),
                md5,
                parse_length(entry.get("length")),
            )
        )
    return files


def fetch_metadata(
    client: PoliteClient, archive_base: str, identifier: str, cache_dir: str | Path | None = None
) -> list[ArchiveFile]:
    """Files of item ``identifier``, from the cache or the metadata API.

    Raises
    ------
    MetadataError
        When the item is missing or its metadata is unusable.
    HttpError
        When the metadata request fails for good.
    UnsafePathError
        When the cache file for ``identifier`` would lie outside ``cache_dir``.
    """
    cache = safe_join(cache_dir, f"{identifier}.json") if cache_dir is not None else None
    data = read_json(cache) if cache is not None else None
    if data is None:
        url = metadata_url(archive_base, identifier)
        response = client.get(url, accept=(200, 404))
        if response.status == 404:
            raise MetadataError(f"item {identifier} not found")
        try:
            data = json.loads(response.body.decode("utf-8"))
        except ValueError as exc:
            raise MetadataError(f"item {identifier}: metadata is not JSON") from exc
        files = parse_files(data)
        if cache is not None:
            atomic_write_json(cache, {"files": data["files"]})
        return files
    return parse_files(data)


def pick_mp3s(files: Iterable[ArchiveFile], listen_urls: Iterable[str] = ()) -> list[ArchiveFile]:
    """Chapter MP3s in reading order, from the first format of :data:`MP3_FORMATS` present.

    Files named by the sections' ``listen_url`` come first, in section order;
    the rest follow sorted by name.
    """
    files = list(files)
    for fmt in MP3_FORMATS:
        chosen = {f.name: f for f in files if f.format == fmt}
        if chosen:
            break
    else:
        return []
    by_base = {posixpath.basename(n): f for n, f in chosen.items()}
    ordered: list[ArchiveFile] = []
    for url in listen_urls:
        base = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if base in by_base and by_base[base] not in ordered:
            ordered.append(by_base[base])
    ordered += [chosen[n] for n in sorted(chosen) if chosen[n] not in ordered]
    return ordered


def plan_chapters(mp3s: Iterable[ArchiveFile], budget_s: float) -> list[ArchiveFile]:
    """The leading chapters whose (estimated) lengths reach ``budget_s`` seconds."""
    picked, total = [], 0.0
    for f in mp3s:
        if total >= budget_s:
            break
        picked.append(f)
        total += f.estimated_seconds() or 0.0
    return picked
