"""``fewshot export``: LiteRT models beside the Keras one, recorded, checked, and equal in their embeddings."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from fewshot.errors import CorruptModelError, IncompatibleModelError
from fewshot.model.extractor import Extractor
from fewshot.model.modeldir import former_ids, litert_name
from fewshot.train.export import describe, export_tflite
from synth import VOICES, write_wav


def speaker_tree(root, voice, seconds):
    """A speaker-per-folder tree of the synthetic voices, one file each."""
    for name in VOICES:
        (root / name).mkdir(parents=True)
        write_wav(root / name / "speech.wav", voice(name, seconds, seed=len(name)))
    return root


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory, voice):
    d = tmp_path_factory.mktemp("export") / "model"
    shutil.copytree(tiny_model_dir, d)
    train = speaker_tree(tmp_path_factory.mktemp("train"), voice, 8.0)
    return d, export_tflite(d, int8=True, dev=None, train=train)


@pytest.fixture
def copy(exported, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(exported[0], d)
    return d


def meta_of(d):
    return json.loads((d / "meta.json").read_text())


def cosines(A, B):
    return np.sum(A * B, axis=1)


def test_files_are_content_addressed_and_recorded(exported, tiny_model_dir):
    d, report = exported
    meta = meta_of(d)
    for precision in ("float", "int8"):
        entry = meta["litert"][precision]
        data = (d / entry["file"]).read_bytes()
        assert entry["file"] == litert_name(hashlib.sha256(data).hexdigest(), precision) == report[precision]["file"]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        assert entry["source_sha256"] == meta["sha256"]
    assert meta["litert"]["int8"]["bytes"] < meta["litert"]["float"]["bytes"]
    assert Extractor.load(d).model_id == Extractor.load(d, backend="keras").model_id == report["model_id"]
    assert report["model_id"] != Extractor.load(tiny_model_dir).model_id  # the id covers the LiteRT files
    assert Extractor.load(tiny_model_dir).model_id in former_ids(meta)  # groups of the Keras model move over
    assert "the parity check on real speech is skipped" in "\n".join(describe(report))


def test_litert_embeds_like_keras_at_any_length_and_batch(exported, voice):
    d, _ = exported
    lite, keras = Extractor.load(d), Extractor.load(d, backend="keras")
    assert (lite.backend.name, keras.backend.name) == ("litert", "keras")
    ys = [voice("ann", 0.4), voice("bob", 3.0), voice("cat", 5.0), voice("ann", 5.0, seed=3), voice("bob", 27.0)]
    assert cosines(lite.embed(ys), keras.embed(ys)).min() >= 0.9999
    seg_lite, seg_keras = lite.embed(ys, return_segments=True), keras.embed(ys, return_segments=True)
    assert cosines(np.concatenate(seg_lite), np.concatenate(seg_keras)).min() >= 0.9999
    int8 = Extractor.load(d, backend="litert-int8")
    assert int8.model_id == lite.model_id and int8.embed(ys).shape == (5, lite.dim)


def test_keras_attributes_are_refused_on_litert(exported):
    lite = Extractor.load(exported[0])
    with pytest.raises(AttributeError, match="backend='keras'"):
        lite.model.get_weights()
    with pytest.raises(IncompatibleModelError, match="cannot save"):
        lite.save(exported[0].parent / "elsewhere")


def test_damaged_litert_file_is_refused(copy):
    f = copy / meta_of(copy)["litert"]["float"]["file"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CorruptModelError, match="checksum"):
        Extractor.load(copy)
    assert Extractor.load(copy, backend="keras").backend.name == "keras"  # the Keras model is intact


def test_litert_file_of_another_keras_model_is_refused(copy):
    meta = meta_of(copy)
    meta["litert"]["float"]["source_sha256"] = "0" * 64
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptModelError, match="export it again"):
        Extractor.load(copy)


def test_saving_new_weights_drops_the_stale_exports(copy):
    ex = Extractor.load(copy, backend="keras")
    ex.model.set_weights([w * 1.01 for w in ex.model.get_weights()])
    ex.save(copy)
    assert "litert" not in meta_of(copy) and not list(copy.glob("*.tflite"))
    assert Extractor.load(copy).backend.name == "keras"
    with pytest.raises(IncompatibleModelError, match="fewshot export"):
        Extractor.load(copy, backend="litert")


def test_unknown_backend_is_refused(exported, monkeypatch):
    monkeypatch.setenv("FEWSHOT_BACKEND", "onnx")
    with pytest.raises(ValueError, match="backend must be one of"):
        Extractor.load(exported[0])


@pytest.fixture(scope="module")
def dev(tmp_path_factory, voice):
    return speaker_tree(tmp_path_factory.mktemp("dev"), voice, 60.0)  # 45 s of speech after the VAD: 15 s + 2 tests


def test_export_command_prints_parity_on_dev_speech(tiny_model_dir, tmp_path, dev, capsys):
    from fewshot.cli import main

    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    assert main(["export", str(d), "--format", "tflite", "--dev", str(dev)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {meta_of(d)['litert']['float']['file']} (float" in out
    assert "target cosine >= 0.9999: yes" in out
    parity = meta_of(d)["litert"]["float"]["parity"]
    assert parity["speakers"] == 3 and parity["cosine_min"] >= 0.9999 and parity["acc_all"] == parity["keras_acc_all"]


def test_release_writes_the_float_litert_model(tiny_model_dir, tmp_path, dev):
    from fewshot.train.release import release

    r = release(tiny_model_dir, dev=dev, dest=tmp_path / "released")
    meta = meta_of(tmp_path / "released")
    assert r["litert"]["file"] == meta["litert"]["float"]["file"] and "int8" not in meta["litert"]
    released = Extractor.load(tmp_path / "released")
    assert released.backend.name == "litert" and released.model_id == r["model_id"]
    assert released.meta["classifier"]["unknown_threshold"] == round(r["threshold"], 4)


def test_export_leaves_a_model_with_litert_files_alone(copy, tmp_path, capsys):
    """A model that has LiteRT files of its Keras model (a shipped one) is refused; --out exports into a copy."""
    from fewshot.cli import main

    def files(d):
        return {p.name: p.read_bytes() for p in d.iterdir()}

    before, nodev = files(copy), str(tmp_path / "no-dev")
    assert main(["export", str(copy), "--int8", "--dev", nodev]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {copy}: already has LiteRT models exported from its Keras model (")
        and "--out DIR exports into a copy of the model, --replace writes over them" in err
    ), err
    out = tmp_path / "elsewhere"
    assert main(["export", str(copy), "--out", str(out), "--dev", nodev]) == 0
    assert files(copy) == before  # the model itself is as it was
    entry = meta_of(out)["litert"]["float"]
    assert (out / entry["file"]).is_file() and Extractor.load(out).backend.name == "litert"
    assert main(["export", str(copy), "--out", str(out), "--dev", nodev]) == 2  # not into a folder that exists
    assert "elsewhere: already exists" in capsys.readouterr().err
