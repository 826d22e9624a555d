"""Who-speaks-when scores: DER and identification error rate (pyannote.metrics), speaker time, boundaries.

Segments are ``(start_s, end_s, speaker)`` (more fields are ignored).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np


def annotation(segments, *, uri: str = "recording"):
    """A ``pyannote.core.Annotation`` of ``segments``."""
    from pyannote.core import Annotation, Segment

    ann = Annotation(uri=uri)
    for k, (a, b, who, *_) in enumerate(segments):
        if b > a:
            ann[Segment(float(a), float(b)), k] = who
    return ann


def speaker_time(reference, hypothesis) -> tuple[float, float]:
    """Seconds of reference speech given the right name by ``hypothesis``, and seconds of reference speech."""
    right = 0.0
    for a, b, who, *_ in reference:
        for c, d, name, *_ in hypothesis:
            if name == who:
                right += max(0.0, min(b, d) - max(a, c))
    return right, float(sum(b - a for a, b, *_ in reference))


def changes(segments) -> np.ndarray:
    """Each change of speaker as the pause ``(end of one, start of the next)`` between turns of two people.

    Returns
    -------
    pauses : np.ndarray [shape=(n_changes, 2)]
    """
    segs = sorted((a, b, who) for a, b, who, *_ in segments)
    out = [(p[1], n[0]) for p, n in pairwise(segs) if p[2] != n[2]]
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def boundary_errors(reference, hypothesis, *, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per change of speaker in ``reference``, how far the nearest change in ``hypothesis`` is, in seconds.

    Returns
    -------
    gap : np.ndarray [shape=(n_changes,)]
        From the reference pause to the hypothesis one: zero when they overlap.
    edges : np.ndarray [shape=(n_changes,)]
        The larger of the errors of the end of the turn before and the start of the turn after.
        Both are ``duration_s`` when the hypothesis has no change at all.
    """
    ref, hyp = changes(reference), changes(hypothesis)
    if not len(hyp):
        return np.full(len(ref), float(duration_s)), np.full(len(ref), float(duration_s))
    lo, hi = np.minimum(hyp[:, 0], hyp[:, 1]), np.maximum(hyp[:, 0], hyp[:, 1])
    gap, edges = [], []
    for a, b in ref:
        d = np.maximum(0.0, np.maximum(lo - max(a, b), min(a, b) - hi))
        k = int(np.argmin(d + 1e-3 * np.abs(lo + hi - a - b)))
        gap.append(d[k])
        edges.append(max(abs(hyp[k, 0] - a), abs(hyp[k, 1] - b)))
    return np.asarray(gap, dtype=np.float64), np.asarray(edges, dtype=np.float64)


class Scores:
    """Scores accumulated over recordings.

    Parameters
    ----------
    collar_s : float
        Seconds either side of each reference boundary left out of DER and
        identification error (pyannote's ``collar`` is twice this).
    """

    def __init__(self, *, collar_s: float = 0.25):
        from pyannote.metrics.diarization import DiarizationErrorRate
        from pyannote.metrics.identification import IdentificationErrorRate

        self.collar_s = collar_s
        self.der = DiarizationErrorRate(collar=2 * collar_s, skip_overlap=False)
        self.ier = IdentificationErrorRate(collar=2 * collar_s, skip_overlap=False)
        self.right_s = self.speech_s = self.seconds = 0.0
        self.boundaries: list[np.ndarray] = []
        self.edges: list[np.ndarray] = []
        self.recordings = 0

    def add(self, reference, hypothesis, *, duration_s: float, uri: str = "recording") -> None:
        from pyannote.core import Segment, Timeline

        ref, hyp = annotation(reference, uri=uri), annotation(hypothesis, uri=uri)
        uem = Timeline([Segment(0.0, float(duration_s))], uri=uri)
        self.der(ref, hyp, uem=uem)
        self.ier(ref, hyp, uem=uem)
        right, speech = speaker_time(reference, hypothesis)
        self.right_s += right
        self.speech_s += speech
        self.seconds += duration_s
        gap, edges = boundary_errors(reference, hypothesis, duration_s=duration_s)
        self.boundaries.append(gap)
        self.edges.append(edges)
        self.recordings += 1

    def summary(self) -> dict:
        """``der``, ``identification_error``, ``speaker_time_accuracy`` (fractions), ``boundary_median_s``,
        ``boundary_within_0_5s`` (fraction of reference changes), ``edge_median_s`` (of :func:`boundary_errors`'
        ``edges``), ``recordings``, ``seconds``."""
        b = np.concatenate(self.boundaries) if self.boundaries else np.zeros(0)
        edges = np.concatenate(self.edges) if self.edges else np.zeros(0)
        return {
            "der": float(abs(self.der)),
            "identification_error": float(abs(self.ier)),
            "speaker_time_accuracy": self.right_s / self.speech_s if self.speech_s else float("nan"),
            "boundary_median_s": float(np.median(b)) if len(b) else float("nan"),
            "boundary_within_0_5s": float(np.mean(b <= 0.5)) if len(b) else float("nan"),
            "edge_median_s": float(np.median(edges)) if len(edges) else float("nan"),
            "recordings": self.recordings,
            "seconds": self.seconds,
        }
