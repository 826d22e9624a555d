"""Who speaks when: a recording cut into speaker turns, in seconds of the file.

The VAD's speech is joined without its pauses, normalised, and cut into short
overlapping windows (1 s every 0.5 s) embedded in batches
(:mod:`fewshot.turns.timeline`). Each window is scored against the group's members
(cosine to each speaker's centroid) and a decoder cuts the windows into runs of
one speaker:

- ``"viterbi"`` (the default): the best path through the members and an
  unknown state, a window's score gained for its state and a fixed penalty
  paid for each change of speaker;
- ``"changepoint"``: a change wherever the windows before and after a point
  differ by more than a threshold (cosine distance of their mean embeddings).

A change lands on the longest pause within ``snap_s`` of it. Each run is then
named: unknown when its windows' best cosine averages under ``unknown_cosine``,
else the group's SVM's speaker for the mean embedding of its windows, with the
cosine to that speaker's centroid as the score. Neighbours of the same name are
joined, and the runs are mapped back to the file: pauses longer than
``max_pause_s`` belong to nobody and end a turn.

One :class:`TurnDecoder` does all of this, for a whole file (:func:`find_turns`,
every window at once) and for a live stream (:mod:`fewshot.live.turns`, window
by window); its settings are :class:`fewshot.config.TurnConfig`.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import numpy as np

from ..audio.features import l2_normalize
from ..audio.vad import check_speech_seconds
from ..config import UNKNOWN, TurnConfig
from .runs import change_points, viterbi
from .timeline import SpeechTimeline, embed_windows


class Turn(NamedTuple):
    """One person's stretch of speech, in seconds of the file."""

    start_s: float
    end_s: float
    speaker: str
    score: float


class TurnDecoder:
    """Turns of scored windows of speech, decided as the windows come: one decoder for a whole file
    (:func:`find_turns` feeds it every window at once) and a live stream (:class:`fewshot.live.turns.TurnStream`
    feeds it each new window).

    Each decision decodes the windows not yet in a final turn: their cosine to each member's centroid, the
    cuts (Viterbi or change points), each cut snapped to a pause of the timeline, and the runs between the
    cuts named (:func:`named_runs`). The runs become turns in seconds of the file (or stream) through the
    timeline, a pause longer than ``config.pause_s`` ending a turn.

    Without ``confirm_s`` nothing is final before :meth:`finish`, so windows fed in pieces give the turns
    of the same windows fed at once. With it, the first run is final as soon as another run follows it
    and the windows reach ``confirm_s`` of speech past it; its windows are forgotten, and later decisions
    start at its end.

    Parameters
    ----------
    clf : fewshot.groups.fitted.FittedGroup or fewshot.groups.svc.GroupSVC
        The group's fitted SVM.
    features : fewshot.config.FeatureConfig
        The model's settings (sample rate, ``max_silence_s``).
    config : TurnConfig, optional
    confirm_s : float, optional
        Seconds of speech after a change of speaker before the run before it is final.

    Attributes
    ----------
    start : int
        Where the speech not yet in a final turn begins, in samples of the timeline's speech.

    Examples
    --------
    >>> decoder = TurnDecoder(clf, features=cfg, confirm_s=1.5)            # doctest: +SKIP
    >>> final, current = decoder.feed(E, spans, timeline)                  # doctest: +SKIP
    >>> final += decoder.finish(timeline)                                  # doctest: +SKIP
    """

    def __init__(self, clf, *, features, config: TurnConfig | None = None, confirm_s: float | None = None):
        self.clf, self.config, self.sr = clf, config or TurnConfig(), features.sr
        self.max_pause = int(self.config.pause_s(features) * self.sr)
        self.confirm = None if confirm_s is None else int(confirm_s * self.sr)
        self.start = 0
        self._E, self._spans = [], np.zeros((0, 2), np.int64)

    @property
    def end(self) -> int:
        """Where the last window held ends, in samples of speech (``start`` when none is held)."""
        return int(self._spans[-1, 1]) if len(self._spans) else self.start

    def feed(
        self,
        E: np.ndarray,
        spans: np.ndarray,
        timeline: SpeechTimeline,
        *,
        tail: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[list[Turn], Turn | None]:
        """Take the next windows and decide.

        Parameters
        ----------
        E : np.ndarray [shape=(n_windows, dim)]
            Unit embeddings of the new windows, in order.
        spans : np.ndarray [shape=(n_windows, 2)]
            Each window's ``[start, end)`` in samples of the timeline's speech.
        timeline : fewshot.turns.timeline.SpeechTimeline
            The speech so far (its intervals; the samples are not read).
        tail : (E, spans), optional
            Windows that end with the speech so far, used for this decision only.

        Returns
        -------
        final : list of Turn
            The turns that became final (only with ``confirm_s``).
        current : Turn or None
            The last run as it stands: its start, the end of the windows so far, the provisional speaker.
        """
        self._E += list(E)
        self._spans = np.concatenate([self._spans, np.asarray(spans, np.int64).reshape(-1, 2)])
        final = []
        while True:
            runs = self._runs(timeline, tail)
            if not runs:
                return final, None
            b, end = runs[0][1], runs[-1][1]
            if self.confirm is None or len(runs) < 2 or end - b < self.confirm:
                return final, self._turns(runs[-1:], timeline)[-1]
            final += self._turns(runs[:1], timeline)
            keep = self._spans.mean(axis=1) >= b
            self._E, self._spans, self.start = [e for e, k in zip(self._E, keep) if k], self._spans[keep], b

    def finish(
        self, timeline: SpeechTimeline, E: np.ndarray | None = None, spans: np.ndarray | None = None
    ) -> list[Turn]:
        """The turns of the speech not yet in a final turn, all final, with the last windows ``E`` (if any)
        at ``spans``; the decoder holds nothing after it."""
        last = None if E is None or not len(E) else (E, spans)
        turns = self._turns(self._runs(timeline, last), timeline)
        self.start, self._E, self._spans = timeline.n_speech, [], self._spans[:0]
        return turns

    def _runs(self, timeline: SpeechTimeline, extra) -> list[tuple[int, int, str, float]]:
        """``(start, end, label, score)`` in samples of speech of the windows held (and ``extra``)."""
        E, spans = list(self._E), self._spans
        if extra is not None:
            E, spans = E + list(extra[0]), np.concatenate([spans, np.asarray(extra[1], np.int64).reshape(-1, 2)])
        if not E:
            return []
        E = np.stack(E)
        tc, centres = self.config, spans.mean(axis=1)
        C = self.clf.cosine_scores(E)
        if tc.decoder == "viterbi":
            scores = np.concatenate([C, np.full((len(E), 1), tc.unknown_cosine)], axis=1)
            path = viterbi(scores, switch_penalty=tc.switch_penalty)
            cuts = (centres[1:] + centres[:-1])[path[1:] != path[:-1]] / 2
        else:
            gap = int(np.ceil(tc.window_s / tc.hop_s - 1e-9))
            cuts = spans[change_points(E, context=gap, gap=gap, threshold=tc.change_threshold), 0]
        cuts = snap_to_pauses(cuts, timeline, within=int(tc.snap_s * self.sr))
        end = min(int(spans[:, 1].max()), timeline.n_speech)  # the speech the windows reach
        edges = np.concatenate([[self.start], cuts[(cuts > self.start) & (cuts < end)], [end]]).astype(np.int64)
        return named_runs(edges, E, C, centres, self.clf, unknown_cosine=tc.unknown_cosine)

    def _turns(self, runs, timeline: SpeechTimeline) -> list[Turn]:
        """``runs`` in seconds of the file, each split at the pauses longer than the longest a turn holds."""
        turns = []
        for a, b, label, score in runs:
            pieces = timeline.to_file(a, b)
            start, end = pieces[0]
            for s, e in pieces[1:] + [(None, None)]:
                if s is not None and s - end <= self.max_pause:
                    end = e
                    continue
                turns.append(Turn(round(start / self.sr, 2), round(end / self.sr, 2), label, round(score, 4)))
                start, end = s, e
        return turns


def find_turns(y: np.ndarray, clf, extractor, *, config: TurnConfig | None = None, source="<array>") -> list[Turn]:
    """Who speaks when in ``y``: turns in seconds of ``y``.

    The VAD's speech is cut into windows (:func:`fewshot.turns.timeline.embed_windows`) and decoded at once by
    a :class:`TurnDecoder`.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)] or fewshot.turns.timeline.SpeechTimeline
        The recording, mono at ``extractor.feature_config.sr``, or its timeline
        (:meth:`~fewshot.turns.timeline.SpeechTimeline.scan` reads a long file in flat memory).
    clf : fewshot.groups.fitted.FittedGroup or fewshot.groups.svc.GroupSVC
        The group's fitted SVM.
    extractor : fewshot.model.extractor.Extractor
    config : TurnConfig, optional
    source : str
        The recording's name, for errors.

    Returns
    -------
    turns : list of Turn
        In order of time; no two overlap, and no turn holds a pause longer than ``config.pause_s``.

    Raises
    ------
    AudioError
        With less than ``min_speech_s`` of speech.
    """
    cfg, tc = extractor.feature_config, config or TurnConfig()
    timeline = y if isinstance(y, SpeechTimeline) else SpeechTimeline(y, config=cfg)
    check_speech_seconds(timeline.n_speech / cfg.sr, config=cfg, source=source)
    E, bounds = embed_windows(
        extractor, timeline.chunks(), n_samples=timeline.n_speech, window_s=tc.window_s, hop_s=tc.hop_s
    )
    return TurnDecoder(clf, features=cfg, config=tc).finish(timeline, E, bounds * cfg.hop_length)


def snap_to_pauses(cuts: np.ndarray, timeline: SpeechTimeline, *, within: int) -> np.ndarray:
    """Each cut (in samples of speech) moved to the join of the longest pause at most ``within`` away.

    Returns
    -------
    cuts : np.ndarray of int
        Sorted, distinct, inside the speech.
    """
    joins, pauses = timeline.joins[1:-1], timeline.pauses_s
    out = []
    for c in np.asarray(cuts, dtype=np.int64):
        near = np.flatnonzero(np.abs(joins - c) <= within)
        if len(near):
            c = joins[near[np.argmax(pauses[near] - 1e-6 * np.abs(joins[near] - c))]]
        out.append(int(c))
    return np.unique([c for c in out if 0 < c < timeline.joins[-1]]).astype(np.int64)


def named_runs(
    edges: np.ndarray, E: np.ndarray, C: np.ndarray, centres: np.ndarray, clf, *, unknown_cosine: float
) -> list[tuple[int, int, str, float]]:
    """``(start, end, label, score)`` of the stretches between ``edges`` (samples of speech), neighbours of the
    same name joined.

    A stretch is unknown when its windows' best cosine (``C``) is below
    ``unknown_cosine`` on average, else the SVM's speaker for the mean
    embedding of its windows; the score is that embedding's cosine to the
    speaker's centroid (for unknown: the closest one's).
    """
    runs = [[a, b] for a, b in pairwise(edges) if b > a]
    while True:
        members = [(centres >= a) & (centres < b) for a, b in runs]
        members = [
            m if m.any() else np.arange(len(E)) == np.argmin(np.abs(centres - (a + b) / 2))
            for m, (a, b) in zip(members, runs)
        ]
        X = l2_normalize(np.stack([E[m].mean(axis=0) for m in members]))
        _, _, nearest = clf.predict_open(X, return_nearest=True)
        cosine = clf.cosine_scores(X)
        known = np.array([C[m].max(axis=1).mean() >= unknown_cosine for m in members])
        labels = np.where(known, nearest.astype(object), UNKNOWN)
        scores = np.where(known, cosine[np.arange(len(X)), np.searchsorted(clf.classes_, nearest)], cosine.max(axis=1))
        merged = [[*runs[0], labels[0]]]
        for (a, b), label in zip(runs[1:], labels[1:]):
            if label == merged[-1][2]:
                merged[-1][1] = b
            else:
                merged.append([a, b, label])
        if len(merged) == len(runs):
            return [(a, b, str(label), float(s)) for (a, b), label, s in zip(runs, labels, scores)]
        runs = [m[:2] for m in merged]


def rttm_lines(turns, *, file_id: str) -> list[str]:
    """``turns`` as lines of NIST RTTM (``SPEAKER`` records).

    In the file id and the names, white space becomes ``_`` and every control,
    invisible or bidirectional character a ``\\uXXXX`` escape
    (:func:`fewshot.names.shown`), so each record is one line of ten fields.

    Examples
    --------
    >>> rttm_lines([Turn(0.5, 2.25, "ann lee", 0.8)], file_id="meeting")
    ['SPEAKER meeting 1 0.500 1.750 <NA> <NA> ann_lee <NA> <NA>']
    """
    return [
        f"SPEAKER {_rttm_field(file_id)} 1 {a:.3f} {b - a:.3f} <NA> <NA> {_rttm_field(who)} <NA> <NA>"
        for a, b, who, *_ in turns
    ]


def rttm_file_ids(paths) -> list[str]:
    """The RTTM file id of each of ``paths``: its name without the extension, or, where two files share
    that, its path as given without the extension (numbered where even that repeats)."""
    from collections import Counter
    from pathlib import PurePath

    stems = [PurePath(str(p)).stem for p in paths]
    counts = Counter(stems)
    ids = [stem if counts[stem] == 1 else str(PurePath(str(p)).with_suffix("")) for p, stem in zip(paths, stems)]
    seen, out = Counter(), []
    for i in ids:
        seen[i] += 1
        out.append(i if ids.count(i) == 1 else f"{i}#{seen[i]}")
    return out


def _rttm_field(text) -> str:
    from ..names import shown

    return "_".join(shown(" ".join(str(text).split())).split()) or "_"


def write_rttm(path, lines) -> None:
    """Write RTTM ``lines`` (:func:`rttm_lines`) to ``path``, atomically."""
    from ..persistence import atomic_write_text

    atomic_write_text(path, "".join(f"{line}\n" for line in lines))
