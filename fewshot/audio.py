"""Where audio comes in: decode, resample, check, cut silences, normalise.

Every function takes the signal first and everything else keyword-only, with
librosa's names (``y``, ``sr``). Resampling happens once, in :func:`load`.
Nothing here imports librosa: NumPy and soxr compute what it would.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ._native import quiet_stderr
from .config import FeatureConfig
from .errors import AudioError

logger = logging.getLogger(__name__)

#: Below this absolute level (dBFS) a frame is silence, however quiet the file.
SILENCE_FLOOR_DBFS = -60.0
#: The rate every input is resampled to (the default :class:`FeatureConfig`'s).
SAMPLE_RATE = FeatureConfig.sr


def load(source, *, sr: int = SAMPLE_RATE, sr_in: int | None = None, max_seconds: float | None = None) -> np.ndarray:
    """Decode a file (or take an array) as mono float32 at ``sr`` Hz.

    Parameters
    ----------
    source : str, os.PathLike or np.ndarray
        A file in any format libsndfile or ffmpeg reads (wav, flac, ogg, mp3,
        m4a, webm, ...), or samples of shape ``(n,)`` or ``(n, channels)``.
    sr : int
        Target sample rate in Hz.
    sr_in : int, optional
        Sample rate of ``source`` when it is an array (default: ``sr``).
    max_seconds : float, optional
        Decode at most this many seconds from the start.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioError
        When the file is missing, unreadable, empty or holds non-finite samples.
    """
    if isinstance(source, np.ndarray):
        name = "<array>"
        y, sr_native = np.asarray(source, dtype=np.float32), sr_in or sr
        if y.ndim == 2:
            y = downmix(y if y.shape[1] < y.shape[0] else y.T)
        if max_seconds is not None:
            y = y[: int(max_seconds * sr_native)]
    else:
        name = os.fspath(source)
        y, sr_native = _decode(Path(name), sr=sr, max_seconds=max_seconds)
    _check_samples(y, source=name)
    if sr_native != sr:
        y = resample(y, orig_sr=sr_native, target_sr=sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """soxr's high-quality resampler, fitted to ``ceil(n * target_sr / orig_sr)`` samples.

    The same samples as ``librosa.resample(..., res_type="soxr_hq")``: the tail
    is cut, or padded with zeros, to that length.
    """
    import soxr

    n = int(np.ceil(len(y) * target_sr / orig_sr))
    y_hat = soxr.resample(np.asarray(y, dtype=np.float32), orig_sr, target_sr, quality="soxr_hq")
    return np.pad(y_hat[:n], (0, max(0, n - len(y_hat)))).astype(np.float32, copy=False)


def _decode(path: Path, *, sr: int, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """libsndfile for what it reads (at the file's rate), ffmpeg for the rest (resampled to ``sr``)."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    import soundfile as sf

    try:
        with quiet_stderr(), sf.SoundFile(str(path)) as f:
            frames = -1 if max_seconds is None else int(max_seconds * f.samplerate)
            y = f.read(frames, dtype="float32", always_2d=True)
            return downmix(y), int(f.samplerate)
    except Exception as exc:  # libsndfile does not know the format: try ffmpeg
        sf_error = exc
    return _ffmpeg_decode(path, sr=sr, max_seconds=max_seconds, first_error=sf_error), sr


def downmix(y: np.ndarray) -> np.ndarray:
    """Mono from ``(n, channels)`` samples: their mean, or the loudest channel when they cancel.

    A stereo file with one channel phase-inverted (a wiring mistake) averages to
    near silence; when the mean is over 20 dB quieter than the loudest channel,
    that channel alone is used.
    """
    if y.shape[1] == 1:
        return y[:, 0]
    mono = y.mean(axis=1)
    rms = np.sqrt(np.mean(np.square(y, dtype=np.float64), axis=0))
    if rms.max() > 0 and np.sqrt(np.mean(np.square(mono, dtype=np.float64))) < 0.1 * rms.max():
        logger.warning("channels cancel when mixed (one is phase-inverted?); using channel %d", int(rms.argmax()))
        return np.ascontiguousarray(y[:, int(rms.argmax())])
    return mono


def _ffmpeg_decode(path: Path, *, sr: int, max_seconds: float | None, first_error) -> np.ndarray:
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(path, "cannot decode: ffmpeg is not installed")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path)]
    if max_seconds is not None:
        cmd += ["-t", f"{max(0.0, float(max_seconds)):.6f}"]
    cmd += ["-vn", "-ac", "2", "-ar", str(int(sr)), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0 or not proc.stdout:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = reason[-1] if reason else f"{type(first_error).__name__}: {first_error}"
        raise AudioError(path, f"unreadable or corrupt audio ({detail})")
    return downmix(np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32).reshape(-1, 2))


def _check_samples(y: np.ndarray, *, source) -> np.ndarray:
    if y.ndim != 1:
        raise AudioError(source, f"expected mono audio of shape (n,) or (n, channels), given y.shape={y.shape}")
    if y.size == 0:
        raise AudioError(source, "no audio samples (empty)")
    if not np.all(np.isfinite(y)):
        raise AudioError(source, "audio contains NaN or infinite samples")
    return y


def check_audio(y: np.ndarray, *, source="<array>") -> np.ndarray:
    """Reject audio that no model can use: empty, non-finite or all silence.

    Raises
    ------
    AudioError
    """
    y = _check_samples(np.asarray(y), source=source)
    peak = float(np.max(np.abs(y)))
    if peak == 0.0 or 20 * np.log10(peak) < SILENCE_FLOOR_DBFS:
        raise AudioError(source, "audio is all silence")
    return y


def speech_threshold_db(ref_db: float, *, top_db: float, floor_dbfs: float | None = SILENCE_FLOOR_DBFS) -> float:
    """The VAD's rule: frames louder than this (dBFS) are speech.

    ``ref_db`` is the loudest frame (of the file, or of the last seconds of a
    stream); speech is within ``top_db`` of it and never below ``floor_dbfs``.
    """
    return ref_db - top_db if floor_dbfs is None else max(ref_db - top_db, floor_dbfs)


def speech_intervals(
    y: np.ndarray, *, sr: int, top_db: float = FeatureConfig.top_db, frame_ms: float = 25.0, hop_ms: float = 10.0,
    floor_dbfs: float | None = SILENCE_FLOOR_DBFS,
) -> np.ndarray:
    """Sample intervals of speech found by an energy VAD.

    A frame is speech when its RMS is within ``top_db`` of the loudest frame and
    above ``floor_dbfs`` (:func:`speech_threshold_db`). With ``floor_dbfs=None``
    this is ``librosa.effects.split`` with the same frames.

    Returns
    -------
    intervals : np.ndarray [shape=(m, 2), dtype=int]
        ``[start, end)`` sample indices.
    """
    frame_length = int(sr * frame_ms / 1000)
    hop_length = int(sr * hop_ms / 1000)
    if y.size < frame_length:
        return np.zeros((0, 2), dtype=int)
    rms = frame_rms(y, frame_length=frame_length, hop_length=hop_length)
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    speech = db > speech_threshold_db(db.max(), top_db=top_db, floor_dbfs=floor_dbfs)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], speech.astype(np.int8), [0]])))
    intervals = edges.reshape(-1, 2) * hop_length
    return np.minimum(intervals, y.size)


def frame_rms(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of centred frames (``librosa.feature.rms(y=y, center=True)[0]``, zero padding).

    Sums of squares come from a cumulative sum in float64, so a long file
    needs no frame-by-sample matrix.

    Returns
    -------
    rms : np.ndarray [shape=(1 + n // hop_length,), dtype=float32]
    """
    half = frame_length // 2
    padded = np.pad(np.asarray(y, dtype=np.float64), (half, half))
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(padded))])
    starts = np.arange(0, len(padded) - frame_length + 1, hop_length)
    power = (cumulative[starts + frame_length] - cumulative[starts]) / frame_length
    return np.sqrt(np.maximum(power, 0.0)).astype(np.float32)


def trim_silence(
    y: np.ndarray, *, sr: int, top_db: float = FeatureConfig.top_db,
    max_silence_s: float | None = FeatureConfig.max_silence_s,
) -> np.ndarray:
    """Cut out every pause longer than ``max_silence_s``, and leading/trailing silence.

    With ``max_silence_s=None`` every non-speech frame is removed and the speech
    is concatenated (the evaluation protocol's VAD).
    """
    intervals = speech_intervals(y, sr=sr, top_db=top_db)
    if len(intervals) == 0:
        return y[:0]
    if max_silence_s is not None:
        max_gap = int(max_silence_s * sr)
        merged = [list(intervals[0])]
        for start, end in intervals[1:]:
            if start - merged[-1][1] <= max_gap:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        intervals = np.asarray(merged)
    return np.concatenate([y[s:e] for s, e in intervals]).astype(np.float32)


def normalize_loudness(y: np.ndarray, *, target_dbfs: float = FeatureConfig.target_dbfs) -> np.ndarray:
    """Scale ``y`` to an RMS of ``target_dbfs``, then limit peaks to 0.99."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms <= 0:
        return y
    y = y * (10 ** (target_dbfs / 20) / rms)
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def load_speech(source, *, config: FeatureConfig | None = None, sr_in: int | None = None) -> np.ndarray:
    """Load, check, cut silences and normalise: the speech the extractor embeds.

    Raises
    ------
    AudioError
        Missing, unreadable, empty, non-finite, silent, or less than
        ``config.min_speech_s`` seconds of speech.
    """
    cfg = config or FeatureConfig()
    name = "<array>" if isinstance(source, np.ndarray) else os.fspath(source)
    y = load(source, sr=cfg.sr, sr_in=sr_in)
    check_audio(y, source=name)
    speech = trim_silence(y, sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s)
    seconds = speech.size / cfg.sr
    if seconds < cfg.min_speech_s:
        raise AudioError(
            name,
            f"too little speech to use: {seconds:.2f} s found, need at least {cfg.min_speech_s:g} s",
        )
    return normalize_loudness(speech, target_dbfs=cfg.target_dbfs)
