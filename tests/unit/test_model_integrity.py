"""A model directory is trusted only as far as its files agree: tampering is refused in one line."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fewshot.errors import CorruptModelError, FewshotError
from fewshot.extractor import Extractor, load_extractor


@pytest.fixture
def model(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    return d


def edit_meta(d, change):
    meta = json.loads((d / "meta.json").read_text())
    change(meta)
    (d / "meta.json").write_text(json.dumps(meta))


def test_id_is_derived_from_weights_and_configuration(model):
    ex = Extractor.load(model)
    first = ex.model_id
    assert first == json.loads((model / "meta.json").read_text())["model_id"]
    ex.feature_config = type(ex.feature_config)(top_db=20.0)
    other = Extractor.load(ex.save(model.parent / "other_vad"))
    assert other.model_id != first  # the same weights with another VAD setting: another id


def test_perturbed_weights_under_the_old_id_are_refused(model, tmp_path):
    ex = Extractor.load(model)
    ex.model.set_weights([w + 0.01 for w in ex.model.get_weights()])
    forged = ex.save(tmp_path / "forged")
    f_meta = json.loads((forged / "meta.json").read_text())
    shutil.copyfile(forged / f_meta["model_file"], model / json.loads((model / "meta.json").read_text())["model_file"])
    edit_meta(model, lambda m: m.update(sha256=f_meta["sha256"]))  # checksum updated, model_id kept
    with pytest.raises(CorruptModelError, match="model_id"):
        Extractor.load(model)


def test_edited_feature_config_or_threshold_is_refused(model):
    edit_meta(model, lambda m: m["feature_config"].update(top_db=5.0))
    with pytest.raises(CorruptModelError, match="model_id"):
        Extractor.load(model)


def test_nonsense_threshold_is_refused(model):
    edit_meta(model, lambda m: m.update(classifier={"C": 10.0, "gamma": 1.0, "unknown_threshold": 7.0}))
    with pytest.raises(CorruptModelError, match="classifier"):
        Extractor.load(model)


@pytest.mark.parametrize("change", [lambda m: m.pop("sha256"), lambda m: m.pop("feature_config"),
                                    lambda m: m.update(versions=[1])])
def test_incomplete_metadata_is_an_error_not_a_traceback(model, change):
    edit_meta(model, change)
    with pytest.raises(CorruptModelError, match="meta"):
        Extractor.load(model)


def test_metadata_that_is_a_list_is_refused(model):
    (model / "meta.json").write_text("[1, 2, 3]")
    with pytest.raises(CorruptModelError, match="not an object"):
        Extractor.load(model)


def test_nan_output_is_an_error(model, voice):
    ex = Extractor.load(model)
    ex.model.set_weights([np.full_like(w, np.nan) for w in ex.model.get_weights()])
    with pytest.raises(CorruptModelError, match="NaN"):
        ex.embed([voice("ann", 3.0)])


def test_cli_answers_one_line(model, tmp_path, voice):
    from synth import write_wav

    (model / "meta.json").write_text("[]")
    wav = write_wav(tmp_path / "a.wav", voice("ann", 3.0))
    proc = subprocess.run([sys.executable, "-m", "fewshot.cli", "identify", "--group", "g", "--model", str(model),
                           "--store", str(tmp_path / "s.sqlite"), str(wav)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "meta.json" in lines[0], proc.stderr


def test_every_model_error_is_a_fewshot_error():
    assert issubclass(CorruptModelError, FewshotError)
    assert load_extractor().model_id  # the shipped model loads under the derived id


def test_shipped_models_load_by_name_and_former_name(tmp_path, monkeypatch):
    from fewshot.config import ClassifierConfig

    monkeypatch.chdir(tmp_path)  # no folder named "rooms" or "default" here
    rooms, default, named = load_extractor("rooms"), load_extractor(), load_extractor("default")
    assert rooms.model_id == default.model_id == named.model_id  # "rooms" is the default's former name
    cc = ClassifierConfig.of_model(default)
    assert 0 < cc.unknown_threshold < 1 and "EER" in cc.threshold_from and cc.multi_condition
    with pytest.raises(FewshotError):
        load_extractor("no-such-model")
    (tmp_path / "rooms").mkdir()  # a local folder of that name wins, and is not a model
    with pytest.raises(FewshotError):
        load_extractor("rooms")
