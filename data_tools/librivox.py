"""LibriVox catalogue client.

Contract
--------
Input: the catalogue API (``format=json``, ``extended=1``, ``limit``/``offset``).
Output: :class:`Book` records, in catalogue order, paged until the API answers
HTTP 404 past the last book. Each page is cached as JSON under ``cache_dir``
(the end of the catalogue too), so a restarted run reads the same catalogue
without asking the server again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from fewshot.persistence import atomic_write_json, read_json

from .net import HttpError, PoliteClient

logger = logging.getLogger(__name__)

API_BASE = "https://librivox.org/api/feed/audiobooks"
PAGE_SIZE = 50


@dataclass(frozen=True)
class Reader:
    """A narrator of one section, keyed by LibriVox ``reader_id``."""

    reader_id: str
    display_name: str


@dataclass(frozen=True)
class Section:
    """One chapter of a book and the people who read it."""

    number: int
    title: str
    listen_url: str
    readers: tuple[Reader, ...]


@dataclass(frozen=True)
class Book:
    """One LibriVox project, with the fields the pipeline uses."""

    book_id: str
    title: str
    language: str
    url_zip_file: str
    url_iarchive: str
    totaltimesecs: int
    num_sections: int
    genres: tuple[str, ...]
    sections: tuple[Section, ...]

    @property
    def identifier(self) -> str | None:
        """The archive.org item identifier, from ``url_iarchive``."""
        return identifier_from_url(self.url_iarchive)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, read back by :func:`book_from_dict`."""
        return asdict(self)


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def identifier_from_url(url: str) -> str | None:
    """Return ``<identifier>`` from ``http(s)://(www.)archive.org/details/<identifier>``."""
    parts = [p for p in urllib.parse.urlsplit(_str(url)).path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "details":
        return urllib.parse.unquote(parts[1])
    return None


def parse_book(raw: dict[str, Any]) -> Book:
    """Build a :class:`Book` from one entry of the API's ``books`` list.

    Most values arrive as strings; missing ones become empty strings or 0.
    """
    sections = []
    for i, sec in enumerate(raw.get("sections") or []):
        readers = tuple(
            Reader(_str(r.get("reader_id")), _str(r.get("display_name")))
            for r in (sec.get("readers") or [])
            if isinstance(r, dict)
        )
        number = _int(sec.get("section_number")) or i + 1
        sections.append(Section(number, _str(sec.get("title")), _str(sec.get("listen_url")), readers))
    genres = tuple(_str(g.get("name")) if isinstance(g, dict) else _str(g) for g in (raw.get("genres") or []))
    return Book(
        book_id=_str(raw.get("id")),
        title=_str(raw.get("title")),
        language=_str(raw.get("language")),
        url_zip_file=_str(raw.get("url_zip_file")),
        url_iarchive=_str(raw.get("url_iarchive")),
        totaltimesecs=_int(raw.get("totaltimesecs")),
        num_sections=_int(raw.get("num_sections")),
        genres=genres,
        sections=tuple(sections),
    )


def book_from_dict(data: dict[str, Any]) -> Book:
    """Inverse of :meth:`Book.to_dict`."""
    sections = tuple(
        Section(s["number"], s["title"], s["listen_url"], tuple(Reader(**r) for r in s["readers"]))
        for s in data["sections"]
    )
    return Book(**{**data, "genres": tuple(data["genres"]), "sections": sections})


def page_url(api_base: str, offset: int, limit: int) -> str:
    """Address of one extended JSON catalogue page."""
    query = urllib.parse.urlencode({"format": "json", "extended": 1, "limit": limit, "offset": offset})
    sep = "&" if "?" in api_base else "?"
    return f"{api_base}{sep}{query}"


class Catalogue:
    """Pages of the LibriVox catalogue, fetched politely and cached.

    Parameters
    ----------
    client : PoliteClient
        HTTP client.
    api_base : str
        Catalogue endpoint.
    cache_dir : path-like, optional
        Folder for cached pages; no caching when ``None``.
    page_size : int
        Books per page (50 at most keeps the server happy).
    """

    def __init__(self, client: PoliteClient, api_base: str = API_BASE,
                 cache_dir: str | Path | None = None, page_size: int = PAGE_SIZE):
        self.client = client
        self.api_base = api_base
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.page_size = int(page_size)
        self.requests = 0
        self._key = hashlib.sha1(f"{api_base}|{self.page_size}".encode()).hexdigest()[:10]

    def _cache_path(self, offset: int) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"page-{self._key}-{offset:07d}.json"

    def fetch_page(self, offset: int) -> list[dict[str, Any]] | None:
        """Raw book dicts at ``offset``, or ``None`` past the end of the catalogue."""
        cache = self._cache_path(offset)
        cached = read_json(cache) if cache is not None else None
        if isinstance(cached, dict) and "books" in cached:
            return None if cached.get("end") else list(cached["books"])
        url = page_url(self.api_base, offset, self.page_size)
        self.requests += 1
        response = self.client.get(url, accept=(200, 404))
        if response.status == 404:
            books, end = [], True
        else:
            try:
                data = json.loads(response.body.decode("utf-8"))
            except ValueError as exc:
                raise HttpError(url, "catalogue page is not JSON", response.status) from exc
            books = list(data.get("books") or []) if isinstance(data, dict) else []
            end = not books
        if cache is not None:
            atomic_write_json(cache, {"books": books, "end": end, "offset": offset})
        logger.debug("catalogue offset %d: %d books", offset, len(books))
        return None if end else books

    def iter_pages(self) -> Iterator[list[Book]]:
        """Yield each page as parsed books until the catalogue ends."""
        offset = 0
        while True:
            raw = self.fetch_page(offset)
            if raw is None:
                return
            yield [parse_book(b) for b in raw if isinstance(b, dict)]
            offset += self.page_size
