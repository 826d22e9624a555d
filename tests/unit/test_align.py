"""Aligners: the NumPy map, its file and checksum, fitting, and mapping a stored group once."""

import sqlite3

import numpy as np
import pytest

from fewshot.audio.features import l2_normalize
from fewshot.errors import CorruptModelError
from fewshot.model.align import Aligner, aligner_entry, map_group, read_aligner, write_aligner
from fewshot.store.enrollments import SCHEMA_VERSION, EnrollmentStore
from fewshot.store.upgrade import mapped_note
from fewshot.train.align import fit_linear
from stores import old_store


def unit_rows(rng, n, d):
    return l2_normalize(rng.standard_normal((n, d))).astype(np.float32)


def rotation(rng, d):
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Q.astype(np.float32)


def test_a_linear_aligner_maps_to_unit_rows(rng):
    Q = rotation(rng, 8)
    X = unit_rows(rng, 5, 8)
    al = Aligner(Q, np.zeros(8, np.float32))
    np.testing.assert_allclose(al.transform(X), X @ Q, atol=1e-6)
    assert al.shape == "linear"
    with pytest.raises(ValueError, match=r"X.shape=\(5, 3\)"):
        al.transform(X[:, :3])


def test_the_identity_keeps_the_old_space(rng):
    X = unit_rows(rng, 5, 8)
    al = Aligner.identity(8)
    assert al.shape == "identity" and Aligner.from_bytes(al.to_bytes()).shape == "identity"
    np.testing.assert_allclose(al.transform(X), X, atol=1e-6)
    assert Aligner(rotation(rng, 8), np.zeros(8, np.float32)).shape == "linear"


def test_an_mlp_aligner_adds_its_residual_branch_and_survives_its_file(rng):
    A, a = rotation(rng, 8), np.zeros(8, np.float32)
    hidden = (
        (rng.standard_normal((8, 16)).astype(np.float32), np.zeros(16, np.float32)),
        (rng.standard_normal((16, 8)).astype(np.float32), np.ones(8, np.float32)),
    )
    al = Aligner(A, a, hidden)
    X = unit_rows(rng, 4, 8)
    expected = l2_normalize(X @ A + np.maximum(X @ hidden[0][0], 0) @ hidden[1][0] + 1)
    np.testing.assert_allclose(al.transform(X), expected, atol=1e-5)
    assert al.shape == "mlp1"
    again = Aligner.from_bytes(al.to_bytes())
    assert again.shape == "mlp1"
    np.testing.assert_array_equal(again.transform(X), al.transform(X))


def test_the_file_is_found_by_any_old_id_and_checked(rng, tmp_path):
    al = Aligner(rotation(rng, 8), np.zeros(8, np.float32))
    entry = write_aligner(tmp_path, al, from_ids=["newid0000000000a", "formerid00000000"])
    meta = {"aligners": {"newid0000000000a": entry}}
    assert aligner_entry(meta, "formerid00000000") is entry and aligner_entry(meta, "other") is None
    assert entry["file"].startswith("aligner-newid0000000000a-") and entry["bytes"] < 1_000_000
    np.testing.assert_array_equal(read_aligner(tmp_path, entry).A, al.A)
    (tmp_path / entry["file"]).write_bytes(b"not an aligner")
    with pytest.raises(CorruptModelError, match="checksum"):
        read_aligner(tmp_path, entry)
    with pytest.raises(CorruptModelError, match="not found"):
        read_aligner(tmp_path, {**entry, "file": "../elsewhere.npz"})


def test_least_squares_recovers_a_rotation(rng):
    Q = rotation(rng, 16)
    X = unit_rows(rng, 400, 16)
    al = fit_linear(X, X @ Q, reg=1e-6)
    np.testing.assert_allclose(al.A, Q, atol=1e-3)
    assert np.min(np.sum(al.transform(X) * (X @ Q), axis=1)) > 0.999


def test_mapping_a_group_rewrites_it_once_under_the_new_id(rng, tmp_path):
    store = EnrollmentStore(tmp_path / "s.sqlite")
    E = {n: unit_rows(rng, 6, 8) for n in ("ann", "bob")}
    for n, e in E.items():
        store.enroll("home", n, e, extractor_id="old", sources=[], copies=e[:2] if n == "ann" else None)
    Q = rotation(rng, 8)
    al = Aligner(Q, np.zeros(8, np.float32))
    new = type("Ex", (), {"model_id": "new"})()
    assert map_group(store, "home", "old", new, al)
    X, y, is_copy = store.embeddings("home", extractor_id="new", copies=True)
    np.testing.assert_allclose(X[(y == "ann") & ~is_copy], E["ann"] @ Q, atol=1e-5)
    assert is_copy.sum() == 2
    assert [m.mapped_from for m in store.speakers("home")] == ["old", "old"]
    assert not map_group(store, "home", "old", new, al)  # already mapped: nothing happens
    assert store.group_revision("home")[0] == "new"
    note = mapped_note("home", store.speakers("home"))
    assert "2 of 2 people" in note and "old" in note and "re-enroll" in note


def test_a_stale_mapping_is_not_written(rng, tmp_path):
    store = EnrollmentStore(tmp_path / "s.sqlite")
    store.enroll("home", "ann", unit_rows(rng, 3, 8), extractor_id="old", sources=[])
    expect = store.group_revision("home")
    store.enroll("home", "ann", unit_rows(rng, 3, 8), extractor_id="old", sources=[])  # another process enrolls
    assert not store.rewrite_group(
        "home", extractor_id="new", embeddings={"ann": (unit_rows(rng, 3, 8), None)}, mapped_from="old", expect=expect
    )
    assert store.group_revision("home")[0] == "old"


def test_re_enrolling_a_mapped_person_clears_the_mark(rng, tmp_path):
    store = EnrollmentStore(tmp_path / "s.sqlite")
    store.enroll("home", "ann", unit_rows(rng, 3, 8), extractor_id="new", sources=[])
    store.rewrite_group("home", extractor_id="new", embeddings={"ann": (unit_rows(rng, 3, 8), None)}, mapped_from="old")
    assert store.speakers("home")[0].mapped_from == "old"
    store.enroll("home", "ann", unit_rows(rng, 3, 8), extractor_id="new", sources=[], replace=True)
    assert store.speakers("home")[0].mapped_from is None
    assert mapped_note("home", store.speakers("home")) is None


def test_a_schema_2_store_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    old_store(path, 2)
    with EnrollmentStore(path) as store:
        assert store.speakers("home")[0].mapped_from is None
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION) == "4"
    db.close()
