"""The speech of a recording as one timeline, and the embeddings of its short windows.

:class:`SpeechTimeline` joins the VAD's speech (:func:`fewshot.audio.vad.speech_intervals`)
without its pauses and maps it back to the file; :func:`embed_windows` embeds
overlapping windows of it from one log-mel pass, in bounded memory
(:meth:`fewshot.model.extractor.Extractor.windows`). A recording read from a file
(:meth:`SpeechTimeline.scan`) is read twice, block by block: once to find its
speech and its loudness, once to embed the speech, so memory does not grow
with its length.
"""

from __future__ import annotations

import numpy as np

from ..audio.vad import is_silent, normalize_loudness, padded_frame_rms, speech_intervals, speech_threshold_db
from ..config import FeatureConfig
from ..model.extractor import window_starts


class SpeechTimeline:
    """The VAD's speech of a recording joined end to end, and where each piece lies in the file.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        The recording at ``config.sr``.
    config : FeatureConfig

    Attributes
    ----------
    intervals : np.ndarray [shape=(m, 2)]
        ``[start, end)`` samples of the file's speech.
    speech : np.ndarray [shape=(k,)]
        That speech, joined and loudness-normalised.
    joins : np.ndarray [shape=(m + 1,)]
        Where each interval begins in ``speech`` (and its length at the end).
    """

    def __init__(self, y: np.ndarray, *, config: FeatureConfig):
        self.sr = config.sr
        self.intervals = speech_intervals(y, sr=config.sr, top_db=config.top_db)
        pieces = [y[s:e] for s, e in self.intervals]
        self.joins = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
        joined = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        self.speech = normalize_loudness(joined, target_dbfs=config.target_dbfs)
        self._read = None

    @classmethod
    def of_intervals(cls, intervals, *, sr: int):
        """The timeline of speech at ``intervals`` (``[start, end)`` samples, in order, apart), without its
        samples: a live stream's speech so far, which :class:`fewshot.turns.decoder.TurnDecoder` maps back to the stream."""
        self = cls.__new__(cls)
        self.sr, self.speech, self._read = sr, None, None
        self.intervals = np.asarray(intervals, dtype=np.int64).reshape(-1, 2)
        self.joins = np.concatenate([[0], np.cumsum(self.intervals[:, 1] - self.intervals[:, 0])]).astype(np.int64)
        return self

    @classmethod
    def scan(
        cls, source, *, config: FeatureConfig, sr_in: int | None = None, block_s: float | None = None, blocks=None
    ):
        """The timeline of a file (or array) read block by block, without holding its speech.

        Its intervals are those ``SpeechTimeline(load(source))`` finds (the same
        frames, judged against the loudest frame of the whole input), and
        :meth:`chunks` gives the same speech, read again and scaled by the same
        gain (:func:`~fewshot.audio.decode.normalize_loudness` over all of it).
        ``blocks``: the ``(start_s, y)`` blocks of :func:`fewshot.audio.decode.stream` of
        ``source`` (``block_s`` long), when it is already being read.

        Raises
        ------
        AudioError
            For a file that cannot be read, non-finite samples, or silence.
        """
        from ..audio.decode import BLOCK_S, stream
        from ..errors import AudioError

        sr, block_s = config.sr, block_s or BLOCK_S
        frame, hop = int(sr * 0.025), int(sr * 0.010)  # speech_intervals' frames
        half = frame // 2
        n, buf, tail, rms, power, peaks = 0, np.zeros(half), np.zeros(0), [], [], []
        for _, y in stream(source, sr=sr, sr_in=sr_in, block_s=block_s) if blocks is None else blocks:
            n += len(y)
            buf = np.concatenate([buf, y.astype(np.float64)])
            rms.append(padded_frame_rms(buf, frame_length=frame, hop_length=hop))
            buf = buf[len(rms[-1]) * hop :]
            tail = np.concatenate([tail, y.astype(np.float64)])
            k = len(tail) // hop
            hops = tail[: k * hop].reshape(k, hop)
            power.append(np.sum(hops**2, axis=1))
            peaks.append(np.max(np.abs(hops), axis=1, initial=0.0))
            tail = tail[k * hop :]
        rms.append(padded_frame_rms(np.concatenate([buf, np.zeros(half)]), frame_length=frame, hop_length=hop))
        power.append([np.sum(tail**2)] if len(tail) else [])
        peaks.append([np.max(np.abs(tail))] if len(tail) else [])
        power, peaks = np.concatenate(power), np.concatenate(peaks)
        if is_silent(float(peaks.max(initial=0.0))):
            raise AudioError("<array>" if isinstance(source, np.ndarray) else str(source), "audio is all silence")
        self = cls.__new__(cls)
        self.sr, self.intervals = sr, np.zeros((0, 2), dtype=int)
        if n >= frame:  # speech_intervals' rule, on the frames of the whole input
            db = 20 * np.log10(np.maximum(np.concatenate(rms), 1e-10))
            speech = db > speech_threshold_db(db.max(), top_db=config.top_db)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], speech.astype(np.int8), [0]])))
            self.intervals = np.minimum(edges.reshape(-1, 2) * hop, n)
        lengths = self.intervals[:, 1] - self.intervals[:, 0]
        self.joins = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        spans = [slice(a // hop, -(-b // hop)) for a, b in self.intervals]
        total = float(sum(np.sum(power[s]) for s in spans))
        gain = 1.0
        if total > 0:
            gain = 10 ** (config.target_dbfs / 20) / np.sqrt(total / self.joins[-1])
            top = gain * max(float(np.max(peaks[s])) for s in spans)
            gain = gain * (0.99 / top if top > 0.99 else 1.0)
        self._read = (source, sr_in, block_s, gain)
        return self

    @property
    def n_speech(self) -> int:
        """Samples of speech in the timeline."""
        return int(self.joins[-1])

    def chunks(self):
        """The timeline's speech, joined and loudness-normalised, in order: :attr:`speech` itself, or, for a
        timeline of :meth:`scan`, the input read again block by block."""
        if self._read is None:
            yield self.speech
            return
        from ..audio.decode import stream

        source, sr_in, block_s, gain = self._read
        k, start = 0, 0
        for _, y in stream(source, sr=self.sr, sr_in=sr_in, block_s=block_s):
            end = start + len(y)
            pieces = []
            while k < len(self.intervals) and self.intervals[k, 0] < end:
                a, b = self.intervals[k]
                pieces.append(y[max(a, start) - start : min(b, end) - start])
                if b > end:
                    break
                k += 1
            if pieces:
                yield (np.concatenate(pieces) * gain).astype(np.float32)
            start = end

    @property
    def pauses_s(self) -> np.ndarray:
        """The file's pause at each inner join, in seconds (``len(joins) - 2`` of them)."""
        return (self.intervals[1:, 0] - self.intervals[:-1, 1]) / self.sr

    def to_file(self, a: int, b: int) -> list[tuple[int, int]]:
        """File sample intervals of speech samples ``[a, b)``."""
        out = []
        for k in range(int(np.searchsorted(self.joins, a, side="right")) - 1, len(self.intervals)):
            lo, hi = max(a, self.joins[k]), min(b, self.joins[k + 1])
            if lo >= b:
                break
            if hi > lo:
                s = self.intervals[k, 0] - self.joins[k]
                out.append((int(lo + s), int(hi + s)))
        return out


def embed_windows(
    extractor, y, *, window_s: float, hop_s: float, n_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length embeddings of overlapping windows of ``y``, from one log-mel pass (:meth:`Extractor.windows`).

    ``y`` is an array, or its pieces in order (:meth:`SpeechTimeline.chunks`)
    with ``n_samples`` their total length: the windows are embedded as the
    log-mel frames they cover come, and only those frames are held.

    Returns
    -------
    E : np.ndarray [shape=(n_windows, dim)]
    bounds : np.ndarray [shape=(n_windows, 2)]
        Each window's ``[start, end)`` in frames of ``y`` (``feature_config.hop_ms`` each).
    """
    cfg = extractor.feature_config
    n_frames = 1 + (len(y) if n_samples is None else n_samples) // cfg.hop_length
    window, hop = (round(s * 1000 / cfg.hop_ms) for s in (window_s, hop_s))
    starts = window_starts(n_frames, window=window, hop=hop)
    bounds = np.stack([starts, np.minimum(starts + window, n_frames)], axis=1)
    E = extractor.windows(y, window_s=window_s, hop_s=hop_s, n_samples=n_samples, min_s=cfg.segment_s)
    return E, bounds
