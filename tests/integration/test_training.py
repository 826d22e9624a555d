"""The training recipe on a tiny synthetic corpus: model directory, determinism, resume, refusals."""

import fcntl
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

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


def shared_folder(tmp_path_factory) -> Path:
    """A folder of this test session shared by its xdist workers (each worker has its own basetemp below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(folder: Path, build) -> Path:
    """``folder``, made by ``build(folder)`` in the first worker that asks for it; the others wait for it."""
    with open(folder.with_name(folder.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder.with_name(folder.name + ".done")
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            build(folder)
            done.touch()
    return folder


def write_corpus(root: Path) -> None:
    for i, (name, v) in enumerate(VOICES.items()):
        (root / name).mkdir(parents=True)
        for k in range(2):
            write_wav(root / name / f"{name}-{k}.wav", synth_voice(**v, seconds=4.0, seed=10 * i + k))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return build_once(shared_folder(tmp_path_factory) / "corpus", write_corpus)


@pytest.fixture(scope="session")
def trained_run(corpus, tmp_path_factory):
    """A finished tiny run (2 epochs, whitened), trained once per session for the files that start from one."""

    def build(out):
        assert train_main(corpus, out, "--epochs", "2") == 0

    return build_once(shared_folder(tmp_path_factory) / "trained_run", build)


def train_cmd(corpus, out, *extra):
    return [sys.executable, str(ROOT / "scripts" / "train_extractor.py"), *train_args(corpus, out, *extra)]


def train_args(corpus, out, *extra):
    return [str(corpus), "--out", str(out), *TINY, *extra]


def train_main(*args) -> int:
    """``scripts/train_extractor.py`` run in this process: TensorFlow is loaded once, not once per run."""
    spec = importlib.util.spec_from_file_location("train_extractor", ROOT / "scripts" / "train_extractor.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return script.main(train_args(*args))
    finally:  # the script's logging set-up is its process's, not this one's
        root.handlers[:] = handlers
        root.setLevel(level)


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def weights(model_dir):
    from fewshot.model.extractor import load_extractor

    return [w.copy() for w in load_extractor(model_dir).model.get_weights()]


def test_seeded_runs_match_resume_continues_and_other_arguments_are_refused(corpus, trained_run, tmp_path, capsys):
    a, b = trained_run, tmp_path / "b"
    state = json.loads((a / "state.json").read_text())
    meta = json.loads((a / "meta.json").read_text())
    assert state["epoch"] == 2 and (a / meta["model_file"]).is_file() and (a / "log.csv").is_file()
    assert meta["extractor_config"]["whitened"] and meta["training"]["whitening"]["classes"] == 3

    # stopped after the first epoch; then killed at some point of the second (a process of its own); then resumed
    capsys.readouterr()
    assert train_main(corpus, b, "--epochs", "2", "--stop-after", "1") == 0
    assert "Epoch 1/2" in capsys.readouterr().out  # what the checks of printed epochs below read
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
    assert train_main(corpus, b, "--epochs", "2") == 0
    assert "Epoch 1/2" not in capsys.readouterr().out
    wa_all, wb_all = weights(a), weights(b)
    assert len(wa_all) == len(wb_all)
    for wa, wb in zip(wa_all, wb_all):
        np.testing.assert_array_equal(wa, wb)

    # a finished run is left as it is: nothing is trained or whitened twice
    model_id = json.loads((a / "meta.json").read_text())["model_id"]
    assert train_main(corpus, a, "--epochs", "2") == 0
    assert "Epoch" not in capsys.readouterr().out
    assert json.loads((a / "meta.json").read_text())["model_id"] == model_id

    # and a run is not resumed with other arguments
    before = {p: p.read_bytes() for p in a.rglob("*") if p.is_file()}
    assert train_main(corpus, a, "--epochs", "2", "--lr", "0.1") == 2
    assert "other arguments" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in a.rglob("*") if p.is_file()} == before


def test_missing_training_data(tmp_path):
    # a process of its own: the script's exit status, as a shell sees it (refused before TensorFlow is loaded)
    proc = subprocess.run(train_cmd(tmp_path / "nothing", tmp_path / "m"), capture_output=True, text=True)
    assert proc.returncode == 2 and "nothing" in proc.stderr
    assert not (tmp_path / "m").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "extra, reason", [(["--stop-after", "0"], "at least 1 epoch"), (["--noise", "no-such-folder"], "no-such-folder")]
)
def test_bad_options_refused_before_any_work(corpus, tmp_path, capsys, extra, reason):
    assert train_main(corpus, tmp_path / "m", *extra) == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
