"""Chapters to fixed-length WAV segments.

Contract
--------
Input: audio files the fewshot decoder reads (the chapter MP3s).
Output: :func:`join_and_trim` gives mono float32 samples at the requested
rate, decoded by :func:`fewshot.audio.decode.load` (files past the limit are not
decoded); :func:`fixed_segments` cuts speech into equal segments and drops the
shorter tail; :func:`write_wav` stores 16-bit WAV atomically. Pauses are cut by
the fewshot VAD (:func:`fewshot.audio.vad.trim_silence`), spectrogram images are
drawn by :func:`fewshot.audio.features.save_spectrogram_png`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable

import numpy as np

from fewshot.audio.decode import SAMPLE_RATE, load
from fewshot.persistence import atomic_write_bytes


def join_and_trim(
    paths: Iterable[str | os.PathLike], max_seconds: float | None, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Decode ``paths`` in order, join them and keep at most ``max_seconds``.

    Files past the limit are not decoded at all.
    """
    limit = None if max_seconds is None else int(round(max_seconds * sample_rate))
    parts: list[np.ndarray] = []
    total = 0
    for path in paths:
        if limit is not None and total >= limit:
            break
        remaining = None if limit is None else (limit - total) / sample_rate
        samples = load(path, sr=sample_rate, max_seconds=remaining)
        if limit is not None:
            samples = samples[: limit - total]
        parts.append(samples)
        total += len(samples)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def fixed_segments(samples: np.ndarray, sample_rate: int, seconds: float = 5.0) -> list[np.ndarray]:
    """Cut ``samples`` into consecutive segments of ``seconds``; drop the tail."""
    size = int(round(seconds * sample_rate))
    if size <= 0:
        raise ValueError("segment length must be positive")
    count = len(samples) // size
    return [samples[i * size : (i + 1) * size] for i in range(count)]


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM WAV atomically (float samples in [-1, 1], or int16)."""
    import soundfile as sf

    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, buf.getvalue())
