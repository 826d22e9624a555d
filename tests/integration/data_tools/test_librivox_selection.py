"""Catalogue paging, parsing and narrator selection."""

from __future__ import annotations

import math

import pytest

from data_tools import selection as sel
from data_tools.librivox import Catalogue, book_from_dict, identifier_from_url, parse_book


def raw_book(book_id, sections, *, seconds=600, genres=("Fiction",), language="English", zip_file=True, item=True):
    """A catalogue entry in the API's shape (values as strings)."""
    return {
        "id": str(book_id),
        "title": f"Book {book_id}",
        "language": language,
        "num_sections": str(len(sections)),
        "totaltimesecs": str(seconds),
        "url_zip_file": "http://www.archive.org/download/x/x.zip" if zip_file else "",
        "url_iarchive": f"http://www.archive.org/details/item_{book_id}" if item else "",
        "genres": [{"id": "1", "name": g} for g in genres],
        "sections": [
            {
                "section_number": str(i + 1),
                "title": "",
                "listen_url": "",
                "readers": [{"reader_id": r, "display_name": n} for r, n in readers],
            }
            for i, readers in enumerate(sections)
        ],
    }


def books(*raws):
    return [parse_book(r) for r in raws]


def test_pages_until_404_and_caches(server, site, client, tmp_path):
    catalogue = Catalogue(client, server.api_base, tmp_path / "cat", page_size=5)
    got = [b.book_id for page in catalogue.iter_pages() for b in page]
    assert got == [b["id"] for b in site.books]
    pages = math.ceil(len(site.books) / 5)
    assert server.counts["/api/feed/audiobooks"] == pages + 1
    offsets = [e["query"] for e in server.log]
    assert all("format=json" in q and "extended=1" in q and "limit=5" in q for q in offsets)
    assert f"offset={pages * 5}" in offsets[-1]

    server.reset()
    again = Catalogue(client, server.api_base, tmp_path / "cat", page_size=5)
    assert [b.book_id for page in again.iter_pages() for b in page] == got
    assert server.total() == 0


def test_parse_book_reads_strings_and_round_trips(site):
    book = parse_book(site.books[0])
    assert book.book_id == "990" and book.totaltimesecs == 3 and book.num_sections == 1
    assert book.identifier == "fixture_book_990"
    assert book.sections[0].readers[0].reader_id == "500"
    assert book_from_dict(book.to_dict()) == book
    assert identifier_from_url("https://archive.org/details/abc_1004_librivox/") == "abc_1004_librivox"
    assert identifier_from_url("") is None


@pytest.mark.parametrize(
    "sections, reason",
    [
        ([[("7", "Ann")], [("7", "Ann")]], None),
        ([[("7", "Ann"), ("8", "Bob")], [("7", "Ann")]], sel.SEVERAL_IN_SECTION),
        ([[("7", "Ann")], [("8", "Bob")]], sel.SEVERAL_ACROSS),
        ([[("7", "Ann")], []], sel.NO_READER),
        ([], sel.NO_SECTIONS),
        ([[("18", "Solo")]], sel.PLACEHOLDER),
        ([[("3", "A LibriVox Volunteer")]], sel.PLACEHOLDER),
        ([[("", "Somebody")]], sel.PLACEHOLDER),
    ],
)
def test_solo_detection(sections, reason):
    reader, why = sel.solo_reader(parse_book(raw_book(1, sections)))
    assert why == reason
    assert (reader is not None) == (reason is None)


def test_same_reader_id_with_other_display_name_is_solo():
    reader, why = sel.solo_reader(parse_book(raw_book(1, [[("7", "Ann")], [("7", "Ann B.")]])))
    assert why is None and reader.reader_id == "7"


def test_selection_rules():
    catalogue = books(
        raw_book(1, [[("7", "Ann")]], seconds=400),
        raw_book(2, [[("8", "Bob")], [("9", "Cy")]]),
        raw_book(3, [[("7", "Ann")]], seconds=400),
        raw_book(4, [[("10", "Dee")]], genres=("Dramatic Readings", "Fiction")),
        raw_book(5, [[("11", "Eve")]], zip_file=False),
        raw_book(6, [[("12", "Fay")]], seconds=0),
        raw_book(7, [[("13", "Gus")]], language="German"),
        raw_book(8, [[("14", "Solo")]]),
        raw_book(9, [[("15", "Hal")]], seconds=100),
        raw_book(10, [[("16", "Ivy")]]),
        raw_book(11, [[("7", "Ann")]], seconds=400),
        raw_book(12, [[("17", "Jo")]], item=False),
    )
    result = sel.select_narrators(catalogue, speakers=5, min_seconds=600)
    assert [(n.reader_id, [b.book_id for b in n.books]) for n in result.narrators] == [
        ("7", ["1", "3"]),
        ("16", ["10"]),
    ]
    assert result.eligible == 2 and result.books_seen == 12
    assert result.skipped == {
        sel.SEVERAL_ACROSS: 1,
        sel.DRAMATIC: 1,
        sel.NO_ZIP: 1,
        sel.ZERO_TIME: 1,
        sel.LANGUAGE: 1,
        sel.PLACEHOLDER: 1,
        sel.TOO_SHORT: 1,
        sel.SPARE: 1,
        sel.NO_ITEM: 1,
    }

    any_language = sel.select_narrators(catalogue, speakers=5, min_seconds=600, language=None)
    assert "13" in [n.reader_id for n in any_language.narrators]

    capped = sel.select_narrators(reversed(catalogue), speakers=1, min_seconds=600, exclude=["16"])
    assert [n.reader_id for n in capped.narrators] == ["7"]
    assert capped.skipped[sel.EXCLUDED] == 1


def test_selection_stops_at_n_and_is_order_independent(site):
    parsed = books(*site.books)
    first = sel.select_narrators(parsed, speakers=3, min_seconds=4.8)
    second = sel.select_narrators(list(reversed(parsed)) + parsed[:3], speakers=3, min_seconds=4.8)
    assert [n.reader_id for n in first.narrators] == ["500", "100", "101"]
    assert first.narrators == second.narrators
    assert [b.book_id for b in first.narrators[0].books] == ["990", "995"]
    assert first.eligible == 10 and first.skipped[sel.NOT_NEEDED] == 7
    ids = [n.reader_id for n in sel.select_narrators(parsed, 50, 4.8).narrators]
    assert len(ids) == len(set(ids)) == 10
    assert "18" not in ids and "999" not in ids and "107" not in ids
