"""MP3 to mono 16 kHz 16-bit PCM.

Contract
--------
Input: audio files ffmpeg can read (the chapter MP3s).
Output: ``int16`` sample arrays at :data:`SAMPLE_RATE`, mono, decoded and
resampled by ffmpeg (the binary pydub is configured with), optionally cut to
a maximum length; :func:`write_wav` and :func:`mp3_to_wav` store them as
16-bit WAV files atomically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


class ConversionError(Exception):
    """ffmpeg could not decode a file."""


def ffmpeg_binary() -> str:
    """Path of the ffmpeg executable pydub uses."""
    from pydub import AudioSegment

    name = AudioSegment.converter or "ffmpeg"
    found = shutil.which(name)
    if found is None:
        raise ConversionError(f"{name} not found; install ffmpeg")
    return found


def decode_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
                 max_seconds: float | None = None) -> np.ndarray:
    """Decode ``path`` to mono ``int16`` samples at ``sample_rate``.

    Parameters
    ----------
    path : path-like
        Input audio file.
    sample_rate : int
        Output rate in Hz.
    max_seconds : float, optional
        Decode at most this many seconds from the start.

    Returns
    -------
    numpy.ndarray
        1-D ``int16`` array.
    """
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", os.fspath(path)]
    if max_seconds is not None:
        cmd += ["-t", f"{max(0.0, float(max_seconds)):.6f}"]
    cmd += ["-vn", "-ac", "1", "-ar", str(int(sample_rate)), "-f", "s16le", "-acodec", "pcm_s16le", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise ConversionError(f"ffmpeg failed on {path}: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.int16)


def join_and_trim(paths: Iterable[str | os.PathLike], max_seconds: float | None,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
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
        samples = decode_audio(path, sample_rate, remaining)
        if limit is not None:
            samples = samples[: limit - total]
        parts.append(samples)
        total += len(samples)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM WAV atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.asarray(samples, dtype=np.int16), sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mp3_to_wav(src: str | os.PathLike, dst: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               max_seconds: float | None = None) -> float:
    """Convert one file to mono 16-bit WAV and return its duration in seconds."""
    samples = decode_audio(src, sample_rate, max_seconds)
    write_wav(dst, samples, sample_rate)
    return len(samples) / sample_rate
