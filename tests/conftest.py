"""Shared fixtures: every test makes its own audio."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from synth import VOICES, synth_voice

# fewshot's files (store, caches) go to a folder of this run, never the user's, unless a test says otherwise
os.environ.setdefault("FEWSHOT_HOME", tempfile.mkdtemp(prefix="fewshot-tests-"))


@pytest.fixture
def rng():
    return np.random.default_rng(seed=440)


@pytest.fixture(scope="session")
def voice():
    def make(name: str, seconds: float, seed: int = 0) -> np.ndarray:
        return synth_voice(**VOICES[name], seconds=seconds, seed=seed)

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny untrained extractor saved as a model directory."""
    from fewshot.config import ExtractorConfig, FeatureConfig
    from fewshot.model.extractor import Extractor
    from fewshot.model.nn import build_cnn

    ec = ExtractorConfig(channels=(4, 8), blocks=(1, 1), embedding_dim=16)
    ex = Extractor(build_cnn(ec, n_mels=64), feature_config=FeatureConfig(), extractor_config=ec)
    return ex.save(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def identifier(tiny_model_dir, tmp_path):
    """A :class:`SpeakerIdentifier` on the tiny model, with a store of its own."""
    from fewshot.identifier import SpeakerIdentifier
    from fewshot.model.extractor import load_extractor

    return SpeakerIdentifier(load_extractor(tiny_model_dir), store=tmp_path / "store.sqlite")


@pytest.fixture(scope="session")
def default_extractor():
    from fewshot.model.extractor import default_model_dir, load_extractor

    if not (default_model_dir() / "meta.json").is_file():
        pytest.fail(f"the default model is missing from {default_model_dir()}")
    return load_extractor()


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster on 127.0.0.1, one CPU per node (tests marked ``cluster``); drivers use its ``env``."""
    from pathlib import Path

    from local_cluster import LocalCluster

    repo = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    with LocalCluster(env={"PYTHONPATH": path}) as nodes:
        nodes.start(nodes=2, cpus=1)
        yield nodes
