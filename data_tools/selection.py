"""Solo-book detection and narrator selection.

Contract
--------
Input: catalogue :class:`~data_tools.librivox.Book` records.
Output: a :class:`Selection` with up to ``speakers`` distinct narrators, each
with the fewest books (in book-id order) whose ``totaltimesecs`` reach the
wanted minutes, plus every skipped book counted by reason. The result depends
only on the set of books, so a restarted run selects the same narrators.

A book is solo when every section has exactly one reader and all sections
share one ``reader_id``. Narrators are keyed on ``reader_id``; placeholder
names such as "Solo" or "A LibriVox Volunteer" never count as narrators.
Book ids and reader ids become file and folder names, so a book whose id or
narrator's id is not a plain number (:func:`~data_tools.paths.is_valid_id`)
is skipped with a warning.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .librivox import Book, Reader
from .paths import is_valid_id

logger = logging.getLogger(__name__)

PLACEHOLDER_NAMES = frozenset(
    {
        "",
        "solo",
        "a librivox volunteer",
        "librivox volunteer",
        "librivox volunteers",
        "librivox",
        "volunteer",
        "volunteers",
        "various",
        "various readers",
        "group",
        "multiple readers",
        "unknown",
        "anonymous",
        "none",
        "n/a",
    }
)
EXCLUDED_GENRES = frozenset({"dramatic readings"})

NO_ZIP = "no zip file"
ZERO_TIME = "totaltimesecs is 0"
DRAMATIC = "genre Dramatic Readings"
LANGUAGE = "other language"
NO_SECTIONS = "no sections"
NO_READER = "a section without reader"
SEVERAL_IN_SECTION = "collaborative: several readers in a section"
SEVERAL_ACROSS = "collaborative: different readers across sections"
PLACEHOLDER = "placeholder narrator"
NO_ITEM = "no archive.org item"
BAD_BOOK_ID = "book id is not a number"
BAD_READER_ID = "reader id is not a number"
EXCLUDED = "narrator excluded"
TOO_SHORT = "narrator has too few minutes"
NOT_NEEDED = "not needed (enough narrators)"
SPARE = "not needed (narrator has enough minutes)"


def is_placeholder(reader: Reader) -> bool:
    """True when ``reader`` is not a real narrator (no id or a placeholder name)."""
    rid = reader.reader_id.strip()
    name = " ".join(reader.display_name.lower().split())
    return not rid or rid == "0" or name in PLACEHOLDER_NAMES


def solo_reader(book: Book) -> tuple[Reader | None, str | None]:
    """Return ``(reader, None)`` for a solo book, else ``(None, reason)``."""
    if not book.sections:
        return None, NO_SECTIONS
    ids = set()
    for section in book.sections:
        if not section.readers:
            return None, NO_READER
        if len({r.reader_id for r in section.readers}) > 1:
            return None, SEVERAL_IN_SECTION
        ids.add(section.readers[0].reader_id)
    if len(ids) > 1:
        return None, SEVERAL_ACROSS
    reader = book.sections[0].readers[0]
    if is_placeholder(reader):
        return None, PLACEHOLDER
    if not is_valid_id(reader.reader_id):
        return None, BAD_READER_ID
    return reader, None


def book_skip_reason(book: Book, language: str | None = "English") -> str | None:
    """Why ``book`` cannot be used (catalogue facts only), or ``None``."""
    if not is_valid_id(book.book_id):
        return BAD_BOOK_ID
    if not book.url_zip_file:
        return NO_ZIP
    if book.totaltimesecs <= 0:
        return ZERO_TIME
    if any(g.strip().lower() in EXCLUDED_GENRES for g in book.genres):
        return DRAMATIC
    if language and book.language.strip().lower() != language.strip().lower():
        return LANGUAGE
    if not book.identifier:
        return NO_ITEM
    return None


@dataclass
class NarratorPlan:
    """The books picked for one narrator."""

    reader_id: str
    display_name: str
    books: list[Book]

    @property
    def catalogue_seconds(self) -> int:
        """Sum of the books' ``totaltimesecs``."""
        return sum(b.totaltimesecs for b in self.books)


@dataclass
class Selection:
    """Result of :func:`select_narrators`."""

    narrators: list[NarratorPlan]
    eligible: int = 0
    books_seen: int = 0
    skipped: Counter = field(default_factory=Counter)


def _book_order(book: Book) -> tuple[int, str]:
    return (int(book.book_id), book.book_id) if book.book_id.isdigit() else (2**62, book.book_id)


def select_narrators(
    books: Iterable[Book],
    speakers: int,
    min_seconds: float,
    language: str | None = "English",
    exclude: Iterable[str] = (),
) -> Selection:
    """Pick ``speakers`` distinct solo narrators with at least ``min_seconds`` each.

    Parameters
    ----------
    books : iterable of Book
        The catalogue; duplicates (same ``book_id``) are read once.
    speakers : int
        Narrators wanted.
    min_seconds : float
        Catalogue seconds a narrator needs, summed over their solo books.
    language : str or None
        Keep only books in this language (case-insensitive); ``None`` keeps all.
    exclude : iterable of str
        ``reader_id`` values never to select.

    Returns
    -------
    Selection
        Narrators ordered by their first usable book id, with skip counts.
    """
    excluded = {str(e).strip() for e in exclude}
    unique = {b.book_id: b for b in books}
    skipped: Counter = Counter()
    by_reader: dict[str, list[Book]] = {}
    names: dict[str, str] = {}
    for book in sorted(unique.values(), key=_book_order):
        reason = book_skip_reason(book, language)
        reader = None
        if reason is None:
            reader, reason = solo_reader(book)
        if reason is None and reader.reader_id in excluded:
            reason = EXCLUDED
        if reason == BAD_BOOK_ID:
            logger.warning("book %r (%s): skipped: %s", book.book_id, book.title, reason)
        elif reason == BAD_READER_ID:
            logger.warning(
                "book %r (%s): skipped: %s: %r", book.book_id, book.title, reason, book.sections[0].readers[0].reader_id
            )
        if reason is not None:
            skipped[reason] += 1
            continue
        by_reader.setdefault(reader.reader_id, []).append(book)
        names.setdefault(reader.reader_id, reader.display_name)

    narrators: list[NarratorPlan] = []
    eligible = 0
    for rid, rbooks in by_reader.items():
        if sum(b.totaltimesecs for b in rbooks) < min_seconds:
            skipped[TOO_SHORT] += len(rbooks)
            continue
        eligible += 1
        if len(narrators) >= speakers:
            skipped[NOT_NEEDED] += len(rbooks)
            continue
        chosen: list[Book] = []
        for book in rbooks:
            if sum(b.totaltimesecs for b in chosen) >= min_seconds:
                break
            chosen.append(book)
        skipped[SPARE] += len(rbooks) - len(chosen)
        narrators.append(NarratorPlan(rid, names[rid], chosen))
    return Selection(narrators, eligible, len(unique), skipped)
