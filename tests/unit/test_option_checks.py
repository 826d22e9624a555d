"""Options are checked before any work: fewshot evaluate (and few speakers with a calibrated model), the demo."""

import numpy as np
import pytest

from fewshot.config import ClassifierConfig
from fewshot.eval.benchmark import evaluate_embeddings
from fewshot.eval.protocol import EmbeddedSpeakers
from fewshot.groups.openset import Calibration


def test_four_speakers_with_a_calibrated_model(rng):
    dim, names = 192, ["a", "b", "c", "d"]
    centres = rng.standard_normal((4, dim))
    unit = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)
    enroll = {15.0: [unit(c + 0.3 * rng.standard_normal((9, dim))) for c in centres]}
    tests = [unit(c + 0.3 * rng.standard_normal((2, dim))) for c in centres]  # fewer vectors than dimensions
    emb = EmbeddedSpeakers(names, enroll, tests, [None] * 4)
    calibration = Calibration(
        unit(rng.standard_normal((60, dim))),
        10,
        np.array([1.0, 3.0]),
        np.array([0.01, 0.1]),
        np.array([[2.0, 1.0], [2.5, 1.5]]),
    )
    res = evaluate_embeddings(
        emb,
        classifier=ClassifierConfig(false_accept_rate=0.05),
        group_sizes=[3, "all"],
        enroll_seconds=[15],
        curve_seconds=[15],
        draws=2,
        verification_seconds=15.0,
        calibration=calibration,
    )
    assert res["closed_set"]["15"]["all"]["accuracy_mean"] > 0.5


@pytest.mark.parametrize(
    "option",
    [
        ["--enroll-seconds", "-5"],
        ["--enroll-seconds", "1e9"],
        ["--draws", "0"],
        ["--draws", "-1"],
        ["--seed", "-1"],
        ["--curve-seconds", "-1"],
        ["--enroll-seconds", "nan"],
    ],
)
def test_bad_options_are_usage_errors(option, tmp_path, capsys):
    from fewshot.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(tmp_path), "--out", str(tmp_path / "out"), *option])
    assert exit_.value.code == 2 and option[0] in capsys.readouterr().err


@pytest.mark.parametrize("countdown", ["-5", "1e9", "100000", "x"])
def test_the_demo_refuses_a_countdown_out_of_range(countdown, capsys):
    from fewshot.live.app import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--countdown", countdown])
    assert exit_.value.code == 2 and "--countdown" in capsys.readouterr().err
    assert build_parser().parse_args(["--countdown", "0"]).countdown == 0
