import numpy as np
import pytest

from fewshot.audio.features import l2_normalize
from fewshot.model.extractor import Extractor, load_extractor
from fewshot.train.whitening import embed_classes, whiten_extractor, within_class_whitening


def test_within_class_covariance_becomes_identity(rng):
    # three speakers whose segments vary mostly along one shared "channel" axis
    centres = rng.normal(size=(3, 5))
    noise = rng.normal(size=(300, 5)) * np.array([3.0, 0.2, 0.2, 0.2, 0.2])
    labels = np.repeat(np.arange(3), 100)
    E = centres[labels] + noise
    mu, W = within_class_whitening(E, labels, reg=0.0)
    np.testing.assert_allclose(mu, E.mean(axis=0))
    Z = (E - mu) @ W
    R = np.concatenate([Z[labels == k] - Z[labels == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(R.T @ R / len(R), np.eye(5), atol=1e-8)
    # regularisation keeps the map finite and closer to plain centring
    _, W_reg = within_class_whitening(E, labels, reg=10.0)
    assert np.linalg.cond(W_reg) < np.linalg.cond(W)


def test_within_class_whitening_needs_two_speakers(rng):
    with pytest.raises(ValueError, match="two speakers"):
        within_class_whitening(rng.normal(size=(10, 4)), np.zeros(10))


def test_whitened_extractor_is_the_frozen_map_and_round_trips(tiny_model_dir, voice, tmp_path, rng):
    ex = load_extractor(tiny_model_dir)
    waves = [voice(name, 6.0, seed=1) for name in ("ann", "bob", "cat")]
    E, labels = embed_classes(ex, waves)
    assert sorted(set(labels)) == [0, 1, 2] and E.shape == (len(labels), ex.dim)
    mu, W = within_class_whitening(E, labels)
    wex = whiten_extractor(ex, mu, W)
    assert wex.extractor_config.whitened and wex.model.get_layer("embedding").trainable is False

    expected = l2_normalize((ex.embed(waves[0], return_segments=True)[0] - mu) @ W)
    np.testing.assert_allclose(wex.embed(waves[0], return_segments=True)[0], expected, atol=1e-5)

    again = Extractor.load(wex.save(tmp_path / "w"))
    assert again.extractor_config.whitened
    y = voice("ann", 4.0, seed=5)
    np.testing.assert_allclose(again.embed([y]), wex.embed([y]), atol=1e-6)
    with pytest.raises(ValueError, match="unwhitened"):
        whiten_extractor(again, mu, W)


def test_a_run_trained_on_degraded_crops_adds_degraded_crops_to_the_fit(tiny_model_dir, voice):
    from fewshot.train.augment import AugmentConfig

    ex = load_extractor(tiny_model_dir)
    waves = [voice(name, 6.0, seed=1) for name in ("ann", "bob", "cat")]
    E0, labels0 = embed_classes(ex, waves)
    always = AugmentConfig(p_room=1.0, p_noise=1.0, p_mic=1.0, snr_db=(0.0, 5.0))
    E, labels = embed_classes(ex, waves, augment=always, degraded=4)
    # the clean segments come first, unchanged, then four degraded 3 s crops of each speaker
    np.testing.assert_allclose(E[: len(E0)], E0, atol=1e-6)
    assert list(labels) == list(labels0) + [0] * 4 + [1] * 4 + [2] * 4
    D = E[len(E0) :]
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, atol=1e-5)
    # a degraded crop is no longer any clean segment of its speaker
    assert max(float(np.max(E0[labels0 == k] @ d)) for k, d in zip(labels[len(E0) :], D)) < 0.9999
    # the same seed draws the same crops and degradations
    np.testing.assert_array_equal(embed_classes(ex, waves, augment=always, degraded=4)[0], E)
