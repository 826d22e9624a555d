"""Catalogue and archive.org answers that must not be trusted: paths, ids, paging."""

from __future__ import annotations

import logging
import math

import pytest

from data_tools.librivox import MAX_CATALOGUE_BOOKS, Catalogue, CatalogueError
from data_tools.paths import UnsafePathError, is_valid_id, safe_join
from fewshot.datasets import validate_manifest
from fixture_server import FixtureServer, FixtureSite, solo

API_PATH = "/api/feed/audiobooks"


def files_outside(root, out):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and out not in p.parents)


def warned(caplog, text):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_safe_join_and_ids(tmp_path):
    root = tmp_path / "downloads"
    assert safe_join(root, "item_1", "sub/a.mp3") == root / "item_1" / "sub" / "a.mp3"
    assert safe_join(root, "item_1", "x/../a.mp3") == root / "item_1" / "a.mp3"
    (tmp_path / "elsewhere").mkdir()
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    for parts in [
        ("..",),
        (".",),
        ("",),
        ("../x",),
        ("item", "../../x"),
        ("/etc/passwd",),
        ("a\x00b",),
        ("link", "a.mp3"),
    ]:
        with pytest.raises(UnsafePathError):
            safe_join(root, *parts)
    assert is_valid_id("0") and is_valid_id("12345")
    assert not any(map(is_valid_id, [".", "..", "", "12a", " 1", "1\n", "-1", "1/2", "\u0661"]))


def test_paths_from_catalogue_and_metadata_stay_inside_out(scrape_main, scrape_argv, tmp_path, caplog):
    site = FixtureSite()
    site.add_book(990, solo("500", "Reader 500"))
    escaping = site.add_book(991, solo("501", "Reader 501"))
    escaping["url_iarchive"] = "http://archive.org/details/..%2F..%2F..%2Fescaped"
    site.items["../../../escaped"] = site.items.pop("fixture_book_991")
    for key in [k for k in site.blobs if k[0] == "fixture_book_991"]:
        site.blobs[("../../../escaped", key[1])] = site.blobs.pop(key)
    site.add_book(992, solo("502", "Reader 502"))
    for entry in site.items["fixture_book_992"]:
        entry["name"] = "../../../escaped2/" + entry["name"]
    for key in [k for k in site.blobs if k[0] == "fixture_book_992"]:
        site.blobs[(key[0], "../../../escaped2/" + key[1])] = site.blobs.pop(key)

    out = tmp_path / "a" / "b" / "out"
    with FixtureServer(site) as srv, caplog.at_level(logging.WARNING):
        assert scrape_main(scrape_argv(srv, out, speakers=3)) == 0
        requested = set(srv.counts)
    assert files_outside(tmp_path, out) == []
    assert {r.speaker_id for r in validate_manifest(out / "manifest.csv")} == {"500"}
    assert warned(caplog, "book 991") and warned(caplog, "book 992")
    assert not any("escaped" in p for p in requested)
    assert not (out / "downloads" / "fixture_book_992").exists()


def test_bad_ids_are_skipped_and_finished_narrators_survive(scrape_main, scrape_argv, tmp_path, caplog):
    site = FixtureSite()
    site.add_book(990, solo("500", "Reader 500"))
    site.add_book(991, solo(".", "Dot Reader"))
    site.add_book(992, solo("12a", "Letter Reader"))
    site.add_book(993, solo("503", "Reader 503"))["id"] = "../993"
    out = tmp_path / "out"
    with FixtureServer(site) as srv, caplog.at_level(logging.WARNING):
        assert scrape_main(scrape_argv(srv, out, speakers=4)) == 0
    assert {r.speaker_id for r in validate_manifest(out / "manifest.csv")} == {"500"}
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["500"]
    assert (out / "audio" / "500" / "segments.json").is_file()
    assert warned(caplog, "book '991'") and warned(caplog, "book '992'") and warned(caplog, "book '../993'")


def test_catalogue_ignoring_offset_stops(server, scrape_main, scrape_argv, tmp_path, capsys):
    server.catalogue_mode, server.catalogue_cap = "ignore-offset", 20
    out = tmp_path / "out"
    assert scrape_main(scrape_argv(server, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "offset=5" in err[0] and "repeats" in err[0]
    assert server.counts[API_PATH] == 2
    assert len(list((out / "cache" / "catalogue").glob("*.json"))) == 1


def test_malformed_catalogue_page_stops(server, scrape_main, scrape_argv, tmp_path, capsys):
    server.catalogue_mode, server.catalogue_cap = "malformed", 20
    out = tmp_path / "out"
    assert scrape_main(scrape_argv(server, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{server.api_base}?" in err[0] and "offset=0" in err[0]
    assert "'books' is str, not a list" in err[0]
    assert server.counts[API_PATH] == 1
    assert not list((out / "cache" / "catalogue").glob("*.json"))


def test_catalogue_page_limit(server, client, tmp_path):
    server.catalogue_mode, server.catalogue_cap = "endless", 20
    catalogue = Catalogue(client, server.api_base, tmp_path / "cat", page_size=5, max_pages=3)
    with pytest.raises(CatalogueError, match="more than 3 pages"):
        list(catalogue.iter_pages())
    assert server.counts[API_PATH] == 4

    server.catalogue_mode = None
    server.reset()
    pages = math.ceil(len(server.site.books) / 5)
    exact = Catalogue(client, server.api_base, None, page_size=5, max_pages=pages)
    assert sum(len(page) for page in exact.iter_pages()) == len(server.site.books)
    assert server.counts[API_PATH] == pages + 1
    for size in (1, 50):
        assert Catalogue(client, page_size=size).max_pages * size >= MAX_CATALOGUE_BOOKS >= 40_000
