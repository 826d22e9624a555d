"""The unknown decision of a calibrated model: AS-norm scores against a threshold for the group's size."""

import json
import shutil

import numpy as np
import pytest

from fewshot.config import ClassifierConfig
from fewshot.errors import CorruptModelError, IncompatibleModelError
from fewshot.extractor import load_extractor
from fewshot.identifier import SpeakerIdentifier
from fewshot.modeldir import read_model_meta, write_model_meta
from fewshot.openset import Calibration, load_calibration
from fewshot.persistence import file_digest


def table(cohort, thresholds=((2.0, 1.0, 0.0), (3.0, 2.0, 1.0), (4.0, 3.0, 2.0))):
    return Calibration(cohort=cohort, top_k=3, group_sizes=np.array([1.0, 3.0, 10.0]),
                       false_accept_rates=np.array([0.01, 0.05, 0.2]), thresholds=np.array(thresholds))


def unit(rng, n, d=16):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_thresholds_follow_group_size_and_rate(rng):
    cal = table(unit(rng, 10))
    assert cal.threshold(3, 0.05) == pytest.approx(2.0)
    assert 1.0 < cal.threshold(2, 0.05) < 2.0  # between sizes: interpolated in log size
    assert cal.threshold(40, 0.05) == cal.threshold(10, 0.05) == pytest.approx(3.0)  # beyond the table: its last size
    assert cal.threshold(3, 0.01) > cal.threshold(3, 0.02) > cal.threshold(3, 0.05)  # stricter is higher
    with pytest.raises(ValueError, match="outside this model's calibrated range"):
        cal.threshold(3, 0.5)


def test_as_norm_is_the_mean_of_both_sides_z_scores(rng):
    cohort, X, C = unit(rng, 20), unit(rng, 4), unit(rng, 4)
    cal = table(cohort)
    s = np.sum(X * C, axis=1)

    def stats(v):
        top = np.sort(cohort @ v)[-3:]
        return top.mean(), top.std()

    expected = [0.5 * ((si - stats(x)[0]) / stats(x)[1] + (si - stats(c)[0]) / stats(c)[1]) for si, x, c in zip(s, X, C)]
    np.testing.assert_allclose(cal.normalize(s, X, C), expected)


@pytest.fixture
def calibrated_dir(tiny_model_dir, tmp_path, voice):
    """The tiny model with a cohort (random unit vectors) and a threshold table."""
    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    cohort = unit(np.random.default_rng(0), 30).astype(np.float32)
    np.save(d / "cohort-test.npy", cohort)
    meta = read_model_meta(d)[0]
    meta["open_set"] = table(cohort).to_meta("cohort-test.npy", file_digest(d / "cohort-test.npy"))
    meta["classifier"] = {**ClassifierConfig().to_dict(), "false_accept_rate": 0.05}
    write_model_meta(d, meta)
    return d


def test_identify_decides_unknown_by_the_threshold_of_the_groups_size(calibrated_dir, tmp_path, voice):
    ex = load_extractor(calibrated_dir)
    sid = SpeakerIdentifier(ex, store=tmp_path / "s.sqlite")
    assert sid.classifier_config.false_accept_rate == 0.05
    for name in ("ann", "bob", "cat"):
        sid.enroll("home", name, voice(name, 16.0, seed=1))
    clf = sid.classifier("home")
    assert clf.decision_threshold == pytest.approx(sid.calibration.threshold(3, 0.05)) == pytest.approx(2.0)
    nearest, cosine, decision = clf.open_scores(ex.embed([voice("ann", 5.0, seed=7)]))
    assert decision[0] != cosine[0]  # the decision is on the normalised score
    p = sid.identify("home", voice("ann", 5.0, seed=7))
    assert p.label == (nearest[0] if decision[0] >= 2.0 else "unknown")
    strict = SpeakerIdentifier(ex, store=tmp_path / "s.sqlite", false_accept_rate=0.01)
    assert strict.classifier("home").decision_threshold == pytest.approx(3.0)


def test_a_model_without_calibration_keeps_its_cosine_threshold(tiny_model_dir, tmp_path):
    ex = load_extractor(tiny_model_dir)
    assert load_calibration(ex) is None
    with pytest.raises(IncompatibleModelError, match="no open-set calibration"):
        SpeakerIdentifier(ex, store=tmp_path / "s.sqlite", false_accept_rate=0.01)


@pytest.mark.parametrize("damage", ["altered", "outside", "missing"])
def test_a_damaged_cohort_is_refused(calibrated_dir, damage):
    meta_path = calibrated_dir / "meta.json"
    if damage == "altered":
        np.save(calibrated_dir / "cohort-test.npy", np.zeros((30, 16), np.float32))
    elif damage == "outside":
        meta = json.loads(meta_path.read_text())
        meta["open_set"]["cohort_file"] = "../cohort-test.npy"
        meta_path.write_text(json.dumps(meta))
    else:
        (calibrated_dir / "cohort-test.npy").unlink()
    with pytest.raises(CorruptModelError):
        load_calibration(load_extractor(calibrated_dir))
