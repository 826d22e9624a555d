"""The speech of a recording as one timeline, and the embeddings of its short windows.

:class:`SpeechTimeline` joins the VAD's speech (:func:`fewshot.vad.speech_intervals`)
without its pauses and maps it back to the file; :func:`embed_windows` embeds
overlapping windows of it from one log-mel pass (:func:`log_mel_blocks`, in
bounded memory), in batches.
"""

from __future__ import annotations

import numpy as np

from .vad import normalize_loudness, speech_intervals
from .config import FeatureConfig
from .errors import CorruptModelError
from .features import l2_normalize, log_mel


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


def window_starts(n_frames: int, *, window: int, hop: int) -> np.ndarray:
    """First frames of windows of ``window`` frames every ``hop``, the last one ending at ``n_frames``.

    Examples
    --------
    >>> window_starts(400, window=150, hop=50).tolist()
    [0, 50, 100, 150, 200, 250]
    >>> window_starts(100, window=150, hop=50).tolist()
    [0]
    """
    if n_frames <= window:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, n_frames - window + 1, hop)
    return starts if starts[-1] + window >= n_frames else np.append(starts, n_frames - window)


def embed_windows(extractor, y: np.ndarray, *, window_s: float, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length embeddings of overlapping windows of ``y``, from one log-mel pass.

    Returns
    -------
    E : np.ndarray [shape=(n_windows, dim)]
    bounds : np.ndarray [shape=(n_windows, 2)]
        Each window's ``[start, end)`` in frames of ``y`` (``feature_config.hop_ms`` each).
    """
    cfg = extractor.feature_config
    S = log_mel_blocks(y, config=cfg)
    window, hop = (round(s * 1000 / cfg.hop_ms) for s in (window_s, hop_s))
    starts = window_starts(len(S), window=window, hop=hop)
    bounds = np.stack([starts, np.minimum(starts + window, len(S))], axis=1)
    if extractor.backend.fixed_frames is not None or len(S) < window:
        pieces = [y[a * cfg.hop_length:b * cfg.hop_length] for a, b in bounds]
        return extractor.embed(pieces), bounds
    X = np.lib.stride_tricks.sliding_window_view(S, window, axis=0)[starts].transpose(0, 2, 1)
    step = extractor.batch_size
    E = np.concatenate([extractor.backend.run(X[i:i + step]) for i in range(0, len(X), step)])
    if not np.all(np.isfinite(E)):
        raise CorruptModelError(f"extractor {extractor.model_id} produced NaN or infinite embeddings")
    return l2_normalize(E.astype(np.float32)), bounds


def log_mel_blocks(y: np.ndarray, *, config: FeatureConfig, block_frames: int = 6000) -> np.ndarray:
    """:func:`fewshot.features.log_mel` of ``y``, the same frames computed ``block_frames`` at a time.

    Each block is computed from the samples its frames see, so a long
    recording needs memory for one block's spectra, not the whole file's.

    Returns
    -------
    S : np.ndarray [shape=(1 + n // hop_length, n_mels), dtype=float32]
    """
    hop = config.hop_length
    n_frames = 1 + len(y) // hop
    margin = -(-(config.n_fft // 2) // hop)
    out = []
    for f0 in range(0, n_frames, block_frames):
        f1, a = min(f0 + block_frames, n_frames), max(0, f0 - margin)
        S = log_mel(y[a * hop:(f1 - 1 + margin) * hop + 1], config=config)
        out.append(S[f0 - a:f1 - a])
    return np.concatenate(out)
