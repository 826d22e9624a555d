import os
import sqlite3
import stat

import numpy as np
import pytest

from synth import write_wav
from fewshot.enrollment import EnrollmentStore, Source
from fewshot.errors import AudioError, IncompatibleModelError, NotEnrolledError
from fewshot.extractor import load_extractor
from fewshot.identifier import SpeakerIdentifier


@pytest.fixture
def identifier(tiny_model_dir, tmp_path):
    return SpeakerIdentifier(load_extractor(tiny_model_dir), store=tmp_path / "store.sqlite")


def snapshot(path):
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("groups", "speakers", "sources", "embeddings")}
    finally:
        db.close()


def test_store_file_is_private(tmp_path):
    EnrollmentStore(tmp_path / "s.sqlite").close()
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600


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
        store.enroll("g", "bob", np.ones((2, 4)), extractor_id="x",
                     sources=[Source("b.wav", "1" * 64, 2.0), Source(None, "2" * 64, 1.0)])
    assert snapshot(store.path) == before


def test_other_extractor_is_refused(tmp_path):
    store = EnrollmentStore(tmp_path / "s.sqlite")
    store.enroll("g", "ann", np.ones((3, 4)), extractor_id="model-a", sources=[])
    with pytest.raises(IncompatibleModelError, match="Re-enroll"):
        store.enroll("g", "bob", np.ones((3, 4)), extractor_id="model-b", sources=[])
    with pytest.raises(IncompatibleModelError, match="model-a"):
        store.embeddings("g", extractor_id="model-b")


def test_deleting_really_removes_voiceprints(tmp_path, rng):
    path = tmp_path / "s.sqlite"
    store = EnrollmentStore(path)
    secret = rng.standard_normal((4, 32)).astype(np.float32)
    store.enroll("g", "ann", secret, extractor_id="x", sources=[Source("a.wav", "f" * 64, 4.0)])
    store.enroll("g", "bob", rng.standard_normal((4, 32)), extractor_id="x", sources=[])
    assert secret[0].tobytes() in path.read_bytes()
    store.remove_speaker("g", "ann")
    assert secret[0].tobytes() not in path.read_bytes()
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
