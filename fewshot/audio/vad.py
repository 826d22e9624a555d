"""The VAD and the speech the extractor embeds: find speech, cut long pauses, normalise loudness.

An energy VAD: a frame (25 ms, every 10 ms) is speech when it is within
``top_db`` of the loudest frame and above an absolute floor. Over a whole
input that is :func:`speech_intervals` and :func:`trim_silence`; over a stream
of blocks, :func:`speech_blocks`, where the loudest frame is the loudest heard
so far. :func:`load_speech` (whole) and :func:`stream_speech` (block by block)
join it to the decoder of :mod:`fewshot.audio.decode`, and give a :class:`Speech`: the
samples the extractor embeds, the VAD's intervals and the map back to file
time. Every function takes the signal first and the rest keyword-only.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

from ..config import FeatureConfig
from ..errors import AudioError
from .decode import BLOCK_S, check_samples, load, stream

#: Below this absolute level (dBFS) a frame is silence, however quiet the file.
SILENCE_FLOOR_DBFS = -60.0


@dataclass(frozen=True, eq=False)
class Speech:
    """The speech of a recording: what the extractor embeds, and where each piece of it lies in the file.

    Attributes
    ----------
    samples : np.ndarray [shape=(n,), dtype=float32]
        The speech at ``sr`` (the model's rate), the kept stretches joined
        end to end; loudness-normalised by :func:`load_speech` and
        :func:`speech`, as read by :func:`stream_speech` (whose pieces the
        caller normalises as it embeds them).
    intervals : np.ndarray [shape=(m, 2), dtype=int64]
        ``[start, end)`` samples of the file (at ``sr``) of each kept
        stretch, in order; their lengths add up to ``n``.
    sr : int
    source : str
        The file's name (``"<array>"`` for samples given in memory), for errors.
    """

    samples: np.ndarray
    intervals: np.ndarray
    sr: int
    source: str = "<array>"

    @property
    def seconds(self) -> float:
        """Seconds of speech."""
        return len(self.samples) / self.sr

    @property
    def joins(self) -> np.ndarray:
        """Where each interval begins in :attr:`samples` (and their length at the end), shape ``(m + 1,)``."""
        return np.concatenate([[0], np.cumsum(self.intervals[:, 1] - self.intervals[:, 0])]).astype(np.int64)

    def file_s(self, i):
        """Seconds of the file at speech sample(s) ``i`` (an index of :attr:`samples`, or an array of them)."""
        joins = self.joins
        k = np.clip(np.searchsorted(joins, i, side="right") - 1, 0, max(len(self.intervals) - 1, 0))
        return (self.intervals[k, 0] + (np.asarray(i) - joins[k])) / self.sr


def speech_threshold_db(ref_db: float, *, top_db: float, floor_dbfs: float | None = SILENCE_FLOOR_DBFS) -> float:
    """The VAD's rule: frames louder than this (dBFS) are speech.

    ``ref_db`` is the loudest frame (of the file, of a stream so far, or of the
    last seconds of a live stream); speech is within ``top_db`` of it and never
    below ``floor_dbfs``.
    """
    return ref_db - top_db if floor_dbfs is None else max(ref_db - top_db, floor_dbfs)


def speech_intervals(
    y: np.ndarray,
    *,
    sr: int,
    top_db: float = FeatureConfig.top_db,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
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
    db = 20 * np.log10(np.maximum(frame_rms(y, frame_length=frame_length, hop_length=hop_length), 1e-10))
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
    return padded_frame_rms(
        np.pad(np.asarray(y, dtype=np.float64), (half, half)), frame_length=frame_length, hop_length=hop_length
    )


def padded_frame_rms(padded: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of the frames ``padded[i * hop_length:][:frame_length]`` that fit in ``padded``."""
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(np.asarray(padded, dtype=np.float64)))])
    starts = np.arange(0, len(padded) - frame_length + 1, hop_length)
    power = (cumulative[starts + frame_length] - cumulative[starts]) / frame_length
    return np.sqrt(np.maximum(power, 0.0)).astype(np.float32)


def trim_silence(
    y: np.ndarray,
    *,
    sr: int,
    top_db: float = FeatureConfig.top_db,
    max_silence_s: float | None = FeatureConfig.max_silence_s,
) -> np.ndarray:
    """Cut out every pause longer than ``max_silence_s``, and leading/trailing silence.

    With ``max_silence_s=None`` every non-speech frame is removed and the speech
    is concatenated (the evaluation protocol's VAD).
    """
    intervals = kept_intervals(y, sr=sr, top_db=top_db, max_silence_s=max_silence_s)
    if len(intervals) == 0:
        return y[:0]
    return np.concatenate([y[s:e] for s, e in intervals]).astype(np.float32)


def kept_intervals(
    y: np.ndarray,
    *,
    sr: int,
    top_db: float = FeatureConfig.top_db,
    max_silence_s: float | None = FeatureConfig.max_silence_s,
) -> np.ndarray:
    """The VAD's intervals (:func:`speech_intervals`) with the pauses of up to ``max_silence_s`` inside them
    (``None``: none): what :func:`trim_silence` keeps, shape ``(m, 2)``."""
    intervals = speech_intervals(y, sr=sr, top_db=top_db).astype(np.int64)
    if len(intervals) == 0 or max_silence_s is None:
        return intervals
    max_gap = int(max_silence_s * sr)
    merged = [list(intervals[0])]
    for start, end in intervals[1:]:
        if start - merged[-1][1] <= max_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return np.asarray(merged, dtype=np.int64)


def speech_blocks(
    blocks,
    *,
    sr: int,
    top_db: float = FeatureConfig.top_db,
    max_silence_s: float | None = FeatureConfig.max_silence_s,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
    floor_dbfs: float | None = SILENCE_FLOOR_DBFS,
):
    """:func:`trim_silence` over a stream of blocks: the speech, piece by piece, in flat memory.

    Frames are those of :func:`speech_intervals`, in time of the whole input.
    The reference a frame is judged against is the loudest frame heard so far:
    frames are decided a block at a time (the last block together with the
    end of the input), against the loudest frame of that block and every
    earlier one. An input of one block thus gives exactly
    :func:`trim_silence`'s speech; on a longer one, blocks before its loudest
    frame may keep quieter frames than a reference from the whole input would,
    and never fewer. The absolute floor ``floor_dbfs`` holds throughout.

    Parameters
    ----------
    blocks : iterable of np.ndarray [shape=(n,)], or of ``(start_s, y)`` from :func:`stream`
        Consecutive mono samples at ``sr``.
    sr, top_db, max_silence_s, frame_ms, hop_ms, floor_dbfs
        As for :func:`speech_intervals` and :func:`trim_silence`.

    Yields
    ------
    start_s : float
        Where the piece starts, in seconds of the input.
    y : np.ndarray [shape=(n,), dtype=float32]
        Speech (with the pauses of up to ``max_silence_s`` inside it); the
        pieces joined are :func:`trim_silence`'s output.
    """
    frame_length, hop = int(sr * frame_ms / 1000), int(sr * hop_ms / 1000)
    half = frame_length // 2
    max_gap = -1 if max_silence_s is None else int(max_silence_s * sr)
    buf = np.zeros(half, np.float32)  # the input from sample first * hop - half on (zeros before it starts)
    first = n = gap_n = 0
    ref, spoken, gap = None, False, []

    def decide(y, *, final: bool):
        nonlocal buf, first, n, ref, spoken, gap, gap_n
        n += len(y)
        buf = np.concatenate([buf, y] + ([np.zeros(half, np.float32)] if final else []))
        if final and n < frame_length:
            return
        db = 20 * np.log10(np.maximum(padded_frame_rms(buf, frame_length=frame_length, hop_length=hop), 1e-10))
        if len(db) == 0:
            return
        ref = db.max() if ref is None else max(ref, db.max())
        speech = db > speech_threshold_db(ref, top_db=top_db, floor_dbfs=floor_dbfs)
        base = first * hop - half  # the input's sample at buf[0]
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(speech.astype(np.int8))) + 1, [len(speech)]])
        for a, b in itertools.pairwise(bounds):
            start, end = (first + a) * hop, min((first + b) * hop, n)
            piece = buf[start - base : end - base].copy()
            if speech[a]:
                if spoken and gap_n <= max_gap:
                    yield from gap
                yield start / sr, piece
                spoken, gap, gap_n = True, [], 0
            elif spoken:
                gap_n += len(piece)
                gap = gap + [(start / sr, piece)] if gap_n <= max_gap else []
        buf = buf[len(db) * hop :]
        first += len(db)

    held = None
    for block in blocks:
        y = block[1] if isinstance(block, tuple) else np.asarray(block, dtype=np.float32)
        if held is not None:
            yield from (p for p in decide(held, final=False) if len(p[1]))
        held = y
    if held is not None:
        yield from (p for p in decide(held, final=True) if len(p[1]))


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


def check_audio(y: np.ndarray, *, source="<array>") -> np.ndarray:
    """Reject audio that no model can use: empty, non-finite or all silence.

    Raises
    ------
    AudioError
    """
    y = check_samples(np.asarray(y), source=source)
    if is_silent(float(np.max(np.abs(y)))):
        raise AudioError(source, "audio is all silence")
    return y


def load_speech(source, *, config: FeatureConfig | None = None, sr_in: int | None = None) -> Speech:
    """Load, check, cut silences and normalise: the speech the extractor embeds, as a :class:`Speech`.

    Raises
    ------
    AudioError
        Missing, unreadable, empty, non-finite, silent, or less than
        ``config.min_speech_s`` seconds of speech.
    """
    cfg = config or FeatureConfig()
    return speech(load(source, sr=cfg.sr, sr_in=sr_in), config=cfg, source=_name(source))


def speech(y: np.ndarray, *, config: FeatureConfig | None = None, source="<array>") -> Speech:
    """:func:`load_speech` of decoded audio (mono at ``config.sr``); errors name ``source``."""
    cfg = config or FeatureConfig()
    check_audio(y, source=source)
    intervals = kept_intervals(y, sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s)
    kept = np.concatenate([y[s:e] for s, e in intervals]).astype(np.float32) if len(intervals) else y[:0]
    check_speech_seconds(kept.size / cfg.sr, config=cfg, source=source)
    return Speech(normalize_loudness(kept, target_dbfs=cfg.target_dbfs), intervals, cfg.sr, str(source))


def stream_speech(
    source,
    *,
    config: FeatureConfig | None = None,
    sr_in: int | None = None,
    block_s: float | None = None,
    on_block=None,
    blocks=None,
):
    """:func:`load_speech` for input of any length: its speech piece by piece, in flat memory, not normalised.

    The input is read by :func:`fewshot.audio.decode.stream` (or taken from
    ``blocks``, that stream already opened) and its speech found by
    :func:`speech_blocks`. Loudness is left to the caller, who embeds pieces
    of it: each is best normalised on its own, as a training crop is (the
    CNN's mean normalisation undoes a gain only above the log-mel floor).

    Parameters
    ----------
    source : str, os.PathLike or np.ndarray
    config : FeatureConfig, optional
    sr_in : int, optional
        Sample rate of ``source`` when it is an array.
    block_s : float, optional
        Seconds read at a time (default: :data:`fewshot.audio.decode.BLOCK_S`).
    on_block : callable, optional
        Called with the seconds of each block read.
    blocks : iterable, optional
        The ``(start_s, y)`` blocks of :func:`fewshot.audio.decode.stream` of ``source``, when it is already being read.

    Yields
    ------
    piece : Speech
        One stretch of speech (pauses of up to ``max_silence_s`` inside), one interval of the file, not normalised.

    Raises
    ------
    AudioError
        As :func:`load_speech`; silence and too little speech are known, and
        raised, at the end of the input.
    """
    cfg = config or FeatureConfig()
    peak, kept = 0.0, 0

    def read():
        nonlocal peak
        for _, y in (
            blocks if blocks is not None else stream(source, sr=cfg.sr, sr_in=sr_in, block_s=block_s or BLOCK_S)
        ):
            peak = max(peak, float(np.max(np.abs(y))))
            yield y
            if on_block is not None:
                on_block(len(y) / cfg.sr)

    for start_s, y in speech_blocks(read(), sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s):
        kept += len(y)
        start = round(start_s * cfg.sr)
        yield Speech(y, np.array([[start, start + len(y)]], dtype=np.int64), cfg.sr, _name(source))
    if is_silent(peak):
        raise AudioError(_name(source), "audio is all silence")
    check_speech_seconds(kept / cfg.sr, config=cfg, source=_name(source))


def is_silent(peak: float) -> bool:
    """Whether a signal whose largest sample is ``peak`` is below the silence floor throughout."""
    return peak == 0.0 or 20 * np.log10(peak) < SILENCE_FLOOR_DBFS


def check_speech_seconds(seconds: float, *, config: FeatureConfig, source) -> None:
    """:class:`AudioError` naming ``source`` when ``seconds`` of speech are fewer than ``config.min_speech_s``."""
    if seconds < config.min_speech_s:
        raise AudioError(
            source, f"too little speech to use: {seconds:.2f} s found, need at least {config.min_speech_s:g} s"
        )


def _name(source) -> str:
    return "<array>" if isinstance(source, np.ndarray) else os.fspath(source)
