import os
import sqlite3
import stat

import numpy as np
import pytest

from fewshot.errors import AudioError, IncompatibleModelError, NotAStoreError, NotEnrolledError
from fewshot.store.enrollments import EnrollmentStore, Source
from stores import snapshot
from synth import write_wav


def test_store_file_is_private(tmp_path):
    with EnrollmentStore(tmp_path / "s.sqlite") as store:
        store.enroll("g", "ann", np.ones((3, 4)), extractor_id="x", sources=[])
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["s.sqlite"]  # no temporary file or WAL left behind


def test_reading_creates_nothing(tmp_path):
    path = tmp_path / "home" / "enrollments.sqlite"
    with EnrollmentStore(path) as store:
        assert store.groups() == []
        with pytest.raises(NotEnrolledError, match=r"no group named 'g' \(groups: none yet\)"):
            store.speakers("g")
        with pytest.raises(NotEnrolledError):
            store.remove_speaker("g", "ann")
        with pytest.raises(NotEnrolledError):
            store.delete_group("g")
    assert not (tmp_path / "home").exists()


def test_what_is_not_a_store_is_left_alone(tmp_path):
    folder, text, other = tmp_path / "folder", tmp_path / "notes.txt", tmp_path / "other.db"
    folder.mkdir(mode=0o755)
    text.write_text("my notes\n")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    for path in (text, other):
        os.chmod(path, 0o644)
    before = {p: (stat.S_IMODE(os.stat(p).st_mode), p.is_file() and p.read_bytes()) for p in (folder, text, other)}
    for path in (folder, text, other):
        with pytest.raises(NotAStoreError, match=f"^{path}: not a fewshot store$"):
            EnrollmentStore(path)
    assert {p: (stat.S_IMODE(os.stat(p).st_mode), p.is_file() and p.read_bytes()) for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt", "other.db"]


def test_failed_enrollment_leaves_store_unchanged(identifier, voice, tmp_path):
    good = write_wav(tmp_path / "ann.wav", voice("ann", 12.0))
    identifier.enroll("home", "ann", [good])
    before = snapshot(identifier.store.path)
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000 * 3, np.float32))
    with pytest.raises(AudioError, match="silent.wav: audio is all silence"):
        identifier.enroll("home", "bob", [write_wav(tmp_path / "bob.wav", voice("bob", 12.0)), silent])
    with pytest.raises(AudioError, match="silent.wav"):
        identifier.enroll("home", "ann", [silent], replace=True)
    assert snapshot(identifier.store.path) == before


def test_crash_inside_the_transaction_rolls_back(tmp_path):
    store = EnrollmentStore(tmp_path / "s.sqlite")
    store.enroll("g", "ann", np.ones((3, 4)), extractor_id="x", sources=[Source("a.wav", "0" * 64, 3.0)])
    before = snapshot(store.path)
    with pytest.raises(ValueError, match="finite"):
        store.enroll("g", "bob", np.full((3, 4), np.nan), extractor_id="x", sources=[])
    # the second source row violates NOT NULL after the speaker and first source were inserted
    with pytest.raises(sqlite3.IntegrityError):
        store.enroll(
            "g",
            "bob",
            np.ones((2, 4)),
            extractor_id="x",
            sources=[Source("b.wav", "1" * 64, 2.0), Source(None, "2" * 64, 1.0)],
        )
    assert snapshot(store.path) == before


def test_other_extractor_is_refused(tmp_path):
    store = EnrollmentStore(tmp_path / "s.sqlite")
    store.enroll("g", "ann", np.ones((3, 4)), extractor_id="model-a", sources=[])
    with pytest.raises(IncompatibleModelError, match="enrolled with extractor model-a, not model-b"):
        store.enroll("g", "bob", np.ones((3, 4)), extractor_id="model-b", sources=[])
    with pytest.raises(IncompatibleModelError, match="model-a"):
        store.embeddings("g", extractor_id="model-b")


def on_disk(path) -> bytes:
    """The store file and its WAL, as they lie on disk."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_deleting_really_removes_voiceprints(tmp_path, rng):
    path = tmp_path / "s.sqlite"
    store = EnrollmentStore(path)
    reader = EnrollmentStore(path)  # a second user of the store keeps the WAL open
    secret = rng.standard_normal((4, 32)).astype(np.float32)
    store.enroll("g", "ann", secret, extractor_id="x", sources=[Source("a.wav", "f" * 64, 4.0)])
    store.enroll("g", "bob", rng.standard_normal((4, 32)), extractor_id="x", sources=[])
    assert [g["speakers"] for g in reader.groups()] == [["ann", "bob"]]
    assert secret[0].tobytes() in on_disk(path)
    store.remove_speaker("g", "ann")
    assert secret[0].tobytes() not in on_disk(path)
    assert [g["speakers"] for g in reader.groups()] == [["bob"]]
    assert [g["speakers"] for g in store.groups()] == [["bob"]]
    store.delete_group("g")
    assert store.groups() == []
    with pytest.raises(NotEnrolledError, match="no group named 'g'"):
        store.speakers("g")


def test_classifier_is_refit_when_members_change(identifier, voice, tmp_path):
    identifier.enroll("home", "ann", [write_wav(tmp_path / "a.wav", voice("ann", 8.0))])
    assert list(identifier.classifier("home").classes_) == ["ann"]
    identifier.enroll("home", "bob", [write_wav(tmp_path / "b.wav", voice("bob", 8.0))], keep_audio=True)
    assert list(identifier.classifier("home").classes_) == ["ann", "bob"]
    assert len(identifier.store.kept_audio("home", "bob")[0]) > 16000 * 7
    identifier.store.remove_speaker("home", "ann")
    assert list(identifier.classifier("home").classes_) == ["bob"]


def test_reserved_and_empty_names(identifier, voice):
    with pytest.raises(ValueError, match="reserved"):
        identifier.enroll("home", "Unknown", [voice("ann", 3.0)], sr_in=16000)
    with pytest.raises(ValueError, match="no audio"):
        identifier.enroll("home", "ann", [])
