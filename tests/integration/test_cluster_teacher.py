"""The teacher's targets on a two-node Ray cluster equal those computed in one process (``pytest -m cluster``)."""

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from extras import needs_teacher
from synth import VOICES, synth_voice

pytestmark = [pytest.mark.cluster, needs_teacher]

REPO = Path(__file__).resolve().parents[2]


def test_teacher_targets_on_a_cluster_match_one_process(ray_cluster, tmp_path):
    import soundfile as sf

    from fewshot.config import ExtractorConfig, FeatureConfig
    from fewshot.train.data import corpus_speech, list_training_speakers
    from fewshot.train.teacher import HOP_S, Teacher, teacher_targets

    for i, (name, v) in enumerate(VOICES.items()):
        (tmp_path / "train" / name).mkdir(parents=True)
        sf.write(tmp_path / "train" / name / "a.wav", synth_voice(**v, seconds=3.0, seed=i), 16000)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "teacher_targets.py"),
            str(tmp_path / "train"),
            "--cache",
            str(tmp_path / "cache"),
            "--workers",
            "1",
            "--cluster",
            ray_cluster.address,
        ],
        env=ray_cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"of {len(VOICES)} speakers embedded" in proc.stdout
    (written,) = (tmp_path / "cache").glob("teacher-*.npz")

    fc, ec = FeatureConfig(), ExtractorConfig()
    waves, classes = corpus_speech(list_training_speakers(tmp_path / "train"), config=fc, cache_dir=tmp_path / "here")
    here = teacher_targets(
        waves,
        classes,
        window=(ec.crop_frames - 1) * fc.hop_length,
        hop=int(HOP_S * fc.sr),
        cache_dir=tmp_path / "here",
        teacher=Teacher(threads=1),
    )
    assert (tmp_path / "here" / written.name).is_file()  # same speech, grid and classes: the same cache key
    with np.load(written) as z:
        assert [z[f"c{i}"].shape for i in range(len(here))] == [t.shape for t in here]
        for i, t in enumerate(here):
            assert np.allclose(z[f"c{i}"].astype(np.float32), t.astype(np.float32), atol=2e-3)


def test_a_class_held_by_an_actor_that_never_answers_is_embedded_by_another():
    from fewshot.cluster import runtime
    from fewshot.train.teacher_pool import _first_answers

    class Echo:  # defined here, so that Ray ships it by value to its workers
        """Answers a class at once, or (``stuck``) never: an actor whose node is gone and cannot come back."""

        def __init__(self, stuck: bool) -> None:
            self.stuck = stuck

        def embed(self, index, wave, window, hop):
            import time

            while self.stuck:
                time.sleep(1)
            return index, wave * 2

    waves = [np.full(3, i, np.int16) for i in range(5)]
    got: dict = {}
    with runtime(None, cpus=2) as ray:
        echo = ray.remote(num_cpus=1)(Echo)
        actors = [echo.remote(True), echo.remote(False)]
        run = threading.Thread(
            target=lambda: got.update(_first_answers(ray, actors, waves, window=1, hop=1)), daemon=True
        )
        run.start()
        run.join(120)
        assert not run.is_alive(), "the class held by the actor that never answers stalled the run"
    assert sorted(got) == list(range(5))
    for i, targets in got.items():
        np.testing.assert_array_equal(targets, waves[i] * 2)
