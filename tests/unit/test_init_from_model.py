"""``--init MODEL_DIR``: fine-tuning starts from a released (whitened) extractor's network."""

import dataclasses

import numpy as np
import pytest

from fewshot.config import FeatureConfig
from fewshot.model.extractor import load_extractor
from fewshot.train.checkpoints import extractor_start, start_point
from fewshot.train.loop import TrainConfig, build_training_model
from fewshot.train.whitening import (
    embed_classes,
    whiten_extractor,
    within_class_whitening,
)

NAMES = ("ann", "bob", "cat")


@pytest.fixture(scope="module")
def released(tiny_model_dir, voice, tmp_path_factory):
    """The tiny extractor whitened and saved, as a release ships it, and the voices of its 'classes'."""
    ex = load_extractor(tiny_model_dir, backend="keras")
    waves = [voice(name, 8.0, seed=1) for name in NAMES]
    mu, W = within_class_whitening(*embed_classes(ex, waves))
    folder = whiten_extractor(ex, mu, W).save(tmp_path_factory.mktemp("released"))
    return ex, folder, [np.round(w * 32767).astype(np.int16) for w in waves]


def test_a_model_directory_is_a_starting_point_for_the_same_network_only(released, tmp_path):
    ex, folder, _ = released
    fc, ec = FeatureConfig(), ex.extractor_config
    assert start_point(folder, feature_config=fc, extractor_config=ec) == ("extractor", str(folder))
    with pytest.raises(FileNotFoundError, match="differ"):
        start_point(folder, feature_config=fc, extractor_config=dataclasses.replace(ec, embedding_dim=32))
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        start_point(tmp_path, feature_config=fc, extractor_config=ec)


def test_training_starts_from_the_network_without_its_whitening_and_with_agreeing_centres(released, voice):
    ex, folder, waves = released
    fc, ec = FeatureConfig(), ex.extractor_config
    weights, centres = extractor_start(folder, waves, feature_config=fc, extractor_config=ec)
    assert centres.shape == (len(NAMES), ec.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-5)

    model = build_training_model(
        ec,
        n_mels=fc.n_mels,
        n_classes=len(NAMES),
        tc=TrainConfig(epochs=1),
        total_steps=10,
        init_weights=(weights, centres),
    )
    import keras

    from fewshot.audio.features import log_mel

    tests = [voice(name, 3.0, seed=9) for name in NAMES]
    X = np.stack([log_mel(y, config=fc)[:300] for y in tests])
    cnn_out = model.get_layer("embedding").output
    raw = keras.Model(model.inputs, cnn_out).predict(X, verbose=0)
    # the network is the released one before its whitening layer: the unwhitened extractor's output
    np.testing.assert_allclose(raw, ex.model.predict(X, verbose=0), atol=1e-4)
    # the head starts at each class's mean unit embedding of its first 3 s segments
    segs = [ex.embed([w.astype(np.float32) / 32767], return_segments=True)[0] for w in waves]
    expected = np.stack([s.mean(axis=0) / np.linalg.norm(s.mean(axis=0)) for s in segs])
    np.testing.assert_allclose(centres, expected, atol=1e-4)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(X, verbose=0), unit @ expected.T, atol=1e-4)
