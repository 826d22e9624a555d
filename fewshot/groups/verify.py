"""Verification: is this speech a given member's? Accepted at the model's calibrated false-accept rate.

:func:`claim_scores` scores embedded speech against one member of a group's
:class:`~fewshot.groups.fitted.FittedGroup` and :func:`claim_decisions` accepts or
rejects the claims: what :meth:`~fewshot.identifier.SpeakerIdentifier.verify`
(``fewshot verify``) answers and ``fewshot evaluate`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Verification:
    """Whether speech is ``speaker``'s: ``accepted`` when ``score`` reaches ``threshold`` (both on the scale
    the model decides unknown on: AS-normalised for a calibrated model, else the cosine; ``threshold`` is
    ``None`` for a model with neither, which accepts every claim)."""

    speaker: str
    accepted: bool
    score: float
    threshold: float | None


def claim_scores(clf, X, speaker: str, *, seconds=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Verification: each sample's score against ``speaker``'s centroid, and the score a claim to be them
    needs, the threshold of a group of one at this group's false-accept rate (``None``: always accepted).

    Raises
    ------
    KeyError
        For a speaker the group does not hold.
    """
    Xn = clf._check(X)
    k = np.flatnonzero(clf.classes_ == speaker)
    if not len(k):
        raise KeyError(speaker)
    centroid = clf.centroids_[k[0]]
    cosine = Xn @ centroid
    if clf.calibration is None:
        return cosine, clf.decision_thresholds(Xn)
    mc, dc = clf.calibration.cohort_stats(centroid[None])
    score = clf.calibration.normalize(cosine, Xn, None, centroid_stats=(mc[0], dc[0]))
    return score, clf.decision_thresholds(Xn, seconds, n_members=1)


def claim_decisions(clf, X, speaker: str, *, seconds=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Whether each sample's claim to be ``speaker`` is accepted: its score reaches the threshold of a group of one
    (:func:`claim_scores`) and the group's SVM names ``speaker``; with the scores and thresholds.

    Returns
    -------
    accepted : np.ndarray of bool [shape=(n_samples,)]
    scores : np.ndarray [shape=(n_samples,)]
    thresholds : np.ndarray [shape=(n_samples,)] or None
    """
    scores, thresholds = claim_scores(clf, X, speaker, seconds=seconds)
    accepted = clf.predict(X) == speaker
    if thresholds is not None:
        accepted &= scores >= thresholds
    return accepted, scores, thresholds
