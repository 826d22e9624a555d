"""Training-time augmentation: rooms, noise and microphones on waveform crops.

Each crop of a batch is degraded with the effects of :mod:`fewshot.audio.degrade`,
drawn at random (the evaluation's conditions use other simulators and fixed
draws, so a model is not measured on the simulator it was trained on):

- **room**: a synthetic impulse response, RT60 0.1-1.0 s, direct-to-reverberant
  ratio -5 to 15 dB;
- **noise**: coloured noise, noise shaped like another speaker's spectrum, or
  babble of 1-4 other speakers, at 0-25 dB SNR; with ``noise_dir``, recorded
  background noise too (the first two thirds of each recording, see
  :data:`fewshot.audio.degrade.RECORDED_TRAIN_SHARE`);
- **microphone**: a random equaliser, a band-pass, the telephone band or mu-law
  quantisation;
- **SpecAugment** on the log-mel crop: one band mask and one time mask.

Speed perturbation of whole recordings (0.9 / 1.1 as new speakers) lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import degrade


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the random degradations (saved with the run)."""

    p_room: float = 0.5
    rt60_s: tuple = (0.1, 1.0)
    drr_db: tuple = (-5.0, 15.0)
    p_noise: float = 0.6
    snr_db: tuple = (0.0, 25.0)
    p_mic: float = 0.3
    p_mask: float = 0.3
    #: A folder of recorded background noises (FLAC or WAV); empty: synthetic noise only.
    noise_dir: str = ""
    #: Of the noisy crops, the share whose noise is a recording (with ``noise_dir``).
    p_recorded: float = 0.4


NOISE_SUFFIXES = (".flac", ".wav")


@lru_cache(maxsize=4)
def noise_recordings(folder: str, sr: int) -> tuple:
    """The training part of every noise recording in ``folder``, at ``sr`` Hz (sorted by name)."""
    from ..audio.decode import load

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in NOISE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no .flac or .wav noise recordings")
    return tuple(degrade.recorded_noise_part(load(p, sr=sr), "train") for p in files)


def speed_perturb(y: np.ndarray, *, sr: int, factor: float) -> np.ndarray:
    """Play ``y`` ``factor`` times faster (tempo and pitch, like sox ``speed``).

    A factor of 0.9 or 1.1 shifts the voice enough to count as a new speaker.
    """
    if factor == 1.0:
        return y
    from ..audio.decode import resample

    return resample(y, orig_sr=int(round(sr * factor)), target_sr=sr)


def degrade_crop(y: np.ndarray, *, sr: int, rng, others, config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random draw of room, noise and microphone effects on the crop ``y``.

    ``others`` are crops of other speakers, for babble and speech-shaped noise.
    """
    c = config
    n = len(y)
    if rng.random() < c.p_room:
        h = degrade.synthetic_rir(sr=sr, rt60_s=rng.uniform(*c.rt60_s), drr_db=rng.uniform(*c.drr_db), rng=rng)
        y = degrade.reverberate(y, h)
    if rng.random() < c.p_noise:
        noise = _draw_noise(n, sr=sr, rng=rng, others=others, config=c)
        y = degrade.add_noise(y, noise, snr_db=rng.uniform(*c.snr_db))
    if rng.random() < c.p_mic:
        kind = rng.random()
        if kind < 0.4:
            f = np.exp(rng.uniform(np.log(150), np.log(6000), 3))
            y = degrade.equalise(y, sr=sr, gains_db=rng.uniform(-10, 10, 3), centres_hz=f)
        elif kind < 0.7:
            y = degrade.band_limit(y, sr=sr, low_hz=rng.uniform(80, 400), high_hz=rng.uniform(3000, 7000))
        elif kind < 0.9:
            y = degrade.telephone(y, sr=sr)
        else:
            y = degrade.mu_law(y)
    return y


def _draw_noise(n: int, *, sr: int, rng, others, config: AugmentConfig) -> np.ndarray:
    """One noise of ``n`` samples: recorded (with ``noise_dir``), babble, speech-shaped or coloured."""
    recordings = noise_recordings(config.noise_dir, sr) if config.noise_dir else ()
    if recordings and rng.random() < config.p_recorded:
        return degrade.recorded_noise(recordings[int(rng.integers(len(recordings)))], n, rng=rng)
    kind = rng.random()
    if kind < 0.35 and len(others):
        k = int(rng.integers(1, 5))
        pick = [others[int(i)] for i in rng.integers(0, len(others), k)]
        return degrade.babble(pick, n, rng=rng)
    if kind < 0.7 and len(others):
        return degrade.speech_shaped_noise(others[int(rng.integers(len(others)))], n, rng=rng)
    return degrade.coloured_noise(n, sr=sr, tilt_db_per_octave=rng.uniform(-6.0, 1.0), rng=rng)


def spec_augment(S: np.ndarray, *, rng, max_bands: int = 8, max_frames: int = 20) -> np.ndarray:
    """Mask one random band range and one random time range with the crop's mean."""
    S = S.copy()
    fill = S.mean()
    w = int(rng.integers(0, max_bands + 1))
    if w:
        f0 = int(rng.integers(0, S.shape[1] - w + 1))
        S[:, f0 : f0 + w] = fill
    w = int(rng.integers(0, min(max_frames, S.shape[0] // 4) + 1))
    if w:
        t0 = int(rng.integers(0, S.shape[0] - w + 1))
        S[t0 : t0 + w] = fill
    return S
