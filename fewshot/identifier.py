"""The public workflow: enroll people into a group, then identify who speaks.

:class:`SpeakerIdentifier` joins the frozen extractor, the enrollment store and
one :class:`~fewshot.classifier.GroupSVC` per group (refitted whenever the
group's members change).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from .audio import load_speech
from .classifier import UNKNOWN, GroupSVC
from .config import ClassifierConfig
from .enrollment import EnrollmentStore, Source
from .persistence import sha256_of

logger = logging.getLogger(__name__)

#: Under this much enrollment speech, a warning is given.
MIN_RECOMMENDED_ENROLL_S = 10.0


@dataclass(frozen=True)
class Prediction:
    """Who spoke: a group member's name or ``"unknown"``.

    ``score`` is the cosine similarity to the named speaker's enrollment
    centroid (for unknown: to the closest one); ``segments`` holds
    ``(start_s, end_s, label, score)`` per 3 s piece of the speech (times in
    seconds of speech, after long pauses are cut).
    """

    label: str
    score: float
    is_unknown: bool
    nearest: str
    segments: list = field(default_factory=list)


@dataclass(frozen=True)
class EnrollResult:
    speaker: str
    seconds_used: float
    seconds_available: float
    n_segments: int
    warnings: list


class SpeakerIdentifier:
    """Enroll and identify speakers, group by group.

    Parameters
    ----------
    extractor : Extractor, optional
        Default: the model shipped with fewshot.
    store : EnrollmentStore or path, optional
        Default: ``$FEWSHOT_HOME/enrollments.sqlite``.
    classifier_config : ClassifierConfig, optional
        Default: the SVM settings and unknown threshold saved with the extractor.

    Examples
    --------
    >>> sid = SpeakerIdentifier()                                  # doctest: +SKIP
    >>> sid.enroll("family", "ann", ["ann1.wav", "ann2.m4a"])      # doctest: +SKIP
    >>> sid.identify("family", "who.wav").label                    # doctest: +SKIP
    'ann'
    """

    def __init__(self, extractor=None, store=None, classifier_config: ClassifierConfig | None = None,
                 max_enroll_s: float = 60.0):
        if extractor is None:
            from .extractor import load_extractor

            extractor = load_extractor()
        self.extractor = extractor
        self.store = store if isinstance(store, EnrollmentStore) else EnrollmentStore(store)
        self.classifier_config = classifier_config or ClassifierConfig.of_model(extractor)
        self.max_enroll_s = max_enroll_s
        self._classifiers: dict[str, tuple[tuple, GroupSVC]] = {}

    def enroll(self, group: str, speaker: str, sources, *, keep_audio: bool = False, replace: bool = False,
               sr_in: int | None = None) -> EnrollResult:
        """Enroll ``speaker`` into ``group`` from files (or 16 kHz arrays).

        All files are checked and embedded before anything is written; a bad
        file raises :class:`AudioError` and leaves the store unchanged.
        """
        if speaker.strip().lower() == UNKNOWN:
            raise ValueError(f"{speaker!r} is reserved for speech that matches nobody; choose another name")
        if isinstance(sources, (str, os.PathLike, np.ndarray)):
            sources = [sources]
        if not len(sources):
            raise ValueError("no audio given to enroll from")
        cfg = self.extractor.feature_config
        speech, records = [], []
        for src in sources:
            y = load_speech(src, config=cfg, sr_in=sr_in)
            name = "<recording>" if isinstance(src, np.ndarray) else os.path.basename(os.fspath(src))
            speech.append(y)
            records.append((name, sha256_of(src), y))
        available = sum(len(y) for y in speech) / cfg.sr
        budget = int(self.max_enroll_s * cfg.sr)
        used, kept = [], []
        for name, digest, y in records:
            take = y[: max(0, budget - sum(len(u) for u in used))]
            if len(take):
                used.append(take)
                kept.append(Source(name, digest, len(take) / cfg.sr, take if keep_audio else None))
        y_all = np.concatenate(used)
        E = self.extractor.embed([y_all], return_segments=True)[0]
        self.store.enroll(group, speaker, E, extractor_id=self.extractor.model_id, sources=kept, replace=replace)
        seconds = len(y_all) / cfg.sr
        warnings = []
        if seconds < MIN_RECOMMENDED_ENROLL_S:
            warnings.append(f"only {seconds:.1f} s of speech for {speaker!r}; 15-35 s gives reliable results")
        return EnrollResult(speaker, seconds, available, len(E), warnings)

    def classifier(self, group: str) -> GroupSVC:
        """The group's fitted SVM, refitted when the group's revision changed."""
        key = self.store.group_revision(group)
        cached = self._classifiers.get(group)
        if cached is None or cached[0] != key:
            X, y = self.store.embeddings(group, extractor_id=self.extractor.model_id)
            cc = self.classifier_config
            clf = GroupSVC(**cc.svc_params()).fit(X, y)
            self._classifiers[group] = (key, clf)
        return self._classifiers[group][1]

    def identify(self, group: str, source, *, sr_in: int | None = None, segments: bool = False) -> Prediction:
        """Who speaks in ``source`` (a file or an array), among ``group``'s members, or unknown.

        Raises
        ------
        AudioError
            For unusable audio (see :func:`fewshot.audio.load_speech`).
        NotEnrolledError
            For an unknown or empty group.
        """
        clf = self.classifier(group)
        y = load_speech(source, config=self.extractor.feature_config, sr_in=sr_in)
        return self._predict(clf, y, segments=segments)

    def _predict(self, clf: GroupSVC, y: np.ndarray, *, segments: bool) -> Prediction:
        E = self.extractor.embed([y])
        cfg = self.extractor.feature_config
        if segments:
            pieces = [y[i:i + int(cfg.segment_s * cfg.sr)] for i in range(0, len(y), int(cfg.segment_s * cfg.sr))]
            E = np.concatenate([E, self.extractor.embed(pieces)])
        labels, scores, nearest = clf.predict_open(E, return_nearest=True)
        total = len(y) / cfg.sr
        segs = [(round(i * cfg.segment_s, 2), round(min((i + 1) * cfg.segment_s, total), 2), str(lab), float(sc))
                for i, (lab, sc) in enumerate(zip(labels[1:], scores[1:]))]
        label = str(labels[0])
        return Prediction(label, float(scores[0]), label == UNKNOWN, str(nearest[0]), segs)
