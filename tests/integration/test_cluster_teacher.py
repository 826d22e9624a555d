"""The teacher's targets on a two-node Ray cluster equal those computed in one process (``pytest -m cluster``)."""

import subprocess
import sys
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
