"""Systems the default extractor is compared with, shaped like an extractor.

Each baseline offers what the evaluation code uses from
:class:`fewshot.model.extractor.Extractor`: ``embed(waveforms) -> (n, d)``,
``embed(waveforms, return_segments=True) -> [(n_seg, d), ...]`` and
``model_id``, so the same episodes run for every system.

- :class:`MFCCStats`: mean and standard deviation of 20 MFCCs and their deltas
  (80 numbers), globally standardised, then the same SVM. The floor any learned
  extractor must clear.
- :func:`load_original`: the original project's small Cifar-10-style CNN (two
  blocks of two 3x3 convolutions, 8 and 16 filters, 2x2 pooling, flattened
  straight into the SVM), trained by ``scripts/train_extractor.py --arch original``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from ..audio.features import l2_normalize, segment
from ..config import FeatureConfig

logger = logging.getLogger(__name__)

ORIGINAL_RECIPE = (
    "python scripts/train_extractor.py ../shared/data/train --dev ../shared/data/dev "
    "--out models/original --arch original --epochs 4 --steps-per-epoch 60 "
    "--batch-size 64 --lr 1e-3 --cache cache/features"
)


class MFCCStats:
    """MFCC statistics: the hand-made baseline.

    Per frame: 20 MFCCs (from a 40-band mel spectrogram with the extractor's
    25 ms window and 10 ms hop) and their deltas. Per segment or utterance: the
    mean and standard deviation of those 40 numbers over time, standardised with
    a global mean and scale (see :meth:`fit`), then L2-normalised.

    Parameters
    ----------
    n_mfcc : int
        Cepstral coefficients per frame (c0 included).
    n_mels : int
        Mel bands the MFCCs are computed from.
    config : FeatureConfig, optional
        Sample rate, window, hop and segment length (defaults: the extractor's).

    Attributes
    ----------
    mean_, scale_ : np.ndarray [shape=(4 * n_mfcc,)]
        The global standardisation, set by :meth:`fit`.
    fit_description_ : str
        What the standardisation was fitted on.

    Examples
    --------
    >>> y = np.random.default_rng(0).normal(0, 0.1, 16000 * 4).astype(np.float32)
    >>> m = MFCCStats().fit([y])
    >>> m.embed([y]).shape
    (1, 80)
    """

    def __init__(self, *, n_mfcc: int = 20, n_mels: int = 40, config: FeatureConfig | None = None):
        self.n_mfcc = n_mfcc
        self.n_mels = n_mels
        self.config = config or FeatureConfig()
        self.mean_ = None
        self.scale_ = None
        self.fit_description_ = ""

    @property
    def dim(self) -> int:
        return 4 * self.n_mfcc

    @property
    def model_id(self) -> str:
        """``mfcc20-stats-`` and a digest of the standardisation."""
        tag = "unfitted"
        if self.mean_ is not None:
            tag = hashlib.sha256(np.r_[self.mean_, self.scale_].astype(np.float32).tobytes()).hexdigest()[:8]
        return f"mfcc{self.n_mfcc}-stats-{tag}"

    def frames(self, y: np.ndarray) -> np.ndarray:
        """MFCCs and deltas of one waveform.

        Returns
        -------
        F : np.ndarray [shape=(n_frames, 2 * n_mfcc)]
        """
        import librosa

        cfg = self.config
        M = librosa.feature.mfcc(
            y=np.asarray(y, dtype=np.float32),
            sr=cfg.sr,
            n_mfcc=self.n_mfcc,
            n_fft=cfg.n_fft,
            win_length=cfg.win_length,
            hop_length=cfg.hop_length,
            n_mels=self.n_mels,
            fmin=cfg.fmin_hz,
            fmax=cfg.fmax_hz,
        )
        D = librosa.feature.delta(M, width=9, mode="interp" if M.shape[1] >= 9 else "nearest")
        return np.concatenate([M, D]).T.astype(np.float32)

    @staticmethod
    def _stats(F: np.ndarray) -> np.ndarray:
        """Mean and standard deviation over the time axis (second to last)."""
        return np.concatenate([F.mean(axis=-2), F.std(axis=-2)], axis=-1)

    def _segment_stats(self, y: np.ndarray, *, overlap: bool) -> np.ndarray:
        cfg = self.config
        hop = cfg.segment_hop_frames if overlap else cfg.segment_frames
        return self._stats(segment(self.frames(y), seg_frames=cfg.segment_frames, hop_frames=hop))

    def _finish(self, S: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise ValueError("MFCCStats is not fitted: call fit(waveforms) first")
        Z = (S - self.mean_) / self.scale_
        return l2_normalize(Z).astype(np.float32)

    def fit(self, waveforms, *, description: str = "") -> MFCCStats:
        """Fit the global standardisation on the overlapping segments of ``waveforms``.

        Unsupervised: speaker labels are not used.
        """
        S = np.concatenate([self._segment_stats(np.asarray(y), overlap=True) for y in waveforms])
        self.mean_ = S.mean(axis=0)
        self.scale_ = np.maximum(S.std(axis=0), 1e-6)
        self.fit_description_ = description or f"{len(S)} segments of {len(waveforms)} waveforms"
        return self

    def embed(self, waveforms, *, return_segments: bool = False):
        """Standardised statistics of each whole utterance (or, with ``return_segments``,
        of each of its 3 s segments with a 1.5 s hop: a list of arrays).

        Returns
        -------
        E : np.ndarray [shape=(len(waveforms), 4 * n_mfcc)]
        """
        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            waveforms = [waveforms]
        if return_segments:
            return [self._finish(self._segment_stats(np.asarray(y), overlap=True)) for y in waveforms]
        if len(waveforms) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._finish(np.stack([self._stats(self.frames(np.asarray(y))) for y in waveforms]))


def load_original(path=None):
    """The original project's CNN, or ``None`` with the reason when there is none.

    Parameters
    ----------
    path : path, optional
        Model directory; default ``models/original`` (relative to the working
        directory).

    Returns
    -------
    extractor : Extractor or None
    note : str
        Where it came from, or why it was skipped (with the command that trains it).
    """
    path = Path(path) if path is not None else Path("models") / "original"
    if not (path / "meta.json").is_file():
        return None, (
            f"skipped: no original-approach model at {path}. Train one with "
            f"`{ORIGINAL_RECIPE}` and pass --original-model."
        )
    from ..model.extractor import load_extractor

    ex = load_extractor(path)
    if ex.extractor_config.arch != "original":
        logger.warning("%s is a %r model, not the original architecture", path, ex.extractor_config.arch)
    return ex, f"loaded from {path}"
