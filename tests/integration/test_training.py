"""The training recipe on a tiny synthetic corpus: model directory, determinism, resume, refusals."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from synth import ROOT, VOICES, synth_voice, write_wav

TINY = [
    "--channels",
    "16",
    "32",
    "--blocks",
    "1",
    "1",
    "--embedding-dim",
    "16",
    "--batch-size",
    "8",
    "--speeds",
    "1.0",
    "--workers",
    "1",
    "--steps-per-epoch",
    "3",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i, (name, v) in enumerate(VOICES.items()):
        (root / name).mkdir()
        for k in range(2):
            write_wav(root / name / f"{name}-{k}.wav", synth_voice(**v, seconds=4.0, seed=10 * i + k))
    return root


def train_cmd(corpus, out, *extra):
    return [sys.executable, str(ROOT / "scripts" / "train_extractor.py"), str(corpus), "--out", str(out), *TINY, *extra]


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def weights(model_dir):
    from fewshot.model.extractor import load_extractor

    return [w.copy() for w in load_extractor(model_dir).model.get_weights()]


def test_seeded_runs_match_resume_continues_and_other_arguments_are_refused(corpus, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(train_cmd(corpus, a, "--epochs", "2"))
    state = json.loads((a / "state.json").read_text())
    meta = json.loads((a / "meta.json").read_text())
    assert state["epoch"] == 2 and (a / meta["model_file"]).is_file() and (a / "log.csv").is_file()
    assert meta["extractor_config"]["whitened"] and meta["training"]["whitening"]["classes"] == 3

    # stopped after the first epoch; then killed at some point of the second; then resumed
    run(train_cmd(corpus, b, "--epochs", "2", "--stop-after", "1"))
    assert json.loads((b / "state.json").read_text())["epoch"] == 1
    assert not json.loads((b / "meta.json").read_text())["extractor_config"]["whitened"]
    proc = subprocess.Popen(
        train_cmd(corpus, b, "--epochs", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    for line in proc.stdout:
        if "Epoch 2/2" in line:  # the kill lands anywhere in epoch 2 or the whitening after it
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = run(train_cmd(corpus, b, "--epochs", "2"))
    assert "Epoch 1/2" not in out.stdout
    wa_all, wb_all = weights(a), weights(b)
    assert len(wa_all) == len(wb_all)
    for wa, wb in zip(wa_all, wb_all):
        np.testing.assert_array_equal(wa, wb)

    # a finished run is left as it is: nothing is trained or whitened twice
    model_id = json.loads((a / "meta.json").read_text())["model_id"]
    out = run(train_cmd(corpus, a, "--epochs", "2"))
    assert "Epoch" not in out.stdout
    assert json.loads((a / "meta.json").read_text())["model_id"] == model_id

    # and a run is not resumed with other arguments
    before = {p: p.read_bytes() for p in a.rglob("*") if p.is_file()}
    proc = subprocess.run(
        train_cmd(corpus, a, "--epochs", "2", "--lr", "0.1"), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "other arguments" in proc.stderr
    assert {p: p.read_bytes() for p in a.rglob("*") if p.is_file()} == before


def test_missing_training_data(tmp_path):
    proc = subprocess.run(train_cmd(tmp_path / "nothing", tmp_path / "m"), capture_output=True, text=True)
    assert proc.returncode == 2 and "nothing" in proc.stderr
    assert not (tmp_path / "m").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "extra, reason", [(["--stop-after", "0"], "at least 1 epoch"), (["--noise", "no-such-folder"], "no-such-folder")]
)
def test_bad_options_refused_before_any_work(corpus, tmp_path, extra, reason):
    proc = subprocess.run(train_cmd(corpus, tmp_path / "m", *extra), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and reason in proc.stderr
    assert not (tmp_path / "m").exists()
