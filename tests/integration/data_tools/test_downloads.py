"""Polite client, archive metadata and verified, resumable downloads."""

from __future__ import annotations

import hashlib
import time

import pytest

from data_tools.archive import ArchiveFile, MetadataError, fetch_metadata, parse_length, pick_mp3s, plan_chapters
from data_tools.download import DownloadError, download_file, part_path
from data_tools.net import HttpError, PoliteClient, RetryPolicy, parse_retry_after

BOOK = 1000
IDENT = f"fixture_book_{BOOK}"


@pytest.fixture
def chapter(site, server):
    path = site.chapter_path(BOOK)
    data = site.blobs[(IDENT, path.rsplit("/", 1)[1])]
    return path, server.url + path, data, hashlib.md5(data).hexdigest()


def test_plain_download_then_skip(server, client, chapter, tmp_path):
    path, url, data, md5 = chapter
    dest = tmp_path / "a.mp3"
    assert download_file(client, url, dest, md5=md5, size=len(data)) is True
    assert dest.read_bytes() == data and not part_path(dest).exists()
    assert download_file(client, url, dest, md5=md5, size=len(data)) is False
    assert server.counts[path] == 1
    assert "fewshot" in server.log[0]["user_agent"]


def test_cut_off_download_resumes_with_range(server, client, chapter, tmp_path):
    path, url, data, md5 = chapter
    server.add_fault(path, "cut")
    dest = tmp_path / "a.mp3"
    assert download_file(client, url, dest, md5=md5, size=len(data))
    assert dest.read_bytes() == data
    ranges = [e["range"] for e in server.log if e["path"] == path]
    assert ranges == [None, f"bytes={len(data) // 2}-"]


def test_leftover_part_file_resumes(server, client, chapter, tmp_path):
    path, url, data, md5 = chapter
    dest = tmp_path / "a.mp3"
    part_path(dest).write_bytes(data[:1000])
    assert download_file(client, url, dest, md5=md5, size=len(data))
    assert dest.read_bytes() == data
    assert [e["range"] for e in server.log] == ["bytes=1000-"]


def test_md5_mismatch_is_rejected_and_retried(server, client, chapter, tmp_path):
    path, url, data, md5 = chapter
    server.add_fault(path, "wrong")
    dest = tmp_path / "a.mp3"
    assert download_file(client, url, dest, md5=md5, size=len(data))
    assert dest.read_bytes() == data
    assert server.counts[path] == 2
    assert [e["range"] for e in server.log] == [None, None]


def test_503_then_success(server, client, chapter, tmp_path):
    path, url, data, md5 = chapter
    server.add_fault(path, "503")
    assert download_file(client, url, tmp_path / "a.mp3", md5=md5, size=len(data))
    assert server.counts[path] == 2


def test_429_retry_after_is_honoured(server, client, chapter, tmp_path):
    path, url, data, md5 = chapter
    server.add_fault(path, "429")
    started = time.monotonic()
    assert download_file(client, url, tmp_path / "a.mp3", md5=md5, size=len(data))
    assert time.monotonic() - started >= 0.95
    assert server.counts[path] == 2


def test_gives_up_without_leaving_a_file(server, chapter, tmp_path):
    path, url, data, md5 = chapter
    server.add_fault(path, "wrong", "wrong", "wrong")
    client = PoliteClient(request_interval=0, timeout=10, retry=RetryPolicy(max_attempts=3, backoff_s=0))
    dest = tmp_path / "a.mp3"
    with pytest.raises(DownloadError):
        download_file(client, url, dest, md5=md5, size=len(data))
    assert not dest.exists() and not part_path(dest).exists()
    assert server.counts[path] == 3


def test_not_found_is_not_retried(server, client, tmp_path):
    with pytest.raises(DownloadError):
        download_file(client, server.url + "/download/nope/x.mp3", tmp_path / "x.mp3")
    assert server.total() == 1


def test_requests_are_spaced_per_host(server):
    client = PoliteClient(request_interval=0.25, timeout=10)
    started = time.monotonic()
    for _ in range(3):
        client.get(server.url + f"/metadata/{IDENT}")
    assert time.monotonic() - started >= 0.45


def test_metadata_cached_and_mp3s_ordered(server, client, site, tmp_path):
    files = fetch_metadata(client, server.url, IDENT, tmp_path)
    assert fetch_metadata(client, server.url, IDENT, tmp_path) == files
    assert server.counts[f"/metadata/{IDENT}"] == 1
    book = next(b for b in site.books if b["id"] == str(BOOK))
    listen = [s["listen_url"] for s in reversed(book["sections"])]
    mp3s = pick_mp3s(files, listen)
    assert [f.name for f in mp3s] == [f"{IDENT}_02_64kb.mp3", f"{IDENT}_01_64kb.mp3"]
    assert all(f.format == "64Kbps MP3" and f.length_s == 3.0 and f.md5 for f in mp3s)
    with pytest.raises(MetadataError):
        fetch_metadata(client, server.url, "no_such_item", tmp_path)


def test_metadata_503_retried_and_404_reported(server, client):
    server.add_fault(f"/metadata/{IDENT}", "503")
    assert fetch_metadata(client, server.url, IDENT)
    with pytest.raises(HttpError):
        client.get(server.url + "/nothing")


def test_archive_helpers():
    assert parse_length("185.5") == 185.5 and parse_length("01:02:03") == 3723 and parse_length("2:05") == 125
    assert parse_length("abc") is None and parse_length(None) is None
    files = [ArchiveFile("b.mp3", "128Kbps MP3", 10, None, 60.0), ArchiveFile("a.mp3", "128Kbps MP3", 10, None, 60.0)]
    assert [f.name for f in pick_mp3s(files)] == ["a.mp3", "b.mp3"]
    assert pick_mp3s([ArchiveFile("x.ogg", "Ogg Vorbis", 1, None, 1.0)]) == []
    chapters = [ArchiveFile(f"{i}.mp3", "64Kbps MP3", 8000 * 60, None, None) for i in range(5)]
    assert chapters[0].estimated_seconds() == 60.0
    assert len(plan_chapters(chapters, 150)) == 3 and len(plan_chapters(chapters, 1e9)) == 5
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None
