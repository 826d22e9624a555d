"""Distillation from the CAM++ teacher: its cached targets line up with the crops, and a run uses them."""

import json

import numpy as np
import pytest
from test_training import corpus, train_main, trained_run  # noqa: F401  (fixtures)

from extras import needs_teacher
from synth import ESPEAK_VOICES, TEXTS, VOICES, speak, synth_voice

pytestmark = needs_teacher


@pytest.fixture(scope="module")
def teacher():
    from fewshot.train.teacher import Teacher

    return Teacher(threads=1)


def test_teacher_tells_voices_apart(teacher):
    waves = [speak(TEXTS[0], **v) for v in ESPEAK_VOICES.values()]
    crops = np.stack([w[k * 16000 : k * 16000 + 32000] for w in waves for k in range(3)])
    E = teacher.embed(crops)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    same = np.kron(np.eye(3), np.ones((3, 3))).astype(bool)
    S = E @ E.T
    assert S[same & ~np.eye(9, dtype=bool)].min() > S[~same].max()


def test_crops_carry_the_teachers_embedding_of_their_own_window(teacher, tmp_path):
    from fewshot.audio.features import log_mel
    from fewshot.audio.vad import normalize_loudness
    from fewshot.config import FeatureConfig
    from fewshot.train.data import CropSampler
    from fewshot.train.teacher import teacher_targets

    cfg, frames, hop = FeatureConfig(), 60, 1600
    window = (frames - 1) * cfg.hop_length
    waves = [
        np.round(synth_voice(**v, seconds=1.5, seed=i) * 32767).astype(np.int16) for i, v in enumerate(VOICES.values())
    ]
    targets = teacher_targets(waves, list(VOICES), window=window, hop=hop, cache_dir=tmp_path, teacher=teacher)
    assert [len(t) for t in targets] == [1 + (len(w) - window) // hop for w in waves]
    assert len(list(tmp_path.glob("teacher-*.npz"))) == 1
    # a class without a target (a speed-perturbed copy) is sampled as before, with weight 0
    sampler = CropSampler(
        waves + [waves[0]],
        feature_config=cfg,
        crop_frames=frames,
        batch_size=16,
        augment=None,
        targets=targets + [None],
        target_hop=hop,
    )
    X, (labels, T) = sampler.batch(3)
    assert set(labels) == {0, 1, 2, 3}
    for x, c, t in zip(X, labels, T):
        if c == 3:
            assert t[-1] == 0
            continue
        y = waves[c].astype(np.float32) / 32767
        k = int(np.argmax([np.allclose(t[:-1], e, atol=1e-3) for e in targets[c].astype(np.float32)]))
        expected = log_mel(normalize_loudness(y[k * hop : k * hop + window], target_dbfs=cfg.target_dbfs), config=cfg)
        assert t[-1] == 1 and np.allclose(x, expected, atol=1e-4)


def test_distilled_fine_tuning_run(corpus, trained_run, tmp_path, capsys):  # noqa: F811
    base, tuned = trained_run, tmp_path / "tuned"  # base: a finished tiny run, shared with test_training
    assert (
        train_main(
            corpus, tuned, "--epochs", "1", "--init", str(base), "--distill", "1.0", "--cache", str(tmp_path / "cache")
        )
        == 0
    )
    log = (tuned / "log.csv").read_text().splitlines()
    assert "teacher_projection_loss" in log[0]
    loss = float(log[1].split(",")[log[0].split(",").index("teacher_projection_loss")])
    assert 0.0 < loss <= 2.0
    training = json.loads((tuned / "meta.json").read_text())["training"]
    assert training["teacher"]["name"] == "campplus_cn_en_common" and training["teacher"]["windows"] > 0
    assert training["recipe"]["init"] == str(base) and training["recipe"]["distill_weight"] == 1.0
    # the exported extractor is the student alone: the projection is training-only
    from fewshot.model.extractor import load_extractor

    assert "teacher_projection" not in [layer.name for layer in load_extractor(tuned).model.layers]

    # starting from a run that has no checkpoint is refused in one line, before anything is written
    assert train_main(corpus, tmp_path / "x", "--init", str(tmp_path / "nothing"), "--distill", "1.0") == 2
    err = capsys.readouterr().err
    assert "nothing" in err and "checkpoint" in err
    assert not (tmp_path / "x").exists()
