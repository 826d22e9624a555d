"""Training-time augmentation of log-mel crops, and speed perturbation of waveforms.

Everything works on natural-log mel power (what :func:`fewshot.features.log_mel`
returns), so augmentation costs a few milliseconds per batch on a CPU:

- **room reverberation**: the power spectrogram of a reverberant signal is close
  to the dry one plus an exponentially decaying tail (a one-pole filter along
  time per band), with a random RT60 and direct-to-reverberant ratio;
- **additive noise**: coloured stationary noise at a random SNR, or another
  speaker's crop at a higher SNR (babble);
- **SpecAugment**: one band mask and one time mask.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def speed_perturb(y: np.ndarray, *, sr: int, factor: float) -> np.ndarray:
    """Play ``y`` ``factor`` times faster (tempo and pitch, like sox ``speed``).

    A factor of 0.9 or 1.1 shifts the voice enough to count as a new speaker.
    """
    if factor == 1.0:
        return y
    import librosa

    return librosa.resample(y, orig_sr=int(round(sr * factor)), target_sr=sr, res_type="soxr_hq")


def reverberate(S: np.ndarray, *, rng, hop_s: float, rt60_s=(0.2, 0.9), drr_db=(-3.0, 12.0)) -> np.ndarray:
    """Add a late-reverberation tail to one log-mel crop ``S`` of shape (frames, n_mels)."""
    P = np.exp(S.astype(np.float64))
    rt60 = rng.uniform(*rt60_s)
    a = 10.0 ** (-6.0 * hop_s / rt60)
    tail = lfilter([1.0 - a], [1.0, -a], P, axis=0)
    delay = int(rng.integers(1, 4))
    tail = np.concatenate([np.zeros((delay, P.shape[1])), tail[:-delay]])
    gain = 10.0 ** (-rng.uniform(*drr_db) / 10.0)
    return np.log(P + gain * tail).astype(np.float32)


def add_noise(S: np.ndarray, *, rng, snr_db=(0.0, 20.0), other: np.ndarray | None = None) -> np.ndarray:
    """Add coloured noise (or the crop ``other``, as babble) at a random SNR."""
    P = np.exp(S.astype(np.float64))
    if other is not None:
        N = np.exp(other.astype(np.float64))
    else:
        n_frames, n_mels = S.shape
        tilt = np.exp(rng.uniform(-4.0, 2.0) * np.linspace(0.0, 1.0, n_mels))
        N = tilt[None, :] * rng.gamma(8.0, 1.0 / 8.0, size=(n_frames, n_mels))
    snr = rng.uniform(*snr_db)
    N *= P.mean() / (N.mean() * 10.0 ** (snr / 10.0))
    return np.log(P + N).astype(np.float32)


def spec_augment(S: np.ndarray, *, rng, max_bands: int = 8, max_frames: int = 20) -> np.ndarray:
    """Mask one random band range and one random time range with the crop's mean."""
    S = S.copy()
    fill = S.mean()
    w = int(rng.integers(0, max_bands + 1))
    if w:
        f0 = int(rng.integers(0, S.shape[1] - w + 1))
        S[:, f0:f0 + w] = fill
    w = int(rng.integers(0, min(max_frames, S.shape[0] // 4) + 1))
    if w:
        t0 = int(rng.integers(0, S.shape[0] - w + 1))
        S[t0:t0 + w] = fill
    return S


def augment_batch(X: np.ndarray, *, rng, hop_s: float, p_reverb: float = 0.4, p_noise: float = 0.4,
                  p_babble: float = 0.15, p_mask: float = 0.5) -> np.ndarray:
    """Augment a batch of log-mel crops ``X`` of shape (batch, frames, n_mels) in place."""
    n = len(X)
    for i in range(n):
        if rng.random() < p_reverb:
            X[i] = reverberate(X[i], rng=rng, hop_s=hop_s)
        u = rng.random()
        if u < p_babble and n > 1:
            X[i] = add_noise(X[i], rng=rng, snr_db=(8.0, 20.0), other=X[(i + 1 + int(rng.integers(n - 1))) % n])
        elif u < p_babble + p_noise:
            X[i] = add_noise(X[i], rng=rng)
        if rng.random() < p_mask:
            X[i] = spec_augment(X[i], rng=rng)
    return X
