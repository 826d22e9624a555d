"""The public workflow: enroll people into a group, then identify (or verify) who speaks.

:class:`SpeakerIdentifier` joins the frozen extractor, the enrollment store and
one RBF SVM per group (:class:`~fewshot.groups.svc.GroupSVC`, fitted whenever
the group's members change; answered from the
:class:`~fewshot.groups.fitted.FittedGroup` the store keeps with the group).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from .audio.vad import Speech
from .audio.vad import speech as speech_of
from .config import CLIP_LEVEL, UNKNOWN, ClassifierConfig
from .errors import AudioError, IncompatibleModelError, InvalidNameError, NotEnrolledError
from .groups.fitted import FittedGroup
from .groups.kept_fit import keep_fit, kept_fit, stored_or_fit
from .groups.openset import load_calibration
from .groups.selfcheck import check_enrollment
from .groups.verify import Verification, claim_decisions
from .model.streaming import Blocks, Tee, embed_stream, identify_stream, read_head, read_heads, speech_prefix
from .names import name_key, normalize_name
from .store import upgrade
from .store.enrollments import EnrollmentStore, Source

logger = logging.getLogger(__name__)

#: Files :meth:`SpeakerIdentifier.identify_many` reads at a time: each over a minute holds its first two
#: blocks (two minutes of samples) until it is streamed.
IDENTIFY_BATCH = 16
#: Under this much enrollment speech, a warning is given.
MIN_RECOMMENDED_ENROLL_S = 15.0
#: Above this fraction of clipped samples, enrollment warns ...
WARN_CLIPPED_FRACTION = 0.001
#: ... and above this one it refuses the file unless forced.
MAX_CLIPPED_FRACTION = 0.10


@dataclass(frozen=True)
class Prediction:
    """Who spoke: a group member's name or ``"unknown"``.

    ``score`` is the cosine similarity to the named speaker's enrollment centroid (for unknown: to the
    closest one); ``segments`` holds who speaks when, as :class:`~fewshot.turns.decoder.Turn` ``(start_s, end_s,
    speaker, score)`` in seconds of the source (only when asked for).
    """

    label: str
    score: float
    is_unknown: bool
    nearest: str
    segments: list = field(default_factory=list)


@dataclass(frozen=True)
class EnrollResult:
    """What an enrollment stored: ``added`` when it joined an earlier enrollment, now ``total_seconds`` long."""

    speaker: str
    seconds_used: float
    seconds_available: float
    n_segments: int
    warnings: list
    added: bool = False
    total_seconds: float = 0.0


class SpeakerIdentifier:
    """Enroll and identify speakers, group by group.

    Parameters
    ----------
    extractor : Extractor, optional
        Default: the model shipped with fewshot.
    store : EnrollmentStore or path, optional
        Default: ``$FEWSHOT_HOME/enrollments.sqlite``.
    classifier_config : ClassifierConfig, optional
        Default: the SVM settings and unknown decision saved with the extractor.
    false_accept_rate : float, optional
        The fraction of outsiders' speech that may be named as a member, at
        every group size (:mod:`fewshot.groups.openset`; the model must be calibrated
        for it). Default: the model's (``classifier_config``'s).

    Examples
    --------
    >>> sid = SpeakerIdentifier()                                  # doctest: +SKIP
    >>> sid.enroll("family", "ann", ["ann1.wav", "ann2.m4a"])      # doctest: +SKIP
    >>> sid.identify("family", "who.wav").label                    # doctest: +SKIP
    'ann'
    """

    def __init__(
        self,
        extractor=None,
        store=None,
        classifier_config: ClassifierConfig | None = None,
        max_enroll_s: float = 60.0,
        *,
        false_accept_rate: float | None = None,
    ):
        if extractor is None:
            from .model.extractor import load_extractor

            extractor = load_extractor()
        self.extractor = extractor
        self.store = store if isinstance(store, EnrollmentStore) else EnrollmentStore(store)
        self.classifier_config = classifier_config or ClassifierConfig.of_model(extractor)
        if false_accept_rate is not None:
            self.classifier_config = dataclasses.replace(
                self.classifier_config, false_accept_rate=false_accept_rate
            ).validate()
        self.calibration = load_calibration(extractor)
        if self.classifier_config.false_accept_rate is not None:
            if self.calibration is None:
                raise IncompatibleModelError(
                    f"extractor {extractor.model_id} has no open-set calibration, so no "
                    "false-accept rate can be chosen; its unknown threshold is a cosine"
                )
            self.calibration.threshold(1, self.classifier_config.false_accept_rate)  # in the calibrated range
        self.max_enroll_s = max_enroll_s
        self._classifiers: dict[str, tuple[tuple, FittedGroup]] = {}

    def enroll(
        self,
        group: str,
        speaker: str,
        sources,
        *,
        keep_audio: bool = False,
        replace: bool = False,
        force: bool = False,
        sr_in: int | None = None,
    ) -> EnrollResult:
        """Enroll ``speaker`` into ``group`` from files (or 16 kHz arrays).

        All files are checked and embedded before anything is written; a bad
        file raises :class:`AudioError` and leaves the store unchanged. Without
        ``replace``, the speech is added to the speaker's earlier enrollment,
        and a file already enrolled for them is refused
        (:class:`~fewshot.errors.DuplicateAudioError`). A file with more than
        :data:`MAX_CLIPPED_FRACTION` of its samples clipped is refused unless
        ``force``; lesser clipping gives a warning. So is speech that does not
        sound like one person throughout (:mod:`fewshot.groups.selfcheck`, for models
        calibrated for it: :class:`~fewshot.errors.IncoherentEnrollmentError`).

        Raises
        ------
        InvalidNameError
            For an empty or reserved name, or one holding control characters.
        """
        group, speaker = normalize_name(group, kind="group"), normalize_name(speaker, kind="person")
        if name_key(speaker) == UNKNOWN:
            raise InvalidNameError(f"{speaker!r} is reserved for speech that matches nobody; choose another name")
        if any(g["name"] == group and g["extractor_id"] != self.extractor.model_id for g in self.store.groups()):
            self.classifier(group)  # an earlier model's group is mapped first, or refused with what to do
        if isinstance(sources, (str, os.PathLike, np.ndarray)):
            sources = [sources]
        if not len(sources):
            raise ValueError("no audio given to enroll from")
        cfg = self.extractor.feature_config
        records, warnings = [], []
        budget = int(self.max_enroll_s * cfg.sr)
        for src in sources:  # each file is decoded once, only as far as the speech still needed (at least checked)
            left = max(budget - sum(len(y) for _, _, y in records), 0) / cfg.sr
            digest = hashlib.sha256()  # fed the file's bytes as they are decoded
            speech, warning = self._enrollment_speech(
                src, sr_in=sr_in, force=force, max_s=max(left, cfg.min_speech_s), sha256=digest
            )
            name = "<recording>" if isinstance(src, np.ndarray) else os.path.basename(os.fspath(src))
            records.append((name, digest.hexdigest(), speech.samples))
            warnings += [warning] if warning else []
        available = sum(len(y) for _, _, y in records) / cfg.sr
        used, kept = [], []
        for name, digest, y in records:
            take = y[: max(0, budget - sum(len(u) for u in used))]
            if len(take):
                used.append(take)
                kept.append(Source(name, digest, len(take) / cfg.sr, take if keep_audio else None))
        y_all = np.concatenate(used)
        warning = check_enrollment(
            self.extractor,
            y_all,
            self.calibration and self.calibration.enrollment_check,
            name=", ".join(name for name, _, _ in records),
            force=force,
        )
        warnings += [warning] if warning else []
        E = self.extractor.embed([y_all], return_segments=True)[0]
        copies = None
        if self.classifier_config.multi_condition:
            from .audio.degrade import enrollment_copies

            copies = np.concatenate(self.extractor.embed(enrollment_copies(y_all, sr=cfg.sr), return_segments=True))
        added, total = self.store.enroll(
            group, speaker, E, extractor_id=self.extractor.model_id, sources=kept, replace=replace, copies=copies
        )
        self.classifier(group)  # fitted now and kept in the store, so that identify answers without a refit
        if total < MIN_RECOMMENDED_ENROLL_S:
            warnings.append(f"only {total:.1f} s of speech for {speaker!r}; 15-35 s gives reliable results")
        return EnrollResult(speaker, len(y_all) / cfg.sr, available, len(E), warnings, added, total)

    def check_sources(self, sources, *, force: bool = False) -> None:
        """Decode and check enrollment ``sources`` as :meth:`enroll` does (audio, clipping, speech), storing
        nothing (:class:`AudioError` for the first unusable one): one enrolling several people checks all first."""
        for src in [sources] if isinstance(sources, (str, os.PathLike, np.ndarray)) else sources:
            self._enrollment_speech(src, sr_in=None, force=force)

    def _enrollment_speech(self, src, *, sr_in, force: bool, max_s=None, sha256=None) -> tuple:
        """One source's :class:`~fewshot.audio.vad.Speech` (its first ``max_s`` s, read only as far as needed), and a
        warning if clipped; ``sha256`` is fed the file's bytes."""
        name = "<array>" if isinstance(src, np.ndarray) else os.fspath(src)
        speech, clipped = speech_prefix(
            src,
            config=self.extractor.feature_config,
            sr_in=sr_in,
            clip_level=CLIP_LEVEL,
            max_s=self.max_enroll_s if max_s is None else max_s,
            sha256=sha256,
        )
        if clipped > MAX_CLIPPED_FRACTION and not force:
            raise AudioError(
                name,
                f"{clipped:.0%} of the samples are clipped (at full scale; over "
                f"{MAX_CLIPPED_FRACTION:.0%} is refused): record it again at a lower level, "
                "or enroll it anyway with --force (force=True)",
            )
        if clipped <= WARN_CLIPPED_FRACTION:
            return speech, None
        return speech, (
            f"{name}: {clipped:.1%} of the samples are clipped (at full scale); the voiceprint may not "
            "match this person's clean speech, record at a lower level"
        )

    def classifier(self, group: str) -> FittedGroup:
        """The group's fitted SVM (the store's, :func:`fewshot.groups.kept_fit.stored_or_fit`), refitted when its members changed."""
        group = normalize_name(group, kind="group")
        key = self.store.group_revision(group)
        if key[0] != self.extractor.model_id:
            upgrade.adopt_group(self.store, group, key[0], self.extractor)
            key = self.store.group_revision(group)
        cached = self._classifiers.get(group)
        if cached is None or cached[0] != key:
            X, y, is_copy = self.store.embeddings(group, extractor_id=self.extractor.model_id, copies=True)
            cc = self.classifier_config
            if not cc.multi_condition:
                X, y, is_copy = X[~is_copy], y[~is_copy], is_copy[~is_copy]
            clf, new = stored_or_fit(
                kept_fit(self.store, group, revision=key), X, y, centroid_mask=~is_copy, params=cc.svc_params()
            )
            if new is not None:
                keep_fit(self.store, group, revision=key, key=new[0], data=new[1])
            self._classifiers[group] = (key, clf.with_open_set(self.calibration, cc.false_accept_rate))
        return self._classifiers[group][1]

    def upgrade(self, group: str, *, progress=None) -> dict:
        """Re-embed ``group``'s kept audio with this extractor (:func:`fewshot.store.upgrade.upgrade_group`)."""
        result = upgrade.upgrade_group(self, normalize_name(group, kind="group"), progress=progress)
        self._classifiers.pop(normalize_name(group, kind="group"), None)
        return result

    def identify(
        self, group: str, source, *, sr_in: int | None = None, segments: bool = False, progress=None
    ) -> Prediction:
        """Who speaks in ``source`` (a file or an array), among ``group``'s members, or unknown.

        Input over a minute is embedded block by block (:mod:`fewshot.model.streaming`, which ``progress`` follows).
        ``segments``: also who speaks when, the source's turns (:meth:`turns`).

        Raises
        ------
        AudioError
            For unusable audio (see :func:`fewshot.audio.vad.load_speech`).
        NotEnrolledError
            For an unknown or empty group.
        """
        clf = self.classifier(group)
        cfg, name = self.extractor.feature_config, _name(source)
        got = read_head(source, config=cfg, sr_in=sr_in)  # decoded once: one block, or the stream going on
        if not isinstance(got, Blocks):
            got = (speech_of(got, config=cfg, source=name), got)
            return self._identified(clf, source, got, segments=segments)
        return self._identified(clf, source, got, sr_in=sr_in, segments=segments, progress=progress)

    def _identified(self, clf: FittedGroup, source, got, *, sr_in=None, segments=False, progress=None) -> Prediction:
        """The :class:`Prediction` of ``source`` from ``got`` (:class:`~fewshot.audio.vad.Speech` of one block, or its pair
        with the decoded samples; or the :class:`~fewshot.model.streaming.Blocks` of a longer input), with its turns when
        ``segments``.

        A long input's turns come from a timeline scanned from the same decoding as its prediction; the speech is
        then read once more to embed its windows, as the loudest frame and the gain of the whole input are known
        only at its end and holding the speech would make memory grow with the input's length.
        """
        from .turns.decoder import find_turns
        from .turns.timeline import SpeechTimeline

        cfg, name = self.extractor.feature_config, _name(source)
        if not isinstance(got, Blocks):
            speech, y = got if isinstance(got, tuple) else (got, None)
            prediction = self._predictions(clf, [speech.samples])[0]
            if segments:
                prediction = dataclasses.replace(prediction, segments=find_turns(y, clf, self.extractor, source=name))
            return prediction
        if not segments:
            return Prediction(*identify_stream(self.extractor, clf, source, sr_in=sr_in, progress=progress, blocks=got))
        tee = Tee(got, lambda blocks: SpeechTimeline.scan(source, config=cfg, sr_in=sr_in, blocks=blocks))
        try:
            prediction = Prediction(
                *identify_stream(self.extractor, clf, source, sr_in=sr_in, progress=progress, blocks=tee)
            )
        finally:
            tee.close()
        timeline = tee.result()
        return dataclasses.replace(prediction, segments=find_turns(timeline, clf, self.extractor, source=name))

    def identify_many(self, group: str, sources, *, segments: bool = False, workers: int = 4, progress=None) -> list:
        """:meth:`identify` for many files: decoded in a thread pool, embedded together (those over a minute after,
        going on from the blocks read), :data:`IDENTIFY_BATCH` files at a time so that what is held stays bounded.

        Returns
        -------
        list
            Per source, in order: its :class:`Prediction`, or the
            :class:`AudioError` that makes it unusable.

        Raises
        ------
        NotEnrolledError
            For an unknown or empty group (before any file is read).
        """
        from .turns.decoder import find_turns

        clf = self.classifier(group)
        sources = list(sources)
        if len(sources) > IDENTIFY_BATCH:
            return [
                p
                for k in range(0, len(sources), IDENTIFY_BATCH)
                for p in self.identify_many(
                    group, sources[k : k + IDENTIFY_BATCH], segments=segments, workers=workers, progress=progress
                )
            ]
        loaded = read_heads(sources, config=self.extractor.feature_config, workers=workers, keep_samples=segments)
        short = [got for got in loaded if not isinstance(got, (AudioError, Blocks))]
        predictions = iter(
            self._predictions(clf, [(got[0] if isinstance(got, tuple) else got).samples for got in short])
        )
        out = []
        for source, got in zip(sources, loaded):
            try:
                if isinstance(got, Blocks):
                    got = self._identified(clf, source, got, segments=segments, progress=progress)
                elif not isinstance(got, AudioError):
                    prediction = next(predictions)
                    if segments:
                        turns = find_turns(got[1], clf, self.extractor, source=_name(source))
                        prediction = dataclasses.replace(prediction, segments=turns)
                    got = prediction
            except AudioError as exc:
                got = exc
            out.append(got)
        return out

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
        """:meth:`verify` for many sources, :data:`IDENTIFY_BATCH` at a time as :meth:`identify_many` reads them: per
        source, its :class:`Verification` or its :class:`AudioError`."""
        speaker = normalize_name(speaker, kind="person")
        clf = self.classifier(group)
        if speaker not in set(map(str, clf.classes_)):
            raise NotEnrolledError(
                f"{speaker!r} is not enrolled in group {normalize_name(group, kind='group')!r} "
                f"(its people: {', '.join(map(str, clf.classes_))})"
            )
        sources = list(sources)
        if len(sources) > IDENTIFY_BATCH:
            return [
                v
                for k in range(0, len(sources), IDENTIFY_BATCH)
                for v in self.verify_many(group, speaker, sources[k : k + IDENTIFY_BATCH], sr_in=sr_in, workers=workers)
            ]
        cfg = self.extractor.feature_config
        loaded = read_heads(sources, config=cfg, sr_in=sr_in, workers=workers)
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

    def _predictions(self, clf: FittedGroup, speech: list) -> list[Prediction]:
        """Predictions for utterances embedded in one pass."""
        if not speech:
            return []
        labels, scores, nearest = clf.predict_open(
            self.extractor.embed(speech),
            return_nearest=True,
            seconds=[len(y) / self.extractor.feature_config.sr for y in speech],
        )
        return [
            Prediction(str(label), float(score), label == UNKNOWN, str(near))
            for label, score, near in zip(labels, scores, nearest)
        ]

    def turns(self, group: str, source, *, sr_in: int | None = None) -> list:
        """Who speaks when in ``source`` (a file or an array, read block by block in flat memory): :class:`~fewshot.turns.decoder.Turn`
        ``(start_s, end_s, speaker, score)`` in seconds of the source, a member of ``group`` or unknown.

        Raises
        ------
        AudioError
            For unusable audio, or less than ``min_speech_s`` of speech.
        NotEnrolledError
            For an unknown or empty group.
        """
        from .turns.decoder import find_turns
        from .turns.timeline import SpeechTimeline

        cfg, name = self.extractor.feature_config, _name(source)
        got = read_head(source, config=cfg, sr_in=sr_in)
        if not isinstance(got, Blocks):  # one block: decoded once
            return find_turns(got, self.classifier(group), self.extractor, source=name)
        timeline = SpeechTimeline.scan(source, config=cfg, sr_in=sr_in, blocks=got)  # read twice, block by block
        return find_turns(timeline, self.classifier(group), self.extractor, source=name)


def _name(source) -> str:
    return "<array>" if isinstance(source, np.ndarray) else os.fspath(source)
