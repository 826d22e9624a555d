"""Multi-condition enrollment: degraded copies of the enrollment speech train the SVM, not the centroids."""

import dataclasses
import sqlite3

import numpy as np

from fewshot.audio.degrade import enrollment_copies
from fewshot.config import ClassifierConfig
from fewshot.groups.svc import GroupSVC
from fewshot.identifier import SpeakerIdentifier
from fewshot.model.extractor import load_extractor
from fewshot.store.enrollments import SCHEMA_VERSION, EnrollmentStore
from stores import old_store


def test_copies_are_degraded_reproducible_and_of_equal_length(voice):
    y = voice("ann", 6.0)
    a, b = enrollment_copies(y, sr=16000), enrollment_copies(y, sr=16000)
    assert len(a) == 3 and all(len(c) == len(y) for c in a)
    for c, d in zip(a, b):
        np.testing.assert_array_equal(c, d)
        assert not np.allclose(c, y)


def test_copies_need_numpy_alone_and_filter_as_scipy_does(rng):
    """The room and the noise of enrollment import no scipy.signal (1.4 s), and give scipy.signal's numbers."""
    import subprocess
    import sys

    from scipy.signal import fftconvolve, lfilter

    from fewshot.audio.degrade import one_pole, reverberate, synthetic_rir

    code = (
        "import sys, numpy as np; from fewshot.audio.degrade import enrollment_copies; "
        "enrollment_copies(np.random.default_rng(0).standard_normal(48000).astype('float32'), sr=16000); "
        "sys.exit('scipy.signal' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    for n in (1, 63, 64, 65, 9601):
        x = rng.standard_normal(n)
        np.testing.assert_allclose(one_pole(x, 0.6), lfilter([0.4], [1.0, -0.6], x), rtol=0, atol=1e-12)
    y, h = rng.standard_normal(32000).astype(np.float32), synthetic_rir(sr=16000, rt60_s=0.5, drr_db=0.0, rng=rng)
    expected = fftconvolve(y, h)[: len(y)]
    np.testing.assert_allclose(
        reverberate(y, h), expected * np.sqrt(np.mean(y**2) / np.mean(expected**2)), rtol=0, atol=1e-5
    )


def test_centroids_come_from_the_recorded_speech_only(rng):
    X = np.r_[rng.normal(1, 0.1, (5, 4)), rng.normal(-1, 0.1, (5, 4)), rng.normal(0, 1, (6, 4))]
    y = np.array(["a"] * 5 + ["b"] * 5 + ["a"] * 3 + ["b"] * 3)
    mask = np.r_[np.ones(10, bool), np.zeros(6, bool)]
    with_mask = GroupSVC().fit(X, y, centroid_mask=mask)
    clean_only = GroupSVC().fit(X[mask], y[mask])
    np.testing.assert_allclose(with_mask.centroids_, clean_only.centroids_)


def test_enrollment_stores_copies_and_identify_uses_them(tiny_model_dir, tmp_path, voice):
    ex = load_extractor(tiny_model_dir)
    mc = dataclasses.replace(ClassifierConfig.of_model(ex), multi_condition=True)
    sid = SpeakerIdentifier(ex, store=tmp_path / "s.sqlite", classifier_config=mc)
    res = sid.enroll("home", "ann", voice("ann", 16.0, seed=1))
    sid.enroll("home", "bob", voice("bob", 16.0, seed=1))
    X, y, is_copy = sid.store.embeddings("home", extractor_id=ex.model_id, copies=True)
    assert is_copy.sum() == 3 * (~is_copy).sum()  # three copies of every segment
    assert sid.store.speakers("home")[0].n_segments == res.n_segments  # counted once
    assert len(sid.store.embeddings("home", extractor_id=ex.model_id)[0]) == (~is_copy).sum()

    def from_copies(clf):  # which support vectors are rows of the degraded copies
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        rows = np.argmin(((clf.support_vectors[:, None] - Xn[None]) ** 2).sum(-1), axis=1)
        return is_copy[rows]

    assert from_copies(sid.classifier("home")).any()
    assert sid.identify("home", voice("ann", 5.0, seed=7)).nearest == "ann"
    plain = SpeakerIdentifier(ex, store=tmp_path / "s.sqlite")  # the same store without multi-condition
    assert len(plain.classifier("home").support_vectors) and not from_copies(plain.classifier("home")).any()


def test_a_store_of_the_first_schema_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    old_store(path, 1)
    with EnrollmentStore(path) as store:
        X, y = store.embeddings("home", extractor_id="x")
        assert X.shape == (1, 4) and list(y) == ["ann"]
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    db.close()
