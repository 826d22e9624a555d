"""Verification: is this speech a given member's? Accepted at the model's calibrated false-accept rate.

:func:`verify` and :func:`verify_many` are methods of
:class:`~fewshot.identifier.SpeakerIdentifier`; :func:`claim_scores` scores
speech against one member of a group's :class:`~fewshot.groups.fitted.FittedGroup` and
:func:`claim_decisions` accepts or rejects the claims (what ``fewshot evaluate``
measures too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.vad import Speech, speech
from ..errors import AudioError
from ..model.streaming import Blocks, embed_stream, read_head, read_heads
from ..names import normalize_name


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


def verify(self, group: str, speaker: str, source, *, sr_in: int | None = None) -> Verification:
    """Is the speech of ``source`` (a file or an array) ``speaker``'s, a member of ``group``?

    The claim is accepted when the speech's score against ``speaker``
    reaches the threshold of a group of one person at the identifier's
    false-accept rate (at the default rate, that share of outsiders'
    speech would be accepted as ``speaker``'s) and the group's SVM does not
    name another of its members.

    Raises
    ------
    AudioError
        For unusable audio.
    NotEnrolledError
        For an unknown or empty group, or a speaker not in it.
    """
    result = self.verify_many(group, speaker, [source], sr_in=sr_in)[0]
    if isinstance(result, AudioError):
        raise result
    return result


def verify_many(self, group: str, speaker: str, sources, *, sr_in: int | None = None, workers: int = 4) -> list:
    """:meth:`verify` for many sources: per source, its :class:`Verification` or its :class:`AudioError`."""
    from ..errors import NotEnrolledError

    speaker = normalize_name(speaker, kind="person")
    clf = self.classifier(group)
    if speaker not in set(map(str, clf.classes_)):
        raise NotEnrolledError(
            f"{speaker!r} is not enrolled in group {normalize_name(group, kind='group')!r} "
            f"(its people: {', '.join(map(str, clf.classes_))})"
        )
    cfg = self.extractor.feature_config
    if sr_in is not None:
        loaded = [_short_or_error(self, src, sr_in) for src in sources]
    else:
        loaded = read_heads(sources, config=cfg, workers=workers)
    out: list = list(loaded)
    found = [(i, y.samples) for i, y in enumerate(loaded) if isinstance(y, Speech)]
    E = list(self.extractor.embed([y for _, y in found])) if found else []
    seconds = [len(y) / cfg.sr for _, y in found]
    for i, y in enumerate(loaded):
        if isinstance(y, Blocks):  # over a minute: embedded block by block, going on from the blocks read
            try:
                E.append(embed_stream(self.extractor, sources[i], sr_in=sr_in, blocks=y))
                seconds.append(np.inf)
                found.append((i, None))
            except AudioError as exc:
                out[i] = exc
    if found:
        X = np.stack(E)
        accepted, scores, thresholds = claim_decisions(clf, X, speaker, seconds=np.array(seconds))
        for (i, _), ok, score, thr in zip(
            found, accepted, scores, [None] * len(E) if thresholds is None else thresholds
        ):
            out[i] = Verification(speaker, bool(ok), float(score), None if thr is None else float(thr))
    return out


def _short_or_error(sid, source, sr_in):
    """:func:`~fewshot.model.streaming.read_head` of ``source``: its speech if of one block, else its blocks, or the error."""
    cfg = sid.extractor.feature_config
    try:
        got = read_head(source, config=cfg, sr_in=sr_in)
        return got if isinstance(got, Blocks) else speech(got, config=cfg, source=_name(source))
    except AudioError as exc:
        return exc


def _name(source) -> str:
    import os

    return "<array>" if isinstance(source, np.ndarray) else os.fspath(source)
