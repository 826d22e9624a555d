"""What the runtime imports is what `pip install .` installs: every third-party import of the modules at the
top of `fewshot/` is a declared dependency, or an optional one the code imports only when asked for."""

import ast
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
#: Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"sklearn": "scikit-learn", "ai_edge_litert": "ai-edge-litert"}
#: Optional imports of the runtime, each behind a check that says what to install: TensorFlow and Keras (the
#: Keras backend, extra "train"), tqdm (progress bars, shown only when installed), librosa and matplotlib
#: (spectrogram PNGs, extra "eval"), Ray (fewshot.cluster, the engine of the data-side jobs, extra "data"; never
#: imported by identify, enroll, groups or the demo, which tests/integration/test_no_tensorflow.py checks).
OPTIONAL = {"tensorflow", "keras", "tqdm", "librosa", "matplotlib", "ray"}


def test_every_runtime_import_is_declared():
    declared = {
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    undeclared = {}
    for f in (ROOT / "fewshot").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"fewshot"} - OPTIONAL:
                if DISTRIBUTIONS.get(top, top).lower() not in declared:
                    undeclared.setdefault(top, []).append(f.name)
    assert not undeclared, f"imported by the runtime but not in [project] dependencies: {undeclared}"
