"""End-to-end runs of ``scripts/scrape_librivox.py`` against the fixture server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fewshot.datasets import validate_manifest

REPO = Path(__file__).resolve().parents[3]


def leftovers(root):
    return [p for p in root.rglob("*") if p.name.endswith((".part", ".tmp", ".old"))]


@pytest.fixture(scope="module")
def reference(site, tmp_path_factory, scrape_main, scrape_argv):
    """An uninterrupted run over the fixture catalogue (shared by the tests below)."""
    from fixture_server import FixtureServer

    out = tmp_path_factory.mktemp("reference")
    with FixtureServer(site) as srv:
        assert scrape_main(scrape_argv(srv, out)) == 0
        counts = dict(srv.counts)
        assert srv.peak_downloads == 1  # download tasks run in several processes, one download at a time
    return out, counts


def test_uninterrupted_run(reference, capsys):
    out, counts = reference
    rows = validate_manifest(out / "manifest.csv")
    assert {r.speaker_id for r in rows} == {"500", "100", "101", "102"}
    assert {r.book_id for r in rows if r.speaker_id == "500"} == {"990", "995"}
    assert {r.split for r in rows} == {"train", "val", "test"}
    assert all(r.duration_s == 1.0 and r.path.parent.name == r.speaker_id for r in rows)
    assert all(r.path.name.startswith(f"{r.speaker_id}-{r.book_id}-") for r in rows)
    assert not any("_64kb" not in p for p in counts if p.startswith("/download/"))
    assert sum(n for p, n in counts.items() if p.startswith("/download/")) == 8
    assert not leftovers(out)


def test_second_run_makes_no_requests(reference, server, scrape_main, scrape_argv, tmp_path, capsys):
    out = tmp_path / "corpus"
    assert scrape_main(scrape_argv(server, out, "--spectrograms")) == 0
    first = (out / "manifest.csv").read_text()
    assert first == (reference[0] / "manifest.csv").read_text()
    assert list((out / "audio" / "100").glob("*.png"))
    printed = capsys.readouterr().out
    assert "Narrators: 4 built, 4 selected of 4 requested (10 solo narrators" in printed
    assert "collaborative: several readers in a section: 2" in printed
    assert "genre Dramatic Readings: 1" in printed and "placeholder narrator: 1" in printed
    assert "Downloads this run: 8 files" in printed and "s per hour of audio" in printed

    server.reset()
    assert scrape_main(scrape_argv(server, out, "--spectrograms")) == 0
    assert server.total() == 0
    assert (out / "manifest.csv").read_text() == first
    assert "Downloads this run: 0 files" in capsys.readouterr().out


def test_faults_during_a_run(reference, site, server, scrape_main, scrape_argv, tmp_path):
    server.add_fault("/api/feed/audiobooks", "503")
    server.add_fault("/metadata/fixture_book_1000", "429")
    server.add_fault(site.chapter_path(990), "cut")
    server.add_fault(site.chapter_path(1001, 2), "wrong")
    server.add_fault(site.chapter_path(1000, 2), "503", "503")
    out = tmp_path / "corpus"
    assert scrape_main(scrape_argv(server, out)) == 0
    assert (out / "manifest.csv").read_text() == (reference[0] / "manifest.csv").read_text()
    assert server.counts[site.chapter_path(990)] == 2
    assert server.counts[site.chapter_path(1001, 2)] == 2
    assert server.counts[site.chapter_path(1000, 2)] == 3
    assert not leftovers(out)


def test_killed_run_restarts_to_same_manifest(reference, site, server, scrape_main, scrape_argv, tmp_path, ray_runtime):
    out = tmp_path / "corpus"
    stalled = site.chapter_path(1001, 2)
    server.add_fault(stalled, "stall")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "scrape_librivox.py"),
            # a long timeout: a worker of the killed run that outlives it stays blocked in the stalled download,
            # neither retrying nor finishing it while the second run works
            *scrape_argv(server, out, "--cluster", ray_runtime, "--timeout", "120"),
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = "fixture_book_1001_02_64kb.mp3"
    half = len(site.blobs[("fixture_book_1001", name)]) // 2
    part = out / "downloads" / "fixture_book_1001" / f"{name}.part"
    try:
        try:
            assert server.stall_reached.wait(60), "the run never reached the stalled download"
            deadline = time.monotonic() + 20
            while not (part.exists() and part.stat().st_size == half) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        assert part.stat().st_size == half
        assert not (out / "manifest.csv").exists()

        # one download at a time per host, and the stalled one holds it: nothing else was in flight at the kill
        complete = len(list((out / "downloads").glob("*/*.mp3")))  # download tasks run in no fixed order
        before = server.total("/download/")
        assert scrape_main(scrape_argv(server, out)) == 0
        assert (out / "manifest.csv").read_text() == (reference[0] / "manifest.csv").read_text()
        assert [e["range"] for e in server.log if e["path"] == stalled] == [None, f"bytes={half}-"]
        assert server.total("/download/") - before == 8 - complete
        assert not leftovers(out)
    finally:  # only now: Ray ends the killed run's workers in its own time, and one released earlier could resume
        server.release.set()


def test_exclude_speakers(server, scrape_main, scrape_argv, tmp_path, capsys):
    (tmp_path / "ex.txt").write_text("101\n")
    out = tmp_path / "ex"
    assert scrape_main(scrape_argv(server, out, "--exclude-speakers", str(tmp_path / "ex.txt"), speakers=2)) == 0
    assert {r.speaker_id for r in validate_manifest(out / "manifest.csv")} == {"500", "100"}
    assert "only" not in capsys.readouterr().out


def test_too_few_narrators_reported(server, scrape_main, scrape_argv, tmp_path, capsys):
    out = tmp_path / "few"
    argv = scrape_argv(server, out, speakers=50)
    argv[argv.index("--minutes") + 1] = "0.15"
    assert scrape_main(argv) == 0
    printed = capsys.readouterr().out
    assert "only 1 narrators with at least 0.15 min were found" in printed
    assert {r.speaker_id for r in validate_manifest(out / "manifest.csv")} == {"100"}


def test_bad_arguments(scrape_main, tmp_path):
    with pytest.raises(SystemExit):
        scrape_main(["--out", str(tmp_path)])
    for bad in (["--shard", "0/2"], ["--merge", "part0"], ["--workers", "0"], ["--downloads-per-host", "0"]):
        with pytest.raises(SystemExit):
            scrape_main(["--out", str(tmp_path), "--speakers", "2", "--minutes", "1", *bad])


def test_unreachable_cluster_fails_in_one_line(scrape_main, tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--speakers", "2", "--minutes", "1", "--no-progress", "--cluster", "127.0.0.1:1"]
    assert scrape_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no Ray head node answers at 127.0.0.1:1")
    assert not (tmp_path / "state.json").exists()


def test_unreachable_catalogue_fails_cleanly(scrape_main, tmp_path, capsys):
    argv = [
        "--out",
        str(tmp_path),
        "--speakers",
        "2",
        "--minutes",
        "1",
        "--no-progress",
        "--api-base",
        "http://127.0.0.1:9/api/feed/audiobooks",
        "--max-attempts",
        "1",
        "--timeout",
        "2",
    ]
    assert scrape_main(argv) == 1
    assert "run the same command again" in capsys.readouterr().err


def test_failed_downloads_exit_1(site, server, scrape_main, scrape_argv, tmp_path, capsys):
    server.add_fault(site.chapter_path(990), "wrong", "wrong", "wrong")
    out = tmp_path / "corpus"
    assert scrape_main(scrape_argv(server, out, "--max-attempts", "3", speakers=2)) == 1
    assert server.counts[site.chapter_path(990)] == 3
    assert {r.speaker_id for r in validate_manifest(out / "manifest.csv")} == {"100"}
    captured = capsys.readouterr()
    assert "download failed: 1" in captured.out
    assert captured.err.strip().splitlines()[-1] == (
        "failed: 1 narrator not built because downloads failed; run the same command again to retry"
    )


def test_nothing_built_exits_1(server, scrape_main, scrape_argv, tmp_path, capsys):
    argv = scrape_argv(server, tmp_path / "none")
    argv[argv.index("--minutes") + 1] = "100"
    assert scrape_main(argv) == 1
    assert server.total("/download/") == 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == "failed: no narrator was built"
