"""Synthetic narrator audio for the fixture archive.org items, encoded as MP3."""

from __future__ import annotations

import io
from functools import cache

import numpy as np

from synth import synth_voice

SOURCE_RATE = 22050


def voice(f0: float, seconds: float, seed: int, sample_rate: int = SOURCE_RATE) -> np.ndarray:
    """A synthetic narrator (:func:`synth.synth_voice`) with one 0.8 s silence in the middle."""
    y = synth_voice(f0=f0, formants=[(600, 80), (1400, 110), (2600, 170)], seconds=seconds, sr=sample_rate, seed=seed)
    if seconds >= 2.0:
        mid = len(y) // 2
        y[mid : mid + int(0.8 * sample_rate)] = 0.0
    return y


@cache
def tone_mp3(f0: float, seconds: float, seed: int) -> bytes:
    """MP3 bytes (22.05 kHz mono, libsndfile's LAME encoder) of :func:`voice`."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, voice(f0, seconds, seed), SOURCE_RATE, format="MP3", subtype="MPEG_LAYER_III")
    return buf.getvalue()


def f0_for(reader_id: str) -> float:
    """A distinct pitch per narrator."""
    return 90.0 + (int(reader_id) * 37) % 160
