"""Room, noise and microphone effects on waveforms: the one home of every degradation.

Three users draw on these functions: training augmentation
(:mod:`fewshot.train.augment`, random draws), the evaluation conditions
(:mod:`fewshot.eval.conditions`, fixed seeded draws) and multi-condition
enrollment (:meth:`fewshot.identifier.SpeakerIdentifier.enroll`, which adds
degraded copies of a person's enrollment speech to the group's SVM).

Everything takes and returns mono float32 at ``sr`` Hz and uses NumPy and SciPy
only, so the runtime can use it without TensorFlow. The room and the noise
(all that enrollment uses) need NumPy alone: importing ``scipy.signal`` takes
longer than a whole enrollment, so the microphone effects import it when called.
"""

from __future__ import annotations

import numpy as np


def synthetic_rir(*, sr: int, rt60_s: float, drr_db: float, rng) -> np.ndarray:
    """A room impulse response: a direct path, then exponentially decaying noise.

    The tail decays by 60 dB in ``rt60_s`` and loses high frequencies as it
    decays (a one-pole low-pass whose cut-off falls with time is approximated by
    low-passing the later half more); its energy is ``drr_db`` below the direct
    path's.

    Returns
    -------
    h : np.ndarray [shape=(n,), dtype=float32]
        ``h[0] == 1``.
    """
    n = max(2, int(sr * min(1.2 * rt60_s, 1.5)))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10.0 ** (-3.0 * t / rt60_s)
    tail[: int(0.002 * sr) + 1] = 0.0
    a = float(np.clip(rng.uniform(0.2, 0.7), 0.0, 0.95))
    late = one_pole(tail, a)
    w = np.clip(t / max(rt60_s, 1e-3), 0.0, 1.0)
    tail = (1.0 - w) * tail + w * late
    energy = float(np.sum(tail**2))
    if energy > 0:
        tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / energy)
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(y: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``y`` convolved with the impulse response ``h``, same length and RMS as ``y``."""
    size = _fft_size(len(y) + len(h) - 1)  # NumPy's FFT is faster in float64 than in float32
    out = np.fft.irfft(
        np.fft.rfft(np.asarray(y, np.float64), size) * np.fft.rfft(np.asarray(h, np.float64), size), size
    )[: len(y)]
    return _match_rms(out, y)


def _fft_size(n: int) -> int:
    """The smallest ``2**a * 3**b * 5**c`` at least ``n``: a length the FFT is fast at."""
    best, p5 = 1 << max(n - 1, 0).bit_length(), 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 * (1 << max(0, (-(-n // p35) - 1).bit_length()))  # times the power of two reaching n
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def one_pole(x: np.ndarray, a: float) -> np.ndarray:
    """``y[n] = (1 - a) x[n] + a y[n - 1]`` from ``y[-1] = 0`` (``lfilter([1 - a], [1, -a], x)``), in float64."""
    return _recurrence((1.0 - a) * np.asarray(x, np.float64), a)


def _recurrence(u: np.ndarray, a: float, block: int = 64) -> np.ndarray:
    """``y[n] = u[n] + a y[n - 1]`` from ``y[-1] = 0``, without a Python loop over samples.

    Each block of ``block`` samples is one matrix product from a zero start; the
    blocks' last values then follow the same recurrence (with ``a ** block``),
    solved the same way, and carry into the next block.
    """
    n = len(u)
    i = np.arange(min(n, block))
    lag = i[:, None] - i[None, :]
    T = np.where(lag >= 0, float(a) ** np.maximum(lag, 0), 0.0)  # response within a block
    if n <= block:
        return T @ u
    k = -(-n // block)
    y = np.pad(u, (0, k * block - n)).reshape(k, block) @ T.T
    carry = _recurrence(y[:, -1], float(a) ** block, block)  # each block's true last value
    y[1:] += carry[:-1, None] * float(a) ** (i + 1)
    return y.reshape(-1)[:n]


def coloured_noise(n: int, *, sr: int, tilt_db_per_octave: float, rng) -> np.ndarray:
    """Stationary Gaussian noise whose spectrum falls ``tilt_db_per_octave`` per octave."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    gain = (np.maximum(f, 50.0) / 1000.0) ** (tilt_db_per_octave / (20.0 * np.log10(2.0)))
    return np.fft.irfft(spec * gain, n).astype(np.float32)


def speech_shaped_noise(like: np.ndarray, n: int, *, rng) -> np.ndarray:
    """White noise shaped to the long-term spectrum of ``like``."""
    n_fft = 512
    frames = _frames(like, n_fft)
    ltas = np.sqrt(np.mean(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2, axis=0) + 1e-12)
    spec = np.fft.rfft(rng.standard_normal(n))
    gain = np.interp(np.linspace(0, len(ltas) - 1, len(spec)), np.arange(len(ltas)), ltas)
    return np.fft.irfft(spec * gain, n).astype(np.float32)


def babble(others, n: int, *, rng) -> np.ndarray:
    """The sum of random length-``n`` windows of the waveforms in ``others``, each at equal RMS."""
    out = np.zeros(n, np.float32)
    for y in others:
        y = np.asarray(y, np.float32)
        if len(y) < n:
            y = np.tile(y, -(-n // max(len(y), 1)))
        t0 = int(rng.integers(0, len(y) - n + 1))
        piece = y[t0 : t0 + n]
        out += piece / (_rms(piece) + 1e-8)
    return out


#: Share of each recorded background noise that training draws from (its start); the evaluation's
#: recorded-noise conditions use the rest, so a model is not measured on noise it was trained on.
RECORDED_TRAIN_SHARE = 2 / 3


def recorded_noise_part(y: np.ndarray, part: str) -> np.ndarray:
    """The ``"train"`` (first two thirds) or ``"test"`` (last third) part of a noise recording."""
    cut = int(len(y) * RECORDED_TRAIN_SHARE)
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    return np.asarray(y[:cut] if part == "train" else y[cut:], np.float32)


def recorded_noise(recording: np.ndarray, n: int, *, rng) -> np.ndarray:
    """``n`` samples of a recorded noise from a random place (looped when shorter)."""
    rec = np.asarray(recording, np.float32)
    if len(rec) < n:
        rec = np.tile(rec, -(-n // len(rec)) + 1)
    t0 = int(rng.integers(0, len(rec) - n + 1))
    return rec[t0 : t0 + n]


def add_noise(y: np.ndarray, noise: np.ndarray, *, snr_db: float) -> np.ndarray:
    """``y`` plus ``noise`` scaled to ``snr_db`` below the speech's power."""
    noise = np.asarray(noise, np.float32)[: len(y)]
    scale = _rms(y) / (_rms(noise) * 10.0 ** (snr_db / 20.0) + 1e-12)
    return (y + scale * noise).astype(np.float32)


def band_limit(y: np.ndarray, *, sr: int, low_hz: float, high_hz: float) -> np.ndarray:
    """A fourth-order Butterworth band-pass (a small loudspeaker or microphone)."""
    from scipy.signal import butter, sosfilt

    high_hz = min(high_hz, 0.45 * sr)
    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    return _match_rms(sosfilt(sos, y).astype(np.float32), y)


def telephone(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Telephone channel: 300-3400 Hz, through 8 kHz sampling and 8-bit mu-law."""
    from scipy.signal import resample_poly

    y = band_limit(y, sr=sr, low_hz=300.0, high_hz=3400.0)
    g = sr // 8000 if sr % 8000 == 0 else None
    if g:
        y = resample_poly(y, 1, g).astype(np.float32)
    y = mu_law(y)
    if g:
        y = resample_poly(y, g, 1).astype(np.float32)
    return y


def mu_law(y: np.ndarray, *, bits: int = 8) -> np.ndarray:
    """Mu-law companding to ``bits`` bits and back (a cheap codec's quantisation noise)."""
    peak = float(np.max(np.abs(y))) or 1.0
    x = np.clip(y / peak, -1.0, 1.0)
    mu = 2**bits - 1
    c = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    c = np.round((c + 1) / 2 * mu) / mu * 2 - 1
    return (peak * np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu).astype(np.float32)


def equalise(y: np.ndarray, *, sr: int, gains_db, centres_hz) -> np.ndarray:
    """Peaking filters (Q about 1) at ``centres_hz`` with ``gains_db``: a cheap microphone's colour."""
    from scipy.signal import lfilter

    out = np.asarray(y, np.float64)
    for g, f0 in zip(gains_db, centres_hz):
        A = 10.0 ** (g / 40.0)
        w0 = 2 * np.pi * min(f0, 0.45 * sr) / sr
        alpha = np.sin(w0) / 2.0
        b = [1 + alpha * A, -2 * np.cos(w0), 1 - alpha * A]
        a = [1 + alpha / A, -2 * np.cos(w0), 1 - alpha / A]
        out = lfilter(b, a, out)
    return _match_rms(out.astype(np.float32), y)


def enrollment_copies(y: np.ndarray, *, sr: int, seed: int = 0) -> list[np.ndarray]:
    """Degraded copies of a person's enrollment speech, for multi-condition enrollment.

    A far room (RT60 0.5 s, as much reverberant as direct energy), speech-shaped
    noise at 10 dB, and both (noise at 15 dB): how the same voice sounds across a
    room or next to a television. Seeded, so an enrollment is reproducible.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y, np.float32)
    room = reverberate(y, synthetic_rir(sr=sr, rt60_s=0.5, drr_db=0.0, rng=rng))
    noisy = add_noise(y, speech_shaped_noise(y, len(y), rng=rng), snr_db=10.0)
    both = add_noise(room, speech_shaped_noise(y, len(y), rng=rng), snr_db=15.0)
    return [room, noisy, both]


def _rms(y) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


def _match_rms(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    r = _rms(out)
    return (out * (_rms(ref) / r) if r > 0 else out).astype(np.float32)


def _frames(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, np.float32)
    if len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    k = 1 + (len(y) - n) // (n // 2)
    idx = np.arange(n)[None, :] + (n // 2) * np.arange(k)[:, None]
    return y[idx]
