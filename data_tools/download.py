"""Resumable, verified downloads.

Contract
--------
:func:`download_file` writes ``<dest>.part`` and renames it to ``dest`` only
after its size and md5 match the archive metadata, so ``dest`` existing means
"complete and verified". A cut-off download resumes from the ``.part`` file
with an HTTP Range request; a wrong checksum deletes the ``.part`` file and
downloads again. Transient failures are retried by the client's policy, and
only one download runs at a time per host (on this machine or across the
cluster, as the client's gate says).
"""

from __future__ import annotations

import logging
import os
import re
import urllib.error
from pathlib import Path

from fewshot.persistence import file_digest

from .net import HttpError, PoliteClient, TransientError

logger = logging.getLogger(__name__)

CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(Exception):
    """A file could not be downloaded and verified."""


def part_path(dest: str | os.PathLike) -> Path:
    """The ``.part`` file used while ``dest`` downloads."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _finish(part: Path, dest: Path, md5: str | None, size: int | None) -> None:
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink(missing_ok=True)
        raise TransientError(f"size {got} != expected {size}")
    if md5 is not None and file_digest(part, algorithm="md5") != md5.lower():
        part.unlink(missing_ok=True)
        raise TransientError("md5 mismatch")
    os.replace(part, dest)


def _attempt(client: PoliteClient, url: str, dest: Path, md5: str | None, size: int | None) -> None:
    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size and have > 0:
        _finish(part, dest, md5, size)
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = client.open(url, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            exc.close()
            _finish(part, dest, md5, size)
            return
        raise
    with response:
        start = 0
        if have and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            start = int(match.group(1)) if match else -1
        if start != have:
            start = 0
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length and length.isdigit() else None
        written = start
        with open(part, "ab" if start else "wb", buffering=0) as handle:
            if start:
                logger.info("resuming %s at byte %d", url, start)
            while True:
                chunk = response.read1(CHUNK)
                if not chunk:
                    break
                handle.write(chunk)
                written += len(chunk)
        if expected is not None and written < expected:
            raise TransientError(f"cut off at {written} of {expected} bytes")
    _finish(part, dest, md5, size)


def download_file(
    client: PoliteClient, url: str, dest: str | os.PathLike, *, md5: str | None = None, size: int | None = None
) -> bool:
    """Download ``url`` to ``dest`` unless it is already there.

    Parameters
    ----------
    client : PoliteClient
        HTTP client (rate limit, retries, per-host lock).
    url : str
        Address of the file.
    dest : path-like
        Final file name.
    md5 : str, optional
        Expected hex md5; checked before ``dest`` appears.
    size : int, optional
        Expected size in bytes.

    Returns
    -------
    bool
        ``True`` when the file was downloaded now, ``False`` when it was already complete.

    Raises
    ------
    DownloadError
        When retries run out or the server refuses the file.
    """
    dest = Path(dest)
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with client.download_slot(url):
        try:
            client.with_retries(url, lambda: _attempt(client, url, dest, md5, size))
        except HttpError as exc:
            raise DownloadError(str(exc)) from exc
    return True
