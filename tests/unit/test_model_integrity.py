"""A model directory is trusted only as far as its files agree: tampering is refused in one line."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fewshot.errors import CorruptModelError, FewshotError
from fewshot.model.extractor import Extractor, load_extractor


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


@pytest.mark.parametrize(
    "change", [lambda m: m.pop("sha256"), lambda m: m.pop("feature_config"), lambda m: m.update(versions=[1])]
)
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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fewshot.cli",
            "identify",
            "--group",
            "g",
            "--model",
            str(model),
            "--store",
            str(tmp_path / "s.sqlite"),
            str(wav),
        ],
        capture_output=True,
        text=True,
    )
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


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory):
    """The shipped model's meta.json with its LiteRT and cohort files (the Keras file is not needed)."""
    from fewshot.model.extractor import default_model_dir

    src, d = default_model_dir(), tmp_path_factory.mktemp("shipped") / "m"
    d.mkdir()
    for f in src.iterdir():
        if f.suffix != ".keras":
            shutil.copyfile(f, d / f.name)
    return d


def test_a_changed_litert_file_with_its_checksum_updated_gets_another_id(shipped_copy, tmp_path):
    import hashlib

    shipped = Extractor.load(shipped_copy, backend="litert").model_id
    d = tmp_path / "forged"
    shutil.copytree(shipped_copy, d)
    meta = json.loads((d / "meta.json").read_text())
    tfl = d / meta["litert"]["float"]["file"]
    tfl.write_bytes(tfl.read_bytes() + b"\0" * 64)  # other bytes: here padding, as well sign-flipped weights
    edit_meta(d, lambda m: m["litert"]["float"].update(sha256=hashlib.sha256(tfl.read_bytes()).hexdigest()))
    with pytest.raises(CorruptModelError, match="model_id"):  # the id it claims is not the id of its files
        Extractor.load(d, backend="litert")
    edit_meta(d, lambda m: m.pop("model_file"))  # without a Keras file named, the id is only derived
    assert Extractor.load(d, backend="litert").model_id != shipped


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda m: m["open_set"].update(thresholds=[[-100.0] * 6] * 9), "open_set"),
        (lambda m: m["open_set"].update(top_k=True), "top_k"),
        (lambda m: m["open_set"].update(group_sizes=list(range(1, 100000))), "group_sizes"),
        (lambda m: m["classifier"].update(C=True), "C must be a number"),
        (lambda m: m["classifier"].update(gamma=1e308), "gamma"),
        (lambda m: m["classifier"].update(multi_condition="yes"), "multi_condition"),
        (lambda m: m["feature_config"].update(hop_ms=0), "hop_ms"),
        (lambda m: m["feature_config"].update(sr="16000"), "sr must be a whole number"),
        (lambda m: m["feature_config"].update(segment_s=1e7), "segment_s"),
        (lambda m: m["extractor_config"].update(channels=[16, 32, 64, 1e9]), "channels"),
        (lambda m: m["litert"]["float"].update(file="../../etc/passwd"), "litert"),
        (lambda m: m.update(padding="x" * (5 << 20)), "over"),
    ],
)
def test_meta_json_is_checked_before_use(shipped_copy, tmp_path, change, reason):
    d = tmp_path / "m"
    shutil.copytree(shipped_copy, d)
    edit_meta(d, change)
    with pytest.raises(CorruptModelError, match=reason) as err:
        Extractor.load(d, backend="litert")
    assert "meta.json" in str(err.value)
