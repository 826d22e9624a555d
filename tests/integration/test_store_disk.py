"""A store on a full disk or a read-only one: clear lines, nothing lost, removal still works, reading still works.

The disk is a real tmpfs mounted for the test (root only; skipped elsewhere).
"""

import errno
import gc
import os
import subprocess

import pytest

from synth import write_wav


@pytest.fixture
def disk(tmp_path):
    """A 1 MB tmpfs at ``tmp_path / "disk"``, and a function that remounts it read-only."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("needs root to mount a small disk")

    def read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)

    yield mnt, read_only
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(folder):
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@pytest.fixture
def fewshot(capsys, tiny_model_dir):
    from fewshot.cli import main

    def run(*args, store):
        capsys.readouterr()
        code = main([*map(str, args), "--store", str(store), "--model", str(tiny_model_dir)])
        gc.collect()  # the command's connections close, as when its process exits
        out = capsys.readouterr()
        return code, out.out, [ln for ln in out.err.splitlines() if ln.strip()]

    return run


def enrolled(identifier, voice, store, names=("ann", "bob")):
    from fewshot.identifier import SpeakerIdentifier

    sid = SpeakerIdentifier(identifier.extractor, store=store)
    for i, name in enumerate(names):
        sid.enroll("home", name, [voice(name, 8.0, seed=i)])
    X, y = sid.store.embeddings("home", extractor_id=sid.extractor.model_id)
    sid.store.close()
    return X[y == "ann"]


def test_a_full_disk_refuses_enrollment_in_one_line_and_still_removes_a_person(
    disk, identifier, voice, tmp_path, fewshot
):
    mnt, _ = disk
    store = mnt / "enrollments.sqlite"
    ann = enrolled(identifier, voice, store)
    cat = write_wav(tmp_path / "cat.wav", voice("cat", 8.0))
    fill(mnt)
    code, _, err = fewshot("enroll", "--group", "home", "--speaker", "cat", cat, store=store)
    assert code == 2 and len(err) == 1 and "disk is full" in err[0] and "nothing was changed" in err[0], err
    code, out, err = fewshot("groups", "show", "home", store=store)
    assert code == 0 and "ann" in out and "bob" in out and "cat" not in out, err

    code, out, err = fewshot("groups", "remove", "home", "ann", store=store)
    assert code == 0 and "removed 'ann'" in out, err
    for f in mnt.iterdir():
        data = f.read_bytes()
        assert not any(row.tobytes() in data for row in ann), f"{f.name} still holds ann's embeddings"
    code, out, err = fewshot("groups", "show", "home", store=store)
    assert code == 0 and "bob" in out and "ann" not in out, err
    code, out, err = fewshot("identify", "--group", "home", cat, store=store)
    assert code == 0 and "bob" in out, err


def test_a_read_only_store_is_read_and_refuses_changes_in_one_line(disk, identifier, voice, tmp_path, fewshot):
    mnt, read_only = disk
    store = mnt / "enrollments.sqlite"
    enrolled(identifier, voice, store)
    read_only()
    code, out, err = fewshot("groups", store=store)
    assert code == 0 and "home: 2 people (ann, bob)" in out, err
    code, out, err = fewshot(
        "identify", "--group", "home", write_wav(tmp_path / "a.wav", voice("ann", 4.0, seed=5)), store=store
    )
    assert code == 0 and out.startswith(str(tmp_path / "a.wav")), err
    for args in (
        ("groups", "remove", "home", "ann"),
        ("enroll", "--group", "home", "--speaker", "cat", write_wav(tmp_path / "c.wav", voice("cat", 8.0))),
    ):
        code, _, err = fewshot(*args, store=store)
        assert code == 2 and len(err) == 1 and "read-only" in err[0] and "not a fewshot store" not in err[0], err


def test_a_sqlite_file_with_only_a_meta_table_is_not_a_store(tmp_path, fewshot):
    import sqlite3

    path = tmp_path / "meta-only.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);INSERT INTO meta VALUES ('schema_version', '4');"
    )
    db.close()
    code, _, err = fewshot("groups", store=path)
    assert code == 2 and len(err) == 1 and "not a fewshot store" in err[0], err
