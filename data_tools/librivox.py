"""LibriVox catalogue client.

Contract
--------
Input: the catalogue API (``format=json``, ``extended=1``, ``limit``/``offset``).
Output: :class:`Book` records, in catalogue order, paged until the API answers
HTTP 404 (or an empty ``books`` list) past the last book. Each page is cached
as JSON under ``cache_dir`` (the end of the catalogue too), so a restarted run
reads the same catalogue without asking the server again.

Paging stops with :class:`CatalogueError` on a page that is not a JSON object
with a ``books`` list of objects, on a page that repeats an earlier one (a
server that ignores ``offset``), and after ``max_pages`` pages (enough for
:data:`MAX_CATALOGUE_BOOKS` books). Malformed and repeated pages are not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fewshot.persistence import atomic_write_json, read_json

from .net import PoliteClient

logger = logging.getLogger(__name__)

API_BASE = "https://librivox.org/api/feed/audiobooks"
PAGE_SIZE = 50
MAX_CATALOGUE_BOOKS = 60_000  # about three times the LibriVox catalogue


class CatalogueError(Exception):
    """A catalogue page cannot be used; paging stopped.

    Parameters
    ----------
    url : str
        Address of the page.
    reason : str
        What is wrong with it (one line).
    """

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason

    def __reduce__(self):  # keeps the error whole when it crosses processes
        return type(self), (self.url, self.reason)


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


def page_books(data: Any) -> list[dict[str, Any]]:
    """The ``books`` list of a decoded catalogue page.

    Raises
    ------
    ValueError
        When ``data`` is not an object whose ``books`` is a list of objects.
    """
    if not isinstance(data, dict) or "books" not in data:
        raise ValueError("no 'books' in the answer")
    books = data["books"]
    if not isinstance(books, list):
        raise ValueError(f"'books' is {type(books).__name__}, not a list")
    for n, entry in enumerate(books):
        if not isinstance(entry, dict):
            raise ValueError(f"'books' entry {n} is {type(entry).__name__}, not an object")
    return books


def _digest(books: list[dict[str, Any]]) -> str:
    return hashlib.sha1(json.dumps(books, sort_keys=True).encode("utf-8")).hexdigest()


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
    max_pages : int, optional
        Pages read before giving up; by default enough for :data:`MAX_CATALOGUE_BOOKS`.
    """

    def __init__(
        self,
        client: PoliteClient,
        api_base: str = API_BASE,
        cache_dir: str | Path | None = None,
        page_size: int = PAGE_SIZE,
        max_pages: int | None = None,
    ):
        self.client = client
        self.api_base = api_base
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.page_size = int(page_size)
        self.max_pages = max_pages if max_pages is not None else -(-MAX_CATALOGUE_BOOKS // self.page_size)
        self.requests = 0
        self._key = hashlib.sha1(f"{api_base}|{self.page_size}".encode()).hexdigest()[:10]

    def _cache_path(self, offset: int) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"page-{self._key}-{offset:07d}.json"

    def _cached(self, cache: Path | None) -> tuple[list[dict[str, Any]], bool] | None:
        data = read_json(cache) if cache is not None else None
        try:
            return page_books(data), bool(data.get("end"))
        except ValueError:
            return None

    def _request(self, url: str) -> tuple[list[dict[str, Any]], bool]:
        self.requests += 1
        response = self.client.get(url, accept=(200, 404))
        if response.status == 404:
            return [], True
        try:
            books = page_books(json.loads(response.body.decode("utf-8")))
        except UnicodeDecodeError:
            raise CatalogueError(url, "malformed catalogue page: not UTF-8") from None
        except json.JSONDecodeError:
            raise CatalogueError(url, "malformed catalogue page: not JSON") from None
        except ValueError as exc:
            raise CatalogueError(url, f"malformed catalogue page: {exc}") from None
        return books, not books

    def fetch_page(self, offset: int, seen: set[str] | None = None) -> list[dict[str, Any]] | None:
        """Raw book dicts at ``offset``, or ``None`` past the end of the catalogue.

        Parameters
        ----------
        offset : int
            Index of the page's first book.
        seen : set of str, optional
            Digests of the pages read so far; the page's digest is added.

        Raises
        ------
        CatalogueError
            When the page is malformed or repeats a page in ``seen``.
        """
        url = page_url(self.api_base, offset, self.page_size)
        cache = self._cache_path(offset)
        cached = self._cached(cache)
        books, end = cached if cached is not None else self._request(url)
        if not end and seen is not None:
            digest = _digest(books)
            if digest in seen:
                raise CatalogueError(url, "the page repeats an earlier page (does the server ignore offset?)")
            seen.add(digest)
        if cache is not None and cached is None:
            atomic_write_json(cache, {"books": books, "end": end, "offset": offset})
        logger.debug("catalogue offset %d: %d books", offset, len(books))
        return None if end else books

    def iter_pages(self) -> Iterator[list[Book]]:
        """Yield each page as parsed books until the catalogue ends.

        Raises
        ------
        CatalogueError
            On a malformed or repeated page, or when the catalogue has more than ``max_pages`` pages.
        """
        seen: set[str] = set()
        for number in range(self.max_pages + 1):
            offset = number * self.page_size
            raw = self.fetch_page(offset, seen)
            if raw is None:
                return
            if number == self.max_pages:
                raise CatalogueError(
                    page_url(self.api_base, offset, self.page_size),
                    f"more than {self.max_pages} pages; the catalogue should have ended",
                )
            yield [parse_book(b) for b in raw]
