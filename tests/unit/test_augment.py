"""Training augmentation with recorded background noise: drawn from the training part of each recording."""

import numpy as np
import soundfile as sf

from fewshot.audio import degrade
from fewshot.train.augment import AugmentConfig, degrade_crop, noise_recordings

SR = 16000


def tone(hz, seconds):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def band_energy(y, hz):
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return spec[(f > hz - 30) & (f < hz + 30)].sum() / spec.sum()


def test_training_draws_only_the_first_two_thirds_of_a_recording(tmp_path):
    # 1 kHz for the first two thirds of the recording, 3 kHz for the held-out last third
    sf.write(tmp_path / "hum.flac", np.concatenate([tone(1000, 6.0), tone(3000, 3.0)]), SR)
    (tmp_path / "notes.txt").write_text("not a recording")
    (train_part,) = noise_recordings(str(tmp_path), SR)
    assert len(train_part) == 6 * SR
    test_part = degrade.recorded_noise_part(np.concatenate([tone(1000, 6.0), tone(3000, 3.0)]), "test")
    assert band_energy(test_part, 3000) > 0.9

    config = AugmentConfig(
        p_room=0.0, p_noise=1.0, p_mic=0.0, snr_db=(0.0, 0.0), noise_dir=str(tmp_path), p_recorded=1.0
    )
    speech = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    for seed in range(20):
        noise = degrade_crop(speech, sr=SR, rng=np.random.default_rng(seed), others=[], config=config) - speech
        assert band_energy(noise, 1000) > 0.9 and band_energy(noise, 3000) < 0.01


def test_without_a_noise_folder_the_draws_are_those_of_synthetic_noise_alone():
    speech = np.random.default_rng(1).normal(0, 0.1, SR).astype(np.float32)
    a = degrade_crop(speech, sr=SR, rng=np.random.default_rng(5), others=[speech], config=AugmentConfig())
    b = degrade_crop(
        speech, sr=SR, rng=np.random.default_rng(5), others=[speech], config=AugmentConfig(p_recorded=1.0)
    )  # no folder: the share is never drawn
    np.testing.assert_array_equal(a, b)
