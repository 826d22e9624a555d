"""The shipped decisions per condition and corpus (``fewshot evaluate --conditions``), on made-up embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot.audio.features import l2_normalize
from fewshot.config import ClassifierConfig
from fewshot.eval.benchmark import open_set_by_size
from fewshot.eval.decisions import corpus_speakers, measure_decisions, worst_cell
from fewshot.eval.protocol import EmbeddedSpeakers, compute_eer, verification_scores

DIM = 24


def speakers(rng, n_so=12, n_ls=4):
    """``n_so`` so-* and ``n_ls`` ls-* speakers: 6 enrollment segments and 5 test pieces each around a centre."""
    names = [f"so-{i:04d}" for i in range(n_so)] + [f"ls-{i}" for i in range(n_ls)]
    centres = l2_normalize(rng.standard_normal((len(names), DIM)))
    enroll = [l2_normalize(c + 0.1 * rng.standard_normal((6, DIM))) for c in centres]  # unit, as embeddings are
    clean = [l2_normalize(c + 0.1 * rng.standard_normal((5, DIM))) for c in centres]
    noise = [
        l2_normalize(rng.standard_normal((5, DIM))) for _ in centres
    ]  # a condition that leaves nothing of the voice
    return EmbeddedSpeakers(names, {15.0: enroll}, clean, [None] * len(names)), {"clean": clean, "noise": noise}


@pytest.fixture(scope="module")
def measured():
    emb, tests = speakers(np.random.default_rng(440))
    cc = ClassifierConfig(unknown_threshold=0.5)
    return emb, tests, cc, measure_decisions(emb, tests, classifier=cc, draws=6, seed=3)


def test_corpora_are_told_apart_by_the_folder_prefix():
    got = corpus_speakers(["so-1", "ls-2", "so-3", "xx-4"])
    assert got["all"].tolist() == [0, 1, 2, 3] and got["so"].tolist() == [0, 2] and got["ls"].tolist() == [1]


def test_rates_per_condition_corpus_and_size(measured):
    emb, tests, cc, out = measured
    assert list(out) == ["clean", "noise"]
    for figs in out.values():
        assert set(figs["open_set"]) == set(figs["verify"]) == {"all", "so", "ls"}
        for corpus, n in (("all", 16), ("so", 12), ("ls", 4)):
            cell = figs["open_set"][corpus]
            assert cell["speakers"] == n
            assert set(cell["by_size"]) | set(cell["left_out"]) == {"1", "3", "5", "10", "20"}
            assert set(cell["left_out"]) == {K for K in ("1", "3", "5", "10", "20") if int(K) >= n}
            for K, r in cell["by_size"].items():
                assert all(0 <= r[k] <= 1 for k in ("false_accept_rate", "false_reject_rate", "open_accuracy"))
                assert r["member_pieces"] == 5 * int(K) * r["n_groups"]
                assert r["outsider_pieces"] == 5 * (n - int(K)) * r["n_groups"]  # outsiders: the corpus's others
    assert "needs 21" in out["clean"]["open_set"]["so"]["left_out"]["20"]
    clean, noise = out["clean"]["open_set"]["all"]["by_size"], out["noise"]["open_set"]["all"]["by_size"]
    # tight voices are named and outsiders kept out; in pure noise members fall under the threshold
    assert clean["3"]["false_reject_rate"] < 0.1 and clean["3"]["false_accept_rate"] < 0.1
    assert noise["3"]["false_reject_rate"] > 0.8


def test_clean_cells_repeat_the_clean_open_set_table(rng):
    """Same groups, same decision: the clean row of "all" is the open-set-by-size figure, calibrated or not."""
    from fewshot.groups.openset import Calibration

    emb, tests = speakers(rng)
    cohort = l2_normalize(rng.standard_normal((30, DIM)))
    cal = Calibration(
        cohort=cohort,
        top_k=5,
        group_sizes=np.array([1.0, 10.0]),
        false_accept_rates=np.array([0.01, 0.2]),
        thresholds=np.array([[1.5, 0.5], [2.5, 1.0]]),
    )
    for cc, calibration in (
        (ClassifierConfig(unknown_threshold=0.5), None),
        (ClassifierConfig(false_accept_rate=0.05), cal),
    ):
        out = measure_decisions(emb, {"clean": tests["clean"]}, classifier=cc, calibration=calibration, draws=5, seed=7)
        ref = open_set_by_size(emb, classifier=cc, calibration=calibration, draws=5, seed=7)
        cells = out["clean"]["open_set"]["all"]["by_size"]
        assert set(ref) <= set(cells)
        for K, r in ref.items():
            assert cells[K]["false_accept_rate"] == pytest.approx(r["false_accept_rate"])
            assert cells[K]["false_reject_rate"] == pytest.approx(r["false_reject_rate"])
            assert cells[K]["open_accuracy"] == pytest.approx(r["open_accuracy"])


def test_verify_rates_are_the_claims_on_the_eer_trials(measured):
    emb, tests, cc, out = measured
    for name in tests:
        view = EmbeddedSpeakers(emb.names, emb.enroll, tests[name], emb.genders)
        tgt, non = verification_scores(view, T=15.0)  # a group of one decides on the cosine to the centroid
        v = out[name]["verify"]["all"]
        assert v["false_accept_rate"] == pytest.approx(np.mean(non >= cc.unknown_threshold))
        assert v["false_reject_rate"] == pytest.approx(np.mean(tgt < cc.unknown_threshold))
        assert v["eer"] == pytest.approx(compute_eer(tgt, non)[0])
        assert (v["n_target"], v["n_nontarget"]) == (len(tgt), len(non))
        assert out[name]["verify"]["ls"]["n_nontarget"] == 4 * 3 * 5  # claims within the corpus only


def test_a_corpus_with_every_speaker_is_said_once_and_a_missing_one_left_out(rng):
    emb, tests = speakers(rng, n_so=6, n_ls=0)
    out = measure_decisions(emb, tests, classifier=ClassifierConfig(unknown_threshold=0.5), draws=3)["noise"]
    assert (
        out["open_set"]["so"]["same_as"] == "all"
        and out["open_set"]["so"]["by_size"] == out["open_set"]["all"]["by_size"]
    )
    assert out["open_set"]["ls"]["speakers"] == 0 and out["open_set"]["ls"]["by_size"] == {}
    assert "no ls-* speakers" in out["open_set"]["ls"]["left_out"]["1"]
    assert "left_out" in out["verify"]["ls"]


def test_worst_cell_is_the_highest_outsiders_accepted(measured):
    *_, out = measured
    w = worst_cell(out)
    rates = [
        r["false_accept_rate"]
        for figs in out.values()
        for cell in figs["open_set"].values()
        for r in cell["by_size"].values()
    ]
    assert w["false_accept_rate"] == max(rates)
    assert (
        out[w["condition"]]["open_set"][w["corpus"]]["by_size"][str(w["group_size"])]["false_accept_rate"]
        == w["false_accept_rate"]
    )
