"""Enrollment that checks itself: does the speech sound like one person throughout?

A voiceprint polluted at enrollment (a second voice, a TV) spoils every later
answer. The check embeds the enrollment speech in short windows
(:data:`WINDOW_S` every :data:`HOP_S`) and, for every contiguous run of
windows up to half of them, the cosine between the run's mean embedding and
the rest's: one person gives high cosines everywhere; a stretch of someone
else gives one low one. The lowest of them is the enrollment's **coherence**.
A model calibrated for it (``scripts/calibrate_unknown.py``) stores, per
seconds of speech, the coherence below which at most 5% of genuine enrollments
fall in each corpus and recording condition of its calibration population
(speech prepared as ``enroll`` prepares it); enrollment below it is refused
unless forced.
"""

from __future__ import annotations

import numpy as np

from ..audio.features import l2_normalize

#: Length and hop of the check's windows, in seconds.
WINDOW_S, HOP_S = 1.5, 0.75


def split_coherence(W: np.ndarray) -> float:
    """The lowest cosine between a contiguous run of rows of ``W`` and the other rows (1.0 for under 4 rows)."""
    W = l2_normalize(np.asarray(W, np.float64))
    n = len(W)
    if n < 4:
        return 1.0
    csum = np.concatenate([np.zeros((1, W.shape[1])), np.cumsum(W, axis=0)])
    total, lowest = csum[-1], 1.0
    for length in range(2, n // 2 + 1):
        inside = csum[length:] - csum[:-length]
        rest = total - inside
        cos = np.sum(inside * rest, axis=1) / (np.linalg.norm(inside, axis=1) * np.linalg.norm(rest, axis=1) + 1e-12)
        lowest = min(lowest, float(cos.min()))
    return lowest


def windows(extractor, y: np.ndarray) -> np.ndarray:
    """The embeddings of the check's windows of ``y`` (the speech, pauses cut), each with its own log-mel,
    at least a segment long (:meth:`~fewshot.model.extractor.Extractor.windows`)."""
    return extractor.windows(
        y, window_s=WINDOW_S, hop_s=HOP_S, own_frames=True, min_s=extractor.feature_config.segment_s
    )


def coherence(extractor, y: np.ndarray) -> float:
    """:func:`split_coherence` of the embeddings of ``y``'s windows (1.0 for under 4 windows)."""
    return split_coherence(windows(extractor, y))


def threshold_for(seconds: float, table) -> float:
    """The coherence threshold for ``seconds`` of speech from ``table`` (``(seconds, threshold)`` pairs)."""
    s, t = np.asarray(table, np.float64).T
    return float(np.interp(seconds, s, t))


def check_enrollment(extractor, y: np.ndarray, table, *, name: str, force: bool) -> str | None:
    """Refuse (or, with ``force``, warn about) enrollment speech ``y`` that is not one voice throughout.

    ``table`` is the model's ``(seconds, threshold)`` pairs (``None``: no check).

    Returns
    -------
    str or None
        The warning, when forced past the check.

    Raises
    ------
    IncoherentEnrollmentError
        Without ``force``, when the coherence is below the threshold.
    """
    if table is None:
        return None
    seconds = len(y) / extractor.feature_config.sr
    score, threshold = coherence(extractor, y), threshold_for(seconds, table)
    if score >= threshold:
        return None
    reason = (
        f"the speech does not sound like one person throughout (coherence {score:.2f}, below "
        f"{threshold:.2f} for {seconds:.0f} s): another voice, a TV or music in the recording?"
    )
    if force:
        return f"{name}: {reason} Enrolled anyway (forced); the voiceprint may be spoiled"
    from ..errors import IncoherentEnrollmentError

    raise IncoherentEnrollmentError(name, reason)
