"""Audio the tests make for themselves: synthetic voices and espeak-ng speech."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SR = 16000
ROOT = Path(__file__).resolve().parents[1]


def synth_voice(*, f0: float, formants, seconds: float, sr: int = SR, seed: int = 0,
                pause_every_s: float = 2.0) -> np.ndarray:
    """A synthetic voiced "speaker": a jittered glottal pulse train through formant resonators,
    shaped into syllables, with short pauses every ``pause_every_s``."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = f0 * (1 + 0.04 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n))
    phase = 2 * np.pi * np.cumsum(f) / sr
    source = (np.mod(phase, 2 * np.pi) / np.pi - 1.0) ** 3
    y = np.zeros(n)
    for fc, bw in formants:
        r = np.exp(-np.pi * bw / sr)
        y += lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], source)
    syll = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))
    gate = (np.mod(t, pause_every_s) < pause_every_s - 0.25).astype(float)
    y = y * syll * gate + 0.0005 * rng.standard_normal(n)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)



VOICES = {
    "ann": dict(f0=220.0, formants=[(850, 90), (1650, 120), (2900, 180)]),
    "bob": dict(f0=105.0, formants=[(500, 70), (1100, 100), (2400, 160)]),
    "cat": dict(f0=165.0, formants=[(350, 60), (2300, 140), (3100, 200)]),
}



def write_wav(path, y, sr: int = SR) -> Path:
    import soundfile as sf

    sf.write(str(path), y, sr)
    return Path(path)



def espeak(path, text: str, *, voice: str, pitch: int = 50, speed: int = 150) -> Path:
    """Speak ``text`` with espeak-ng into ``path`` (skips the test where espeak-ng is missing)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
                   check=True, capture_output=True)
    return Path(path)
