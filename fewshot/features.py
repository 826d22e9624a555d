"""Log-mel spectrogram "images" and the fixed-length segments the CNN embeds.

Segments are 3 s long with a 1.5 s hop (see :class:`fewshot.config.FeatureConfig`):
long enough for a stable voiceprint, short enough that 15 s of enrollment speech
still gives the SVM about nine training points per person.
"""

from __future__ import annotations

import numpy as np

from .config import FeatureConfig


def log_mel(y: np.ndarray, *, config: FeatureConfig | None = None) -> np.ndarray:
    """Natural-log mel power spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
        Mono audio at ``config.sr`` (a batch of equal-length signals along the
        leading axes).

    Returns
    -------
    S : np.ndarray [shape=(..., n_frames, n_mels), dtype=float32]
        Time first, as the CNN reads it.
    """
    import librosa

    cfg = config or FeatureConfig()
    S = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float32),
        sr=cfg.sr,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin_hz,
        fmax=cfg.fmax_hz,
        power=2.0,
        center=True,
    )
    return np.swapaxes(np.log(S + 1e-6), -1, -2).astype(np.float32)


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

    from .persistence import atomic_write_bytes

    cfg = config or FeatureConfig()
    S_db = 10 * np.log10(np.exp(log_mel(y, config=cfg).T))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    img = librosa.display.specshow(
        S_db, sr=cfg.sr, hop_length=cfg.hop_length, x_axis="time", y_axis="mel",
        fmin=cfg.fmin_hz, fmax=cfg.fmax_hz, ax=ax, cmap="magma",
    )
    fig.colorbar(img, ax=ax, format="%+.0f dB")
    ax.set_title(title or f"log-mel spectrogram ({cfg.n_mels} bands, {cfg.hop_ms:g} ms hop)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
