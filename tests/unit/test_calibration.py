"""The calibration's self-check scores and threshold model, on a tiny model and synthetic voices."""

from types import SimpleNamespace

import numpy as np
import pytest

from fewshot.groups.selfcheck import HOP_S, coherence
from fewshot.model.extractor import load_extractor
from fewshot.persistence import atomic_save_npz, read_npz_cache
from fewshot.train.calibrate import enrolled_in_room
from fewshot.train.calibration import (
    Trials,
    condition_thresholds,
    fit_threshold_model,
    quantile_regression,
    trial_thresholds,
)
from fewshot.train.enrollment_check import _mix_plan, enrollment_check_scores
from fewshot.train.population import EMBEDDED, ROOM, PopulationSpeaker, embed_population


def test_mixed_enrollments_score_as_the_mixed_recording_would(tiny_model_dir, voice):
    ex = load_extractor(tiny_model_dir)
    speakers = [
        PopulationSpeaker(name, "so", "dev", {T: y[: int(T * 16000)] for T in (15.0, 35.0)})
        for name, y in (("ann", voice("ann", 36.0, seed=1)), ("bob", voice("bob", 36.0, seed=2)))
    ]
    scores = enrollment_check_scores(ex, speakers, conditions=("clean",), seed=5)
    genuine = scores.subset(~scores.mixed)
    assert genuine.coherence[(genuine.speaker == 0) & (genuine.seconds == 15.0)][0] == pytest.approx(
        coherence(ex, speakers[0].enroll[15.0]), abs=1e-5
    )
    h = int(HOP_S * 16000)
    slots = {15.0: 20, 35.0: 46}
    for (i, j, T, stretches), got in zip(
        _mix_plan(speakers, slots=slots, share=0.2, seed=5), scores.coherence[scores.mixed]
    ):
        y = speakers[i].enroll[T][: slots[T] * h].copy()
        for a, b, m in stretches:  # the recording itself: whole hops of the other voice put in
            y[a * h : (a + m) * h] = speakers[j].enroll[35.0][b * h : (b + m) * h]
        assert got == pytest.approx(coherence(ex, y), abs=1e-4)
        assert sum(m for _, _, m in stretches) == round(0.2 * slots[T]) // len(stretches) * len(stretches)


def test_quantile_regression_leaves_the_asked_share_above(rng):
    A = np.c_[np.ones(5000), rng.normal(size=(5000, 2))]
    y = A @ [1.0, 2.0, -1.0] + rng.standard_t(4, size=5000) * (1 + 0.5 * np.abs(A[:, 1]))
    for q in (0.8, 0.95, 0.99):
        assert np.mean(y > A @ quantile_regression(A, y, q)) == pytest.approx(1 - q, abs=0.004)


def _outsider_trials(rng, n=40000, shift=1.5):
    """Outsiders' scores that grow with log group size, in two conditions, the second ``shift`` lower."""
    N = rng.choice([1, 2, 3, 5, 10, 20], n)
    condition = rng.integers(0, 2, n)
    seconds = rng.choice([2.0, 5.0], n)
    score = 0.6 * np.log(N) - shift * condition + rng.normal(size=n)
    ids, no = np.zeros(n, int), np.zeros(n, bool)
    return Trials(N, ids, ids, condition, seconds, no, no, score, np.zeros(n))


def test_thresholds_per_condition_hold_the_rate_where_one_model_cannot(rng):
    fit, test = _outsider_trials(rng), _outsider_trials(rng)
    pooled = test.score >= trial_thresholds(fit_threshold_model(fit), test, 0.05)
    known = test.score >= condition_thresholds(fit, test, 0.05)
    for c in (0, 1):
        assert np.mean(known[test.condition == c]) == pytest.approx(0.05, abs=0.01)
    assert np.mean(pooled[test.condition == 0]) > 0.07
    assert np.mean(pooled[test.condition == 1]) < 0.03


def test_population_is_also_enrolled_in_the_room_and_cached(tiny_model_dir, voice, tmp_path):
    ex = load_extractor(tiny_model_dir)
    speakers = []
    for k, name in enumerate(("ann", "bob")):
        y = voice(name, 46.0, seed=k)
        enroll = {T: y[: int(T * 16000)] for T in (15.0, 35.0)}
        tests = [y[int(s * 16000) : int((s + 5) * 16000)] for s in (35.0, 40.0)]
        speakers.append(PopulationSpeaker(name, "so", "dev", enroll, tests))
    pop = embed_population(ex, speakers, cache_dir=tmp_path, conditions=("clean", ROOM))
    again = embed_population(ex, speakers, cache_dir=tmp_path, conditions=("clean", ROOM))
    room = pop.enrolled_in_room()
    for i in range(2):
        assert room.enroll[i].shape[1] == pop.enroll[i].shape[1] and len(room.copies[i])
        assert not np.allclose(room.enroll[i].mean(axis=0), pop.enroll[i].mean(axis=0), atol=1e-3)
        np.testing.assert_array_equal(again.room_enroll[i], pop.room_enroll[i])
    np.testing.assert_array_equal(room.tests, pop.tests)


def test_enrolled_in_room_counts_the_room_pieces_at_each_rate(rng):
    n = 20000
    N, condition = rng.choice([1, 3, 10], n), rng.integers(0, 2, n)
    member = rng.random(n) < 0.3
    score = rng.normal(size=n) + 2.5 * member
    ids = np.zeros(n, int)
    trials = Trials(N, ids, ids, condition, rng.choice([2.0, 5.0], n), member, member, score, np.zeros(n))
    model = fit_threshold_model(trials.subset(condition == 0))
    pop = SimpleNamespace(conditions=("clean", ROOM))
    got = enrolled_in_room(trials, model, pop, rates=(0.05, 0.01))
    room = (condition == 1) & (trials.seconds > 3.5)
    for rate in (0.05, 0.01):
        accepted = score >= trial_thresholds(model, trials, rate)
        assert got[rate]["false_accept_rate"] == pytest.approx(np.mean(accepted[room & ~member]))
        assert got[rate]["members_rejected_10"] == pytest.approx(np.mean(~accepted[room & member & (N == 10)]))
    assert got[0.05]["false_accept_rate"] == pytest.approx(0.05, abs=0.015)
    assert got[0.01]["false_accept_rate"] < got[0.05]["false_accept_rate"]
    assert got[0.01]["members_rejected_10"] > got[0.05]["members_rejected_10"]


def test_a_spoiled_embedding_cache_is_embedded_again(tiny_model_dir, voice, tmp_path):
    ex = load_extractor(tiny_model_dir)
    y = voice("ann", 46.0, seed=3)
    speakers = [
        PopulationSpeaker(
            "ann", "so", "dev", {T: y[: int(T * 16000)] for T in (15.0, 35.0)}, [y[35 * 16000 : 40 * 16000]] * 2
        )
    ]
    first = embed_population(ex, speakers, cache_dir=tmp_path, conditions=("clean",), copies=False)
    (cached,) = (tmp_path / "embeddings").rglob("ann.npz")
    for spoiled in (b"not a zip", cached.read_bytes()[:100]):
        cached.write_bytes(spoiled)
        again = embed_population(ex, speakers, cache_dir=tmp_path, conditions=("clean",), copies=False)
        np.testing.assert_allclose(again.tests, first.tests, atol=1e-6)
        np.testing.assert_allclose(again.enroll[0], first.enroll[0], atol=1e-6)
        assert read_npz_cache(cached, keys=EMBEDDED) is not None  # written over


def test_read_npz_cache_misses_on_what_it_cannot_use(tmp_path):
    path = tmp_path / "c.npz"
    assert read_npz_cache(path) is None
    atomic_save_npz(path, a=np.arange(3))
    np.testing.assert_array_equal(read_npz_cache(path, keys=("a",))["a"], np.arange(3))
    assert read_npz_cache(path, keys=("a", "b")) is None
    np.savez(path, o=np.array([{"x": 1}], dtype=object))
    assert read_npz_cache(path) is None
