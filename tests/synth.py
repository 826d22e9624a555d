"""The one place test audio is made: synthetic voices and espeak-ng speech.

- :func:`synth_voice`: a glottal pulse train through formant resonators (no
  external program), :data:`VOICES` three of them;
- :func:`speak` / :func:`espeak`: espeak-ng speech as an array / a WAV file,
  :data:`ESPEAK_VOICES` three voices no extractor confuses, :data:`TEXTS` to read;
  :func:`spoken`: continuous espeak-ng speech of one voice, its pauses cut out;
- :func:`conversation`: voices taking turns, with the reference turns.

The formant voices differ in pitch and in a fixed spectral envelope, much as one
voice through three microphones would: an extractor trained to ignore the
microphone tells them apart less well than the espeak-ng voices, which differ
in how they speak. Tests of who speaks when use the espeak-ng voices.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SR = 16000
ROOT = Path(__file__).resolve().parents[1]


def synth_voice(
    *, f0: float, formants, seconds: float, sr: int = SR, seed: int = 0, pause_every_s: float = 2.0
) -> np.ndarray:
    """A synthetic voiced "speaker": a jittered glottal pulse train through formant resonators,
    shaped into syllables, with short pauses every ``pause_every_s``."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = f0 * (
        1 + 0.04 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n)
    )
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

    sf.write(str(path), y, sr, subtype="PCM_16")
    return Path(path)


#: Voices no extractor confuses: espeak-ng variants (female, low male, Klatt), pitch and speed.
ESPEAK_VOICES = {
    "ann": dict(voice="en+f2", pitch=80, speed=165),
    "bob": dict(voice="en-us+m3", pitch=20, speed=150),
    "cyd": dict(voice="en+klatt", pitch=50, speed=160),
}

TEXTS = [
    "The North Wind and the Sun were disputing which was the stronger, when a traveller came along "
    "wrapped in a warm cloak. They agreed that the one who first succeeded in making the traveller take "
    "his cloak off should be considered stronger than the other.",
    "Then the North Wind blew as hard as he could, but the more he blew the more closely did the traveller "
    "fold his cloak around him; and at last the North Wind gave up the attempt.",
    "Then the Sun shined out warmly, and immediately the traveller took off his cloak. And so the North "
    "Wind was obliged to confess that the Sun was the stronger of the two.",
    "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing "
    "to do: once or twice she had peeped into the book her sister was reading.",
    "A Fox one day spied a beautiful bunch of ripe grapes hanging from a vine trained along the branches "
    "of a tree. The grapes seemed ready to burst with juice, and the Fox's mouth watered as he gazed "
    "longingly at them.",
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived "
    "in Liberty, and dedicated to the proposition that all men are created equal.",
]


def speak(text: str, *, voice: str, pitch: int = 50, speed: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz mono float32 (espeak-ng is installed by scripts/setup.sh)."""
    import io

    import soundfile as sf

    from fewshot.audio.decode import load

    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run scripts/setup.sh")
    raw = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    y, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return load(y, sr=SR, sr_in=sr)


def espeak(path, text: str, *, voice: str, pitch: int = 50, speed: int = 150) -> Path:
    """:func:`speak` into the WAV file ``path``."""
    return write_wav(path, speak(text, voice=voice, pitch=pitch, speed=speed))


def voice_audio(name: str, texts) -> np.ndarray:
    """Several passages by the same voice, with 0.3 s pauses."""
    pause = np.zeros(int(0.3 * SR), np.float32)
    parts = []
    for t in texts:
        parts += [speak(t, **ESPEAK_VOICES[name]), pause]
    return np.concatenate(parts)


@functools.lru_cache(maxsize=8)
def _spoken_stream(name: str) -> np.ndarray:
    """Every passage of :data:`TEXTS` read by the espeak-ng voice ``name``, pauses cut out (about a minute)."""
    from fewshot.audio.vad import speech_intervals

    y = voice_audio(name, TEXTS)
    return np.concatenate([y[a:b] for a, b in speech_intervals(y, sr=SR)])


def spoken(name: str, seconds: float, *, offset_s: float = 0.0) -> np.ndarray:
    """``seconds`` of continuous speech by the espeak-ng voice ``name``, from ``offset_s`` into its reading."""
    y = _spoken_stream(name)
    a, n = int(offset_s * SR), int(seconds * SR)
    if a + n > len(y):
        raise ValueError(f"{name} reads {len(y) / SR:.1f} s in all; {offset_s} + {seconds} s asked")
    return y[a : a + n].copy()


#: Where conversations start in each espeak-ng voice's reading: the first 20 s are for enrollment.
CONVERSATION_OFFSET_S = 20.0


def conversation(plan, *, seed: int = 10, voices: str = "formant"):
    """Voices of ``plan`` ``[(voice, seconds, pause after)]`` taking turns after 0.5 s of silence,
    and the reference turns ``(start_s, end_s, voice)``.

    ``voices="espeak"`` takes each turn from the next part of the espeak-ng voice's reading
    (after :data:`CONVERSATION_OFFSET_S`); ``"formant"``, from :func:`synth_voice`.
    """
    parts, reference, t = [np.zeros(SR // 2, np.float32)], [], 0.5
    read = dict.fromkeys(ESPEAK_VOICES, CONVERSATION_OFFSET_S)
    for k, (who, seconds, pause) in enumerate(plan):
        if voices == "espeak":
            speech = spoken(who, seconds, offset_s=read[who])
            read[who] += seconds
        else:
            speech = synth_voice(**VOICES[who], seconds=seconds, seed=seed + k, pause_every_s=10.0)
        parts += [speech, np.zeros(int(pause * SR), np.float32)]
        reference.append((t, t + seconds, who))
        t += seconds + pause
    return np.concatenate(parts), reference
