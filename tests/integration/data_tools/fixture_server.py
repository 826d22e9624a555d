"""A local stand-in for the LibriVox catalogue API and archive.org.

:class:`FixtureSite` holds books (in the API's JSON shape) and the MP3 files
of their archive.org items, encoded from synthetic voices (``fixture_audio``).
:class:`FixtureServer` serves them over HTTP on 127.0.0.1:

* ``/api/feed/audiobooks?format=json&extended=1&limit=&offset=`` with a 404
  ``{"error": "Audiobooks could not be found"}`` past the last book;
* ``/metadata/<identifier>`` and ``/download/<identifier>/<name>`` (with
  HTTP Range support).

Faults can be injected per path (``cut``, ``wrong``, ``503``, ``429``,
``stall``) and every request is counted. ``catalogue_mode`` makes the
catalogue misbehave (``ignore-offset``: always the first page; ``malformed``:
``{"books": "abc"}``; ``endless``: new books at every offset), and
``catalogue_cap`` ends the catalogue (404) after that many catalogue requests.
``latency_s`` delays every answer, as a distant server would;
``peak_downloads`` is the most downloads that were ever served at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from fixture_audio import f0_for, tone_mp3

PLACEHOLDER_ID = "18"


class FixtureSite:
    """Catalogue books plus archive.org items and their files."""

    def __init__(self) -> None:
        self.books: list[dict] = []
        self.items: dict[str, list[dict]] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}

    def add_book(
        self,
        book_id,
        sections,
        chapter_seconds=3.0,
        *,
        genres=("Fiction",),
        language="English",
        zip_file=True,
        totaltimesecs=None,
        item=True,
    ) -> dict:
        """Add a book; ``sections`` is a list (one per section) of ``(reader_id, display_name)`` lists."""
        ident = f"fixture_book_{book_id}"
        secs = [chapter_seconds] * len(sections) if np.isscalar(chapter_seconds) else list(chapter_seconds)
        files, raw_sections = [], []
        for n, (readers, seconds) in enumerate(zip(sections, secs), start=1):
            name = f"{ident}_{n:02d}_64kb.mp3"
            rid = readers[0][0] if readers and readers[0][0].isdigit() else "1"
            data = tone_mp3(f0_for(rid), float(seconds), int(book_id) * 100 + n)
            self.blobs[(ident, name)] = data
            self.blobs[(ident, f"{ident}_{n:02d}.mp3")] = data
            md5 = hashlib.md5(data).hexdigest()
            for fname, fmt in ((name, "64Kbps MP3"), (f"{ident}_{n:02d}.mp3", "128Kbps MP3")):
                files.append(
                    {
                        "name": fname,
                        "source": "derivative",
                        "format": fmt,
                        "size": str(len(data)),
                        "md5": md5,
                        "length": f"{seconds:.2f}",
                    }
                )
            raw_sections.append(
                {
                    "id": str(int(book_id) * 100 + n),
                    "section_number": str(n),
                    "title": f"Chapter {n}",
                    "listen_url": f"http://www.archive.org/download/{ident}/{name}",
                    "language": language,
                    "playtime": str(int(seconds)),
                    "readers": [{"reader_id": r, "display_name": d} for r, d in readers],
                }
            )
        files.append({"name": f"{ident}_files.xml", "source": "original", "format": "Metadata"})
        if item:
            self.items[ident] = files
        total = int(sum(secs)) if totaltimesecs is None else totaltimesecs
        book = {
            "id": str(book_id),
            "title": f"Book {book_id}",
            "description": "",
            "url_text_source": "",
            "language": language,
            "copyright_year": "1900",
            "num_sections": str(len(sections)),
            "url_rss": "",
            "url_zip_file": f"http://www.archive.org/download/{ident}/{ident}_64kb_mp3.zip" if zip_file else "",
            "url_project": "",
            "url_librivox": f"https://librivox.org/book-{book_id}/",
            "url_other": None,
            "totaltime": f"0:00:{total:02d}",
            "totaltimesecs": str(total),
            "authors": [{"id": "1", "first_name": "Ann", "last_name": "Author", "dob": "", "dod": ""}],
            "url_iarchive": f"http://www.archive.org/details/{ident}",
            "sections": raw_sections,
            "genres": [{"id": str(i), "name": g} for i, g in enumerate(genres, 1)],
            "translators": [],
        }
        self.books.append(book)
        return book

    def chapter_path(self, book_id, n: int = 1) -> str:
        """Server path of chapter ``n`` (64 kbps) of a book."""
        ident = f"fixture_book_{book_id}"
        return f"/download/{ident}/{ident}_{n:02d}_64kb.mp3"


def solo(reader_id: str, name: str, sections: int = 2) -> list:
    """``sections`` sections all read by one narrator."""
    return [[(reader_id, name)] for _ in range(sections)]


def demo_site(
    n_books: int = 30, chapter_seconds: float = 3.0, chapters: int = 2, site: FixtureSite | None = None
) -> FixtureSite:
    """A catalogue mixing solo, collaborative, placeholder and dramatic books.

    Per block of ten books: one with different readers across sections, one
    with several readers in a section, one Dramatic Reading, one placeholder
    narrator, one second book of an earlier narrator, five plain solo books.
    Books are added to ``site`` when given.
    """
    site = site if site is not None else FixtureSite()
    for i in range(n_books):
        bid, rid = 1000 + i, str(100 + i)
        kind = i % 10
        if kind == 3:
            site.add_book(bid, [[(rid, f"Reader {rid}")], [("999", "Other Reader")]], chapter_seconds)
        elif kind == 5:
            site.add_book(bid, [[(rid, f"Reader {rid}"), ("998", "Co Reader")]] * chapters, chapter_seconds)
        elif kind == 7:
            site.add_book(bid, solo(rid, f"Reader {rid}", chapters), chapter_seconds, genres=("Dramatic Readings",))
        elif kind == 8:
            site.add_book(bid, solo(PLACEHOLDER_ID, "A LibriVox Volunteer", chapters), chapter_seconds)
        elif kind == 9:
            prev = str(100 + i - 9)
            site.add_book(bid, solo(prev, f"Reader {prev}", chapters), chapter_seconds)
        else:
            site.add_book(bid, solo(rid, f"Reader {rid}", chapters), chapter_seconds)
    return site


class FixtureServer:
    """Serve a :class:`FixtureSite` on 127.0.0.1 in a background thread."""

    def __init__(self, site: FixtureSite, port: int = 0):
        self.site = site
        self.counts: Counter = Counter()
        self.log: list[dict] = []
        self.faults: dict[str, list[str]] = {}
        self.catalogue_mode: str | None = None
        self.catalogue_cap: int | None = None
        self.latency_s = 0.0
        self.active_downloads = 0
        self.peak_downloads = 0
        self.stall_reached = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fixture = self
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/feed/audiobooks"

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_fault(self, path: str, *kinds: str) -> None:
        """Queue faults for ``path``: each request takes the next one."""
        with self._lock:
            self.faults.setdefault(path, []).extend(kinds)

    def take_fault(self, path: str) -> str | None:
        with self._lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def record(self, path: str, query: str, headers) -> None:
        with self._lock:
            self.counts[path] += 1
            self.log.append(
                {"path": path, "query": query, "range": headers.get("Range"), "user_agent": headers.get("User-Agent")}
            )

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()
            self.peak_downloads = 0

    def downloading(self, change: int) -> None:
        with self._lock:
            self.active_downloads += change
            self.peak_downloads = max(self.peak_downloads, self.active_downloads)

    def total(self, prefix: str = "/") -> int:
        """Requests whose path starts with ``prefix``."""
        with self._lock:
            return sum(n for p, n in self.counts.items() if p.startswith(prefix))


class _Handler(BaseHTTPRequestHandler):
    server_version = "FixtureServer/1.0"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value).encode())

    def do_GET(self) -> None:
        fx: FixtureServer = self.server.fixture
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        fx.record(path, parts.query, self.headers)
        if fx.latency_s:
            time.sleep(fx.latency_s)
        fault = fx.take_fault(path)
        if fault == "503":
            return self._json(503, {"error": "Service Unavailable"})
        if fault == "429":
            return self._send(429, b'{"error": "Too Many Requests"}', headers={"Retry-After": "1"})
        if path.rstrip("/") == "/api/feed/audiobooks":
            return self._catalogue(fx, urllib.parse.parse_qs(parts.query))
        match = re.fullmatch(r"/metadata/(.+)", path)
        if match:
            files = fx.site.items.get(match.group(1))
            return self._json(200, {"files": files, "metadata": {"identifier": match.group(1)}} if files else {})
        if path.startswith("/download/"):
            rest = path[len("/download/") :]
            blob = next((b for (ident, name), b in fx.site.blobs.items() if f"{ident}/{name}" == rest), None)
            if blob is not None:
                fx.downloading(+1)
                try:
                    return self._download(fx, blob, fault)
                finally:
                    fx.downloading(-1)
        self._json(404, {"error": "not found"})

    def _catalogue(self, fx: FixtureServer, query: dict) -> None:
        if query.get("format", ["xml"])[0] != "json":
            return self._send(200, b"<xml><error>format must be json here</error></xml>", "application/xml")
        limit = int(query.get("limit", ["50"])[0])
        offset = 0 if fx.catalogue_mode == "ignore-offset" else int(query.get("offset", ["0"])[0])
        books = fx.site.books[offset : offset + limit]
        if fx.catalogue_mode == "endless":
            books = [
                {**fx.site.books[i % len(fx.site.books)], "id": str(100000 + i)} for i in range(offset, offset + limit)
            ]
        capped = fx.catalogue_cap is not None and fx.total("/api/feed/audiobooks") > fx.catalogue_cap
        if fx.catalogue_mode == "malformed" and not capped:
            return self._json(200, {"books": "abc"})
        if not books or capped:
            return self._json(404, {"error": "Audiobooks could not be found"})
        if query.get("extended", ["0"])[0] != "1":
            books = [{k: v for k, v in b.items() if k not in ("sections", "genres", "url_iarchive")} for b in books]
        self._json(200, {"books": books})

    def _download(self, fx: FixtureServer, data: bytes, fault: str | None) -> None:
        start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            if start >= len(data):
                return self._send(416, b"", headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
            data = data[start:end]
        if fault == "wrong":
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        self.send_response(status)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if fault in ("cut", "stall"):
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if fault == "stall":
                fx.stall_reached.set()
                fx.release.wait(60)
            self.close_connection = True
            return
        self.wfile.write(data)


def main(argv=None) -> int:
    """Serve :func:`demo_site` until interrupted."""
    parser = argparse.ArgumentParser(description="Serve a fixture LibriVox catalogue and archive.org.")
    parser.add_argument("--books", type=int, default=30)
    parser.add_argument("--chapter-seconds", type=float, default=3.0)
    parser.add_argument("--chapters", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765, help="0: any free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every answer")
    args = parser.parse_args(argv)
    server = FixtureServer(demo_site(args.books, args.chapter_seconds, args.chapters), args.port)
    server.latency_s = args.latency_ms / 1000
    print(f"--api-base {server.api_base} --archive-base {server.url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
