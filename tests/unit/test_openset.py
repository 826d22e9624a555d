"""The unknown decision of a calibrated model: AS-norm scores against a threshold for the group's size."""

import json
import shutil

import numpy as np
import pytest

from fewshot.config import ClassifierConfig
from fewshot.errors import AudioError, CorruptModelError, IncompatibleModelError
from fewshot.groups.openset import Calibration, load_calibration
from fewshot.identifier import SpeakerIdentifier
from fewshot.model.extractor import load_extractor
from fewshot.model.modeldir import read_model_meta, write_model_meta
from fewshot.persistence import file_digest


def table(cohort, thresholds=((2.0, 1.0, 0.0), (3.0, 2.0, 1.0), (4.0, 3.0, 2.0))):
    return Calibration(
        cohort=cohort,
        top_k=3,
        group_sizes=np.array([1.0, 3.0, 10.0]),
        false_accept_rates=np.array([0.01, 0.05, 0.2]),
        thresholds=np.array(thresholds),
    )


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

    expected = [
        0.5 * ((si - stats(x)[0]) / stats(x)[1] + (si - stats(c)[0]) / stats(c)[1]) for si, x, c in zip(s, X, C)
    ]
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


def model(terms=("log_group_size", "log_seconds", "cohort_mean")):
    from fewshot.groups.openset import ThresholdModel

    # rates 0.01 and 0.05: a higher bar for larger groups, shorter speech and speech nearer the cohort
    coef = np.array([[3.0, 0.5, -1.0, 2.0], [2.0, 0.5, -1.0, 2.0]])[:, : 1 + len(terms)]
    return ThresholdModel(tuple(terms), np.array([0.01, 0.05]), coef, (1.0, 20.0), (2.0, 5.0), 0.3)


def test_threshold_model_is_smooth_in_size_seconds_and_quality_and_clamped_to_its_range():
    m = model()
    t = lambda n, s, q=None, r=0.05: float(m.thresholds(n, r, np.array([s]), None if q is None else np.array([q]))[0])
    assert t(1, 5.0, 0.3) == pytest.approx(2.0 - np.log(5.0) + 0.6)
    assert t(1, 5.0) == t(1, 5.0, 0.3)  # no quality measured: the reference one
    assert t(10, 5.0) > t(3, 5.0) > t(1, 5.0) and t(40, 5.0) == t(20, 5.0)
    assert t(3, 2.0) > t(3, 3.0) > t(3, 5.0) and t(3, 1.0) == t(3, 2.0) and t(3, 60.0) == t(3, 5.0)
    assert t(3, 5.0, 0.4) > t(3, 5.0, 0.2)
    assert t(3, 5.0, r=0.01) > t(3, 5.0, r=0.02) > t(3, 5.0, r=0.05)
    with pytest.raises(ValueError, match="outside this model's calibrated range"):
        Calibration(
            cohort=np.eye(3),
            top_k=1,
            group_sizes=np.array([1.0]),
            false_accept_rates=np.array([0.01, 0.2]),
            thresholds=np.zeros((1, 2)),
            model=m,
        ).threshold(3, 0.1)  # the model's rates count, not the table's


def test_identify_and_verify_use_the_threshold_model(calibrated_dir, tmp_path, voice):
    meta = read_model_meta(calibrated_dir)[0]
    meta["open_set"]["threshold_model"] = model().to_meta()
    write_model_meta(calibrated_dir, meta)
    ex = load_extractor(calibrated_dir)
    sid = SpeakerIdentifier(ex, store=tmp_path / "s.sqlite")
    assert sid.calibration.model.to_meta() == model().to_meta()
    for name in ("ann", "bob"):
        sid.enroll("home", name, voice(name, 16.0, seed=1))
    clf = sid.classifier("home")
    short, long = voice("ann", 2.5, seed=7), voice("ann", 6.0, seed=7)
    X = ex.embed([short, long])
    quality = sid.calibration.cohort_stats(X)[0]
    expected = model().thresholds(2, 0.05, np.array([2.5, 6.0]), quality)
    np.testing.assert_allclose(clf.decision_thresholds(X, np.array([2.5, 6.0])), expected, rtol=0.05)
    nearest, _, decision = clf.open_scores(X)
    labels, _ = clf.predict_open(X, seconds=np.array([2.5, 6.0]))
    assert list(labels) == [n if d >= t else "unknown" for n, d, t in zip(nearest, decision, expected)]
    from fewshot.audio.vad import speech

    v, y = sid.verify("home", "ann", long), speech(long).samples  # prepared as identify prepares it
    x = ex.embed([y])
    from fewshot.groups.verify import claim_scores

    claim, bar = claim_scores(clf, x, "ann", seconds=np.array([len(y) / 16000]))
    assert (v.score, v.threshold) == (pytest.approx(claim[0], abs=1e-4), pytest.approx(bar[0], abs=1e-4))
    assert bar[0] == pytest.approx(
        model().thresholds(1, 0.05, np.array([len(y) / 16000]), sid.calibration.cohort_stats(x)[0])[0]
    )  # a group of one's
    assert v.accepted == (v.score >= v.threshold and clf.predict(x)[0] == "ann")


@pytest.mark.parametrize(
    "damage",
    [
        {"terms": ["log_group_size", "age"]},
        {"coefficients": [[1.0]]},
        {"false_accept_rates": [0.05, 0.01]},
        {"seconds": [5.0, 2.0]},
    ],
)
def test_a_bad_threshold_model_is_refused(calibrated_dir, damage):
    meta = read_model_meta(calibrated_dir)[0]
    meta["open_set"]["threshold_model"] = {**model().to_meta(), **damage}
    write_model_meta(calibrated_dir, meta)
    with pytest.raises(CorruptModelError, match="bad open_set block"):
        load_calibration(load_extractor(calibrated_dir))


def test_verify_many_reads_in_batches_with_the_same_answers(calibrated_dir, tmp_path, voice, monkeypatch):
    """``verify_many`` reads at most ``IDENTIFY_BATCH`` files at a time, and batching changes no answer."""
    import soundfile as sf

    import fewshot.identifier as identifier

    sid = SpeakerIdentifier(load_extractor(calibrated_dir), store=tmp_path / "s.sqlite")
    for name in ("ann", "bob"):
        sid.enroll("home", name, voice(name, 16.0, seed=1))
    files = []
    for k, name in enumerate(["ann", "bob", "ann", "bob", "ann"]):
        files.append(tmp_path / f"{k}.wav")
        sf.write(files[-1], voice(name, 3.0, seed=10 + k), 16000)
    files.insert(2, tmp_path / "missing.wav")
    whole = sid.verify_many("home", "ann", files)
    seen = []
    read_heads = identifier.read_heads
    monkeypatch.setattr(identifier, "IDENTIFY_BATCH", 2)
    monkeypatch.setattr(identifier, "read_heads", lambda srcs, **kw: seen.append(len(srcs)) or read_heads(srcs, **kw))
    batched = sid.verify_many("home", "ann", files)
    assert seen == [2, 2, 2]
    assert [type(v) for v in batched] == [type(v) for v in whole]
    assert isinstance(batched[2], AudioError)
    for a, b in zip(whole, batched):
        if not isinstance(a, AudioError):
            assert a.accepted == b.accepted
            assert (a.score, a.threshold) == (pytest.approx(b.score, abs=1e-4), pytest.approx(b.threshold, abs=1e-4))
