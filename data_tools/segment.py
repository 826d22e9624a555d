"""Silence removal, fixed-length segments and spectrogram images.

Contract
--------
Input: mono ``int16`` samples.
Output: :func:`remove_silences` drops every stretch quieter than ``top_db``
below the loudest frame that lasts longer than ``max_silence_s`` (shorter
pauses stay); :func:`fixed_segments` cuts the result into equal segments and
drops the shorter tail; :func:`save_spectrogram` draws a log-mel PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FRAME_LENGTH = 1024
HOP_LENGTH = 256


def nonsilent_intervals(samples: np.ndarray, sample_rate: int, top_db: float = 35.0) -> np.ndarray:
    """``(start, end)`` sample indices of non-silent stretches (energy VAD)."""
    import librosa

    if len(samples) == 0:
        return np.zeros((0, 2), dtype=int)
    y = np.asarray(samples, dtype=np.float32)
    if np.issubdtype(np.asarray(samples).dtype, np.integer):
        y = y / 32768.0
    if not np.any(y):
        return np.zeros((0, 2), dtype=int)
    return librosa.effects.split(y, top_db=top_db, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH)


def remove_silences(samples: np.ndarray, sample_rate: int, top_db: float = 35.0,
                    max_silence_s: float = 0.5) -> np.ndarray:
    """Drop silences longer than ``max_silence_s``; keep shorter pauses.

    Parameters
    ----------
    samples : numpy.ndarray
        Mono samples (``int16`` or float in [-1, 1]).
    sample_rate : int
        Sample rate in Hz.
    top_db : float
        Frames this many dB below the loudest frame count as silence.
    max_silence_s : float
        Longest silence kept, in seconds.

    Returns
    -------
    numpy.ndarray
        The samples with long silences removed (same dtype).
    """
    intervals = nonsilent_intervals(samples, sample_rate, top_db)
    if len(intervals) == 0:
        return samples[:0]
    max_gap = int(round(max_silence_s * sample_rate))
    keep = []
    previous_end = 0
    for start, end in intervals:
        if start - previous_end <= max_gap:
            start = previous_end
        keep.append(samples[start:end])
        previous_end = end
    if len(samples) - previous_end <= max_gap:
        keep.append(samples[previous_end:])
    return np.concatenate(keep)


def fixed_segments(samples: np.ndarray, sample_rate: int, seconds: float = 5.0) -> list[np.ndarray]:
    """Cut ``samples`` into consecutive segments of ``seconds``; drop the tail."""
    size = int(round(seconds * sample_rate))
    if size <= 0:
        raise ValueError("segment length must be positive")
    count = len(samples) // size
    return [samples[i * size:(i + 1) * size] for i in range(count)]


def save_spectrogram(samples: np.ndarray, sample_rate: int, path: str | os.PathLike,
                     n_mels: int = 64) -> None:
    """Save a log-mel spectrogram of ``samples`` as a PNG (Agg backend, atomic)."""
    import librosa
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y = np.asarray(samples, dtype=np.float32)
    if np.issubdtype(np.asarray(samples).dtype, np.integer):
        y = y / 32768.0
    mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=FRAME_LENGTH,
                                         hop_length=HOP_LENGTH, n_mels=n_mels)
    db = librosa.power_to_db(mel, ref=np.max if np.any(mel) else 1.0)
    fig = Figure(figsize=(4, 2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma")
    ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
