"""Log-mel spectrogram "images" and the fixed-length segments the CNN embeds.

Segments are 3 s long with a 1.5 s hop (see :class:`fewshot.config.FeatureConfig`):
long enough for a stable voiceprint, short enough that 15 s of enrollment speech
still gives the SVM about nine training points per person.
"""

from __future__ import annotations

import functools

import numpy as np

from ..config import FeatureConfig


def log_mel(y: np.ndarray, *, config: FeatureConfig | None = None) -> np.ndarray:
    """Natural-log mel power spectrogram (librosa's ``melspectrogram`` in NumPy).

    Frames are centred (the signal is padded with ``n_fft // 2`` zeros on both
    sides), windowed by a periodic Hann window of ``win_length`` samples centred
    in ``n_fft``, and their power spectra summed by Slaney-normalised mel
    filters: the same numbers as ``librosa.feature.melspectrogram`` with
    ``center=True, pad_mode="constant", power=2``, without importing librosa.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
        Mono audio at ``config.sr`` (a batch of equal-length signals along the
        leading axes).

    Returns
    -------
    S : np.ndarray [shape=(..., n_frames, n_mels), dtype=float32]
        Time first, as the CNN reads it; ``n_frames = 1 + n // hop_length``.
    """
    cfg = config or FeatureConfig()
    y = np.asarray(y, dtype=np.float32)
    pad = [(0, 0)] * (y.ndim - 1) + [(cfg.n_fft // 2, cfg.n_fft // 2)]
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, pad), cfg.n_fft, axis=-1)[..., :: cfg.hop_length, :]
    window, basis = _analysis(cfg.sr, cfg.n_fft, cfg.win_length, cfg.n_mels, cfg.fmin_hz, cfg.fmax_hz)
    spectrum = np.fft.rfft(frames * window.astype(np.float64), axis=-1)  # NumPy's FFT is fastest in float64
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    with _blas().limit(limits=1, user_api="blas"):
        mel = power @ basis.T
    return np.log(mel + np.float32(1e-6)).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=1)
def _blas():
    """The BLAS thread pools of this process.

    The mel projection runs on one BLAS thread: on a busy CPU, waking a pool of
    BLAS threads for this small product (and their spinning after it) costs
    more than the product itself, and slows the CNN that runs next.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.lru_cache(maxsize=8)
def _analysis(sr: int, n_fft: int, win_length: int, n_mels: int, fmin: float, fmax: float):
    """The analysis window (``n_fft`` long) and the mel filterbank (``(n_mels, n_fft // 2 + 1)``, float32)."""
    n = np.arange(win_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    window = np.zeros(n_fft)
    window[left : left + win_length] = hann
    return window.astype(np.float32), mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular filters on the Slaney mel scale, each of unit area (``librosa.filters.mel``'s defaults).

    Returns
    -------
    weights : np.ndarray [shape=(n_mels, n_fft // 2 + 1), dtype=float32]
    """
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None].astype(np.float32)


#: Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
_MEL_LINEAR_HZ, _MEL_BREAK_HZ, _MEL_LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0


def _hz_to_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    brk = _MEL_BREAK_HZ / _MEL_LINEAR_HZ
    return np.where(
        hz >= _MEL_BREAK_HZ, brk + np.log(np.maximum(hz, 1e-10) / _MEL_BREAK_HZ) / _MEL_LOG_STEP, hz / _MEL_LINEAR_HZ
    )


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    brk = _MEL_BREAK_HZ / _MEL_LINEAR_HZ
    return np.where(mel >= brk, _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mel - brk)), _MEL_LINEAR_HZ * mel)


def segment(S: np.ndarray, *, seg_frames: int, hop_frames: int) -> np.ndarray:
    """Cut a spectrogram into overlapping fixed-length segments.

    Input shorter than one segment is repeated (wrapped) up to ``seg_frames``; the
    tail that does not fill a whole hop is covered by one last segment aligned to
    the end, so no speech is dropped.

    Parameters
    ----------
    S : np.ndarray [shape=(n_frames, n_mels)]
    seg_frames, hop_frames : int

    Returns
    -------
    segments : np.ndarray [shape=(n_seg, seg_frames, n_mels)]

    Examples
    --------
    >>> segment(np.zeros((10, 4)), seg_frames=6, hop_frames=3).shape
    (2, 6, 4)
    >>> segment(np.zeros((2, 4)), seg_frames=6, hop_frames=3).shape
    (1, 6, 4)
    """
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n_frames, n_mels) array, given S.shape={S.shape}")
    if seg_frames <= 0 or hop_frames <= 0:
        raise ValueError(f"seg_frames and hop_frames must be positive, given {seg_frames}, {hop_frames}")
    n = S.shape[0]
    if n <= seg_frames:
        reps = int(np.ceil(seg_frames / n))
        return np.tile(S, (reps, 1))[None, :seg_frames]
    starts = list(range(0, n - seg_frames + 1, hop_frames))
    if starts[-1] + seg_frames < n:
        starts.append(n - seg_frames)
    return np.stack([S[s : s + seg_frames] for s in starts])


def l2_normalize(E: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero, never NaN)."""
    E = np.asarray(E)
    E = E.astype(np.result_type(E.dtype, np.float32), copy=False)
    return E / np.maximum(np.linalg.norm(E, axis=-1, keepdims=True), 1e-12)


def save_spectrogram_png(y: np.ndarray, path, *, config: FeatureConfig | None = None, title: str = "") -> None:
    """Draw the log-mel spectrogram of ``y`` as a PNG for a person to look at (written atomically)."""
    import io

    import librosa.display
    from matplotlib.figure import Figure

    from ..persistence import atomic_write_bytes

    cfg = config or FeatureConfig()
    S_db = 10 * np.log10(np.exp(log_mel(y, config=cfg).T))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    img = librosa.display.specshow(
        S_db,
        sr=cfg.sr,
        hop_length=cfg.hop_length,
        x_axis="time",
        y_axis="mel",
        fmin=cfg.fmin_hz,
        fmax=cfg.fmax_hz,
        ax=ax,
        cmap="magma",
    )
    fig.colorbar(img, ax=ax, format="%+.0f dB")
    ax.set_title(title or f"log-mel spectrogram ({cfg.n_mels} bands, {cfg.hop_ms:g} ms hop)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
