"""Enrollment that checks itself: one voice throughout, or refused unless forced."""

import shutil

import numpy as np
import pytest

from fewshot.errors import AudioError
from fewshot.groups.openset import Calibration
from fewshot.groups.selfcheck import split_coherence, threshold_for
from fewshot.identifier import SpeakerIdentifier
from fewshot.model.extractor import load_extractor
from fewshot.model.modeldir import read_model_meta, write_model_meta
from fewshot.persistence import file_digest


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_a_stretch_of_another_voice_gives_a_low_coherence(rng):
    ann, bob = unit(rng.standard_normal(32)), unit(rng.standard_normal(32))
    one = unit(ann + 0.05 * rng.standard_normal((20, 32)))
    two = one.copy()
    two[8:12] = unit(bob + 0.05 * rng.standard_normal((4, 32)))  # 20% of the windows, in one stretch
    assert split_coherence(one) > 0.8 > 0.5 > split_coherence(two)
    assert split_coherence(one[:3]) == 1.0  # too short to judge


def test_thresholds_follow_seconds_of_speech():
    table = [(15.0, 0.4), (35.0, 0.3)]
    assert threshold_for(15.0, table) == pytest.approx(0.4) and threshold_for(25.0, table) == pytest.approx(0.35)
    assert threshold_for(60.0, table) == pytest.approx(0.3) and threshold_for(5.0, table) == pytest.approx(0.4)


@pytest.fixture
def checking_model(tiny_model_dir, tmp_path):
    """The tiny model with an enrollment check no speech can pass (coherence is at most 1)."""
    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    cohort = unit(np.random.default_rng(0).standard_normal((10, 16))).astype(np.float32)
    np.save(d / "cohort-t.npy", cohort)
    cal = Calibration(
        cohort=cohort,
        top_k=3,
        group_sizes=np.array([1.0]),
        false_accept_rates=np.array([0.01, 0.2]),
        thresholds=np.zeros((1, 2)),
        enrollment_check=np.array([[15.0, 1.01]]),
    )
    meta = read_model_meta(d)[0]
    meta["open_set"] = cal.to_meta("cohort-t.npy", file_digest(d / "cohort-t.npy"))
    write_model_meta(d, meta)
    return d


def test_incoherent_enrollment_is_refused_unless_forced(checking_model, tmp_path, voice):
    sid = SpeakerIdentifier(load_extractor(checking_model), store=tmp_path / "s.sqlite")
    with pytest.raises(AudioError, match="does not sound like one person throughout.*--force"):
        sid.enroll("home", "ann", voice("ann", 16.0, seed=1))
    assert sid.store.groups() == []  # nothing stored
    res = sid.enroll("home", "ann", voice("ann", 16.0, seed=1), force=True)
    assert any("does not sound like one person" in w for w in res.warnings)
    assert [m.name for m in sid.store.speakers("home")] == ["ann"]
