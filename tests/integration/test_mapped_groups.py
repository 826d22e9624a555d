"""Enroll with one model, identify with another: the group's voiceprints go through the shipped aligner, once."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fewshot.config import ExtractorConfig, FeatureConfig
from fewshot.identifier import SpeakerIdentifier
from fewshot.model.align import find_aligner
from fewshot.model.extractor import Extractor, default_model_dir, load_extractor
from fewshot.model.nn import build_cnn
from fewshot.train.previous import from_folder
from fewshot.train.release import add_aligners
from synth import VOICES, synth_voice, write_wav


def speaker_tree(root, seconds: float, seeds=(0,)):
    """A speaker-per-folder tree of the synthetic voices, one speaker per voice and seed."""
    for name, voice in VOICES.items():
        for seed in seeds:
            folder = root / f"{name}{seed}"
            folder.mkdir(parents=True)
            write_wav(folder / "a.wav", synth_voice(**voice, seconds=seconds, seed=seed))
    return root


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """An old and a new tiny model; the new one released with an aligner from the old one."""
    import keras

    root = tmp_path_factory.mktemp("models")
    dirs = []
    for k in range(2):
        keras.utils.set_random_seed(20 + k)
        ec = ExtractorConfig(channels=(4, 8), blocks=(1, 1), embedding_dim=16)
        dirs.append(
            Extractor(build_cnn(ec, n_mels=64), feature_config=FeatureConfig(), extractor_config=ec).save(
                root / f"m{k}"
            )
        )
    data = tmp_path_factory.mktemp("data")
    train = speaker_tree(data / "train", 12.0, seeds=(1, 2, 3))
    dev = speaker_tree(data / "dev", 60.0)
    results = add_aligners(dirs[1], [from_folder(dirs[0])], train=train, dev=dev, cache_dir=data / "cache")
    return dirs[0], dirs[1], results


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    return {n: write_wav(d / f"{n}.wav", synth_voice(**VOICES[n], seconds=16.0, seed=7)) for n in ("ann", "bob")}


@pytest.fixture
def fewshot(capsys):
    from fewshot.cli import main

    def run(*args, store):
        capsys.readouterr()
        code = main([*map(str, args), "--store", str(store)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_release_ships_a_small_checked_aligner_keyed_by_the_old_id(released):
    old, new, results = released
    (r,) = results
    old_id = load_extractor(old).model_id
    meta = json.loads((new / "meta.json").read_text())
    entry = meta["aligners"][old_id]
    assert entry == r["entry"] and old_id in entry["from_ids"] and entry["bytes"] <= 1_000_000
    assert (new / entry["file"]).is_file() and entry["shape"] in entry["candidates"]
    assert set(r["table"]) >= {"old model / old model", "old model, mapped / new model", "new model / new model"}
    assert find_aligner(load_extractor(new), old_id) is not None


def test_a_group_enrolled_with_the_old_model_is_identified_through_the_aligner(released, files, tmp_path, fewshot):
    old, new, _ = released
    store = tmp_path / "s.sqlite"
    for name, f in files.items():
        assert fewshot("enroll", "--group", "home", "--speaker", name, f, "--model", old, store=store)[0] == 0
    old_ex, new_ex = load_extractor(old), load_extractor(new)
    before = SpeakerIdentifier(old_ex, store=store).store.embeddings("home", extractor_id=old_ex.model_id)

    code, out, err = fewshot("identify", "--group", "home", files["ann"], "--model", new, store=store)
    assert code == 0 and out.startswith(f"{files['ann']}: "), err
    sid = SpeakerIdentifier(new_ex, store=store)
    mapped_id, revision = sid.store.group_revision("home")
    assert mapped_id == new_ex.model_id
    X, y = sid.store.embeddings("home", extractor_id=new_ex.model_id)
    assert list(y) == list(before[1])
    np.testing.assert_allclose(X, find_aligner(new_ex, old_ex.model_id).transform(before[0]), atol=1e-6)

    assert fewshot("identify", "--group", "home", files["bob"], "--model", new, store=store)[0] == 0
    assert sid.store.group_revision("home") == (mapped_id, revision)  # mapped once, then plain
    code, out, _ = fewshot("groups", "show", "home", store=store)
    assert code == 0 and f"mapped from extractor {old_ex.model_id}" in out and "2 of 2 people" in out
    assert "re-enroll" in out
    code, _, err = fewshot("identify", "--group", "home", files["ann"], "--model", old, store=store)
    assert code == 2 and "re-enroll" in err  # the old model cannot read mapped voiceprints


def test_enrolling_into_a_group_of_the_old_model_maps_it_first(released, files, tmp_path, fewshot):
    old, new, _ = released
    store = tmp_path / "s.sqlite"
    assert fewshot("enroll", "--group", "home", "--speaker", "ann", files["ann"], "--model", old, store=store)[0] == 0
    code, out, err = fewshot("enroll", "--group", "home", "--speaker", "bob", files["bob"], "--model", new, store=store)
    assert code == 0, err
    code, out, _ = fewshot("groups", "show", "home", store=store)
    assert f"extractor {load_extractor(new).model_id}" in out and "1 of 2 people" in out  # ann mapped, bob enrolled


def test_kept_speech_of_a_mapped_group_is_re_embedded_by_upgrade(released, files, tmp_path, fewshot):
    old, new, _ = released
    store = tmp_path / "s.sqlite"
    for name, f in files.items():
        assert (
            fewshot("enroll", "--group", "home", "--speaker", name, f, "--keep-audio", "--model", old, store=store)[0]
            == 0
        )
    assert fewshot("identify", "--group", "home", files["ann"], "--model", new, store=store)[0] == 0
    code, out, _ = fewshot("groups", "show", "home", store=store)
    assert "fewshot groups upgrade home" in out
    code, out, err = fewshot("groups", "upgrade", "--model", new, store=store)
    assert code == 0 and "upgraded group 'home'" in out, err
    code, out, _ = fewshot("groups", "show", "home", store=store)
    assert "mapped" not in out


def test_a_damaged_aligner_is_refused(released, files, tmp_path, fewshot):
    old, new, _ = released
    copy = tmp_path / "new"
    shutil.copytree(new, copy)
    meta = json.loads((copy / "meta.json").read_text())
    (entry,) = meta["aligners"].values()
    (copy / entry["file"]).write_bytes(b"\0" * entry["bytes"])
    store = tmp_path / "s.sqlite"
    assert fewshot("enroll", "--group", "home", "--speaker", "ann", files["ann"], "--model", old, store=store)[0] == 0
    code, _, err = fewshot("identify", "--group", "home", files["ann"], "--model", copy, store=store)
    assert code == 2 and "checksum" in err


REFUSE_TENSORFLOW = """
import sys

class Refuse:
    asked = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            self.asked.append(name)
            raise ImportError(f"No module named {name!r} (refused by the test)")
        return None

finder = Refuse()
sys.meta_path.insert(0, finder)
from fewshot.cli import main
rc = main(sys.argv[1:])
sys.exit(3 if finder.asked else rc)
"""


@pytest.mark.skipif(not (default_model_dir() / "meta.json").is_file(), reason="no shipped model")
def test_the_shipped_model_maps_a_group_of_the_first_shipped_model_without_tensorflow(files, tmp_path, rng):
    shipped = json.loads((default_model_dir() / "meta.json").read_text()).get("aligners", {})
    first = "f1b78bb6caf30087"  # the id stores made with the first shipped model (d34d64f) hold
    if not any(first in e["from_ids"] for e in shipped.values()):
        pytest.skip("the shipped model has no aligner from the first shipped one")
    store = SpeakerIdentifier(load_extractor(), store=tmp_path / "s.sqlite").store
    for k, name in enumerate(("ann", "bob", "cat")):
        E = rng.standard_normal((9, 192)).astype(np.float32) + 3 * np.eye(192, dtype=np.float32)[k]
        store.enroll("home", name, E / np.linalg.norm(E, axis=1, keepdims=True), extractor_id=first, sources=[])
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            REFUSE_TENSORFLOW,
            "identify",
            "--group",
            "home",
            str(files["ann"]),
            "--store",
            str(tmp_path / "s.sqlite"),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-c", REFUSE_TENSORFLOW, "groups", "show", "home", "--store", str(tmp_path / "s.sqlite")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and f"mapped from extractor {first}" in r.stdout, r.stderr


REPO = default_model_dir().parents[2]


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_the_shipped_extractors_come_back_from_the_git_history(tmp_path):
    from fewshot.model.modeldir import read_model_meta
    from fewshot.train.previous import previous_models

    current = json.loads((default_model_dir() / "meta.json").read_text())["sha256"]
    found = previous_models(REPO, tmp_path, exclude_sha256={current})
    first = found[0]
    assert first.commit.startswith("d34d64f") and first.ids[1] == "f1b78bb6caf30087"
    assert read_model_meta(first.path)[0]["model_id"] == first.model_id == first.path.name
    assert current not in {p.sha256 for p in found}
    assert [p.path for p in previous_models(REPO, tmp_path, exclude_sha256={current})] == [p.path for p in found]
    # the default's former name: its folder's versions come back, and its removal is none of them
    former = previous_models(REPO, tmp_path, shipped="fewshot/models/rooms", exclude_sha256={current})
    assert former and not {p.sha256 for p in former} & ({current} | {p.sha256 for p in found})
