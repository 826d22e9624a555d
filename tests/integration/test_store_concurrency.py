"""Several processes on one store: readers go on during a long write, writers wait, a too-long wait says so."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fewshot.errors import StoreBusyError
from fewshot.identifier import SpeakerIdentifier
from fewshot.model.extractor import load_extractor
from fewshot.store import file
from fewshot.store.enrollments import EnrollmentStore
from synth import write_wav

#: Another process's long write (as a VACUUM of a large store is): it holds the
#: write lock from "locked" until a line comes on its standard input.
HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE groups SET revision = revision")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""
#: Longer than SQLite's default busy timeout (5 s).
LONG_S = 6.5


@pytest.fixture
def extractor(tiny_model_dir):
    return load_extractor(tiny_model_dir)


@pytest.fixture
def store_path(tmp_path, extractor):
    path = tmp_path / "enrollments.sqlite"
    with EnrollmentStore(path) as store:
        for name in ("amy", "bert"):
            store.enroll("g", name, np.ones((3, 16)), extractor_id=extractor.model_id, sources=[])
    return path


@pytest.fixture
def holder(store_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        release(proc)


def release(proc):
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 0


def fewshot_process(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "fewshot.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_readers_go_on_and_writers_wait_during_a_long_write(store_path, holder, extractor, voice, tmp_path):
    readers = [fewshot_process("groups", "--store", store_path) for _ in range(3)]
    for proc in readers:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, err) == (0, "") and out == "g: 2 people (amy, bert)\n"
    assert holder.poll() is None  # every reader finished while the write lock was held

    remover = fewshot_process("groups", "remove", "g", "bert", "--store", store_path)
    wav = write_wav(tmp_path / "cat.wav", voice("cat", 8.0))
    enrolled = {}

    def enroll():  # embeds at once, then waits for the lock to write
        sid = SpeakerIdentifier(extractor, store=EnrollmentStore(store_path))
        try:
            enrolled["result"] = sid.enroll("g", "cat", [wav])
        except Exception as exc:  # reported by the assertion below
            enrolled["error"] = exc

    thread = threading.Thread(target=enroll)
    thread.start()
    time.sleep(LONG_S)
    assert remover.poll() is None and thread.is_alive()  # both still waiting, past SQLite's default 5 s
    release(holder)
    out, err = remover.communicate(timeout=120)
    thread.join(timeout=120)
    assert (remover.returncode, err) == (0, "") and "removed 'bert'" in out
    assert "error" not in enrolled and enrolled["result"].n_segments > 0
    with EnrollmentStore(store_path) as store:
        assert store.groups()[0]["speakers"] == ["amy", "cat"]


def test_a_wait_that_runs_out_says_so(store_path, holder, extractor, monkeypatch, capsys):
    from fewshot.cli import main

    with EnrollmentStore(store_path, busy_timeout_s=0.5) as store:
        E = np.full((2, 16), 0.5)
        with pytest.raises(StoreBusyError, match=f"^{store_path}: busy: "):
            store.enroll("g", "cat", E, extractor_id=extractor.model_id, sources=[])
        release(holder)
        # the same embeddings, written once the lock is free
        assert store.enroll("g", "cat", E, extractor_id=extractor.model_id, sources=[]) == (False, 0.0)

    again = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert again.stdout.readline().strip() == "locked"
        monkeypatch.setattr(file, "BUSY_TIMEOUT_S", 1.0)
        rc = main(["groups", "remove", "g", "amy", "--store", str(store_path)])
        lines = capsys.readouterr().err.splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: {store_path}: busy: ")
    finally:
        release(again)
    with EnrollmentStore(store_path) as store:
        assert store.groups()[0]["speakers"] == ["amy", "bert", "cat"]
