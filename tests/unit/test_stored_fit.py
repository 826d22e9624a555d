"""A group's fitted SVM lives in the store beside its members: gone with them, and never trusted blindly."""

import io
import sqlite3
import zipfile

import numpy as np
import pytest

from fewshot.groups.fitted import FittedGroup
from fewshot.groups.kept_fit import fit_key, stored_or_fit
from fewshot.groups.svc import GroupSVC
from fewshot.store.schema import SCHEMA_VERSION

PARAMS = {"C": 10.0, "gamma": 1.0, "unknown_threshold": 0.3}


def clusters(rng, n_speakers=3, per=8, dim=16):
    centres = rng.standard_normal((n_speakers, dim))
    X = np.concatenate([c + 0.15 * rng.standard_normal((per, dim)) for c in centres])
    return X, np.repeat([f"spk{i}" for i in range(n_speakers)], per), centres


def _files_under(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_after_removal_no_file_under_fewshot_home_holds_the_persons_voiceprint(
    identifier, voice, tmp_path, monkeypatch
):
    from fewshot.identifier import SpeakerIdentifier
    from fewshot.store.enrollments import EnrollmentStore

    home = tmp_path / "home"
    monkeypatch.setenv("FEWSHOT_HOME", str(home))
    sid = SpeakerIdentifier(identifier.extractor, store=EnrollmentStore())
    for i, name in enumerate(("ann", "bob", "cat")):
        sid.enroll("home", name, [voice(name, 8.0, seed=i)])
    assert sid.identify("home", voice("ann", 4.0, seed=9)).label in ("ann", "bob", "cat", "unknown")
    X, y = sid.store.embeddings("home", extractor_id=sid.extractor.model_id)
    ann = X[y == "ann"].astype(np.float32)
    Xn = ann / np.linalg.norm(ann, axis=1, keepdims=True)
    centroid = sid.classifier("home").centroids_[0]
    needles = [r.tobytes() for r in ann] + [r.astype(np.float64).tobytes() for r in Xn] + [centroid.tobytes()]
    assert any(n in b for b in _files_under(home).values() for n in needles)  # the search finds them before

    assert sid.store._read().execute("PRAGMA secure_delete").fetchone()[0] == 1
    sid.store.remove_speaker("home", "ann")
    assert sid.identify("home", voice("ann", 4.0, seed=9)).nearest in ("bob", "cat")
    sid.store.close()
    files = _files_under(home)
    assert sorted(p.name for p in files) == ["enrollments.sqlite"]  # no cache folder, no journal left
    for path, data in files.items():
        assert not any(n in data for n in needles), f"{path} still holds ann's voiceprint"
    db = sqlite3.connect(home / "enrollments.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_the_fit_is_kept_in_the_store_and_follows_the_members(identifier, voice):
    for i, name in enumerate(("ann", "bob")):
        identifier.enroll("home", name, [voice(name, 8.0, seed=i)])
    db = sqlite3.connect(identifier.store.path)
    ((rev, key),) = db.execute("SELECT revision, key FROM fits").fetchall()
    identifier.enroll("home", "cat", [voice("cat", 8.0)])
    ((rev2, key2),) = db.execute("SELECT revision, key FROM fits").fetchall()
    assert rev2 == rev + 1 and key2 != key
    identifier.store.remove_speaker("home", "cat")
    assert db.execute("SELECT COUNT(*) FROM fits").fetchone()[0] == 0  # same transaction as the removal


def test_a_fit_copied_from_another_group_or_edited_is_not_used(identifier, voice):
    for group, names in (("a", ("ann", "bob")), ("b", ("cat", "dan"))):
        for name in names:
            identifier.enroll(group, name, [voice({"dan": "ann", "cat": "bob"}.get(name, name), 8.0, seed=len(name))])
    db = sqlite3.connect(identifier.store.path)
    ids = dict(db.execute("SELECT name, id FROM groups"))
    key_b, data_b = db.execute("SELECT key, data FROM fits WHERE group_id=?", (ids["b"],)).fetchone()
    with db:
        db.execute("UPDATE fits SET key=?, data=? WHERE group_id=?", (key_b, data_b, ids["a"]))
    fresh = type(identifier)(identifier.extractor, store=identifier.store.path)
    assert fresh.identify("a", voice("ann", 4.0, seed=7)).nearest in ("ann", "bob")
    (key_a,) = db.execute("SELECT key FROM fits WHERE group_id=?", (ids["a"],)).fetchone()
    assert key_a != key_b  # refitted and kept again


@pytest.mark.parametrize(
    "tamper", ["nan_centroid", "escape_name", "outsider_label", "other_width", "gamma", "foreign_support_vector"]
)
def test_a_stored_fit_that_is_not_the_fit_of_these_rows_is_refitted(rng, tamper):
    X, y, centres = clusters(rng)
    mask = np.ones(len(y), bool)
    good, (key, data) = stored_or_fit(None, X, y, centroid_mask=mask, params=PARAMS)
    f = FittedGroup.from_bytes(data)
    bad = {
        "nan_centroid": lambda: FittedGroup(
            f.classes_,
            np.full_like(f.centroids_, np.nan),
            f.support_vectors,
            f.dual_coef,
            f.intercept,
            f.n_support,
            f.gamma,
            f.unknown_threshold,
        ),
        "escape_name": lambda: FittedGroup(
            np.array(["spk0", "\x1b[2Jroot\nx", "spk2"]),
            f.centroids_,
            f.support_vectors,
            f.dual_coef,
            f.intercept,
            f.n_support,
            f.gamma,
            f.unknown_threshold,
        ),
        "outsider_label": lambda: FittedGroup(
            f.classes_,
            f.centroids_,
            f.support_vectors,
            f.dual_coef,
            f.intercept,
            f.n_support,
            f.gamma,
            f.unknown_threshold,
            "spk0",
        ),
        "other_width": lambda: GroupSVC(**PARAMS).fit(X[:, :8], y).fitted_,
        "gamma": lambda: FittedGroup(
            f.classes_,
            f.centroids_,
            f.support_vectors,
            f.dual_coef,
            f.intercept,
            f.n_support,
            1e308,
            f.unknown_threshold,
        ),
        "foreign_support_vector": lambda: FittedGroup(
            f.classes_,
            f.centroids_,
            -f.support_vectors,
            f.dual_coef,
            f.intercept,
            f.n_support,
            f.gamma,
            f.unknown_threshold,
        ),
    }[tamper]()
    used, new = stored_or_fit((key, bad.to_bytes()), X, y, centroid_mask=mask, params=PARAMS)
    assert new is not None and new[0] == key  # refitted
    np.testing.assert_array_equal(used.predict(centres), good.predict(centres))
    assert stored_or_fit((key, data), X, y, centroid_mask=mask, params=PARAMS)[1] is None  # the real one is used


def _npz(**members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_blob_that_would_take_more_memory_than_its_size_is_refused(rng):
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (10**10,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    lying = buf.getvalue() + b"\0" * 64
    bomb = _npz(**{"centroids.npy": lying})
    zeros = io.BytesIO()
    np.save(zeros, np.zeros(4_000_000))
    deflated = _npz(**{"centroids.npy": zeros.getvalue()})
    assert len(deflated) < 100_000
    for data in (bomb, deflated, b"\0" * (65 << 20)):
        with pytest.raises(ValueError, match="not a fitted group"):
            FittedGroup.from_bytes(data)


def test_a_store_upgrade_removes_the_old_cache_files(tmp_path, monkeypatch):
    from fewshot.store.enrollments import EnrollmentStore
    from stores import old_store

    monkeypatch.setenv("FEWSHOT_HOME", str(tmp_path))
    cache = tmp_path / "cache" / "svm"
    cache.mkdir(parents=True)
    (cache / "0123abcd.npz").write_bytes(b"voiceprint")
    old_store(tmp_path / "enrollments.sqlite", 2)
    with EnrollmentStore() as store:
        assert store.groups()[0]["speakers"] == ["ann"]
    assert not (tmp_path / "cache").exists()


def test_fit_key_changes_with_rows_and_settings(rng):
    X, y, _ = clusters(rng)
    mask = np.ones(len(y), bool)
    keys = {
        fit_key(X, y, mask, PARAMS),
        fit_key(X, y, mask, {**PARAMS, "gamma": 2.0}),
        fit_key(X[:-1], y[:-1], mask[:-1], PARAMS),
    }
    assert len(keys) == 3
