"""Who speaks when: a recording cut into speaker turns, in seconds of the file.

The VAD's speech is joined without its pauses, normalised, and cut into short
overlapping windows (1 s every 0.5 s) embedded in batches
(:mod:`fewshot.timeline`). Each window is scored against the group's members
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
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from .decoders import change_points, viterbi
from .errors import AudioError
from .features import l2_normalize
from .svm import UNKNOWN
from .timeline import SpeechTimeline, embed_windows

DECODERS = ("viterbi", "changepoint")


class Turn(NamedTuple):
    """One person's stretch of speech, in seconds of the file."""

    start_s: float
    end_s: float
    speaker: str
    score: float


@dataclass(frozen=True)
class TurnConfig:
    """How a recording is cut into turns.

    Attributes
    ----------
    window_s, hop_s : float
        Length and hop of the windows that are embedded and scored, in seconds of speech.
    decoder : str
        ``"viterbi"`` or ``"changepoint"``.
    switch_penalty : float
        Viterbi: cosine score a change of speaker costs.
    unknown_cosine : float
        The score of Viterbi's unknown state in every window; a run whose windows' best cosine averages
        under it is unknown.
    change_threshold : float
        Change points: cosine distance between the windows before and after a point that makes it a change.
    snap_s : float
        A change moves to the longest pause at most this far away, in seconds of speech.
    max_pause_s : float
        Longer pauses end a turn (``None``: the model's ``FeatureConfig.max_silence_s``).
    """

    window_s: float = 1.0
    hop_s: float = 0.5
    decoder: str = "viterbi"
    switch_penalty: float = 0.1
    unknown_cosine: float = 0.2
    change_threshold: float = 0.3
    snap_s: float = 0.7
    max_pause_s: float | None = None

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, given {self.decoder!r}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"need 0 < hop_s <= window_s, given hop_s={self.hop_s}, window_s={self.window_s}")


def find_turns(y: np.ndarray, clf, extractor, *, config: TurnConfig | None = None, source="<array>") -> list[Turn]:
    """Who speaks when in ``y``: turns in seconds of ``y``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        The recording, mono at ``extractor.feature_config.sr``.
    clf : fewshot.svm.FittedGroup or fewshot.classifier.GroupSVC
        The group's fitted SVM.
    extractor : fewshot.extractor.Extractor
    config : TurnConfig, optional
    source : str
        The recording's name, for errors.

    Returns
    -------
    turns : list of Turn
        In order of time; no two overlap, and no turn holds a pause longer than ``max_pause_s``.

    Raises
    ------
    AudioError
        With less than ``min_speech_s`` of speech.
    """
    cfg, tc = extractor.feature_config, config or TurnConfig()
    timeline = SpeechTimeline(y, config=cfg)
    if len(timeline.speech) < cfg.min_speech_s * cfg.sr:
        raise AudioError(source, f"too little speech to use: {len(timeline.speech) / cfg.sr:.2f} s found, "
                                 f"need at least {cfg.min_speech_s:g} s")
    E, bounds = embed_windows(extractor, timeline.speech, window_s=tc.window_s, hop_s=tc.hop_s)
    centres = bounds.mean(axis=1) * cfg.hop_length
    C = clf.cosine_scores(E)
    if tc.decoder == "viterbi":
        scores = np.concatenate([C, np.full((len(E), 1), tc.unknown_cosine)], axis=1)
        path = viterbi(scores, switch_penalty=tc.switch_penalty)
        cuts = (centres[1:] + centres[:-1])[path[1:] != path[:-1]] / 2
    else:
        gap = int(np.ceil(tc.window_s / tc.hop_s - 1e-9))
        cuts = bounds[change_points(E, context=gap, gap=gap, threshold=tc.change_threshold), 0] * cfg.hop_length
    cuts = snap_to_pauses(cuts, timeline, within=int(tc.snap_s * cfg.sr))
    edges = np.concatenate([[0], cuts, [len(timeline.speech)]]).astype(np.int64)
    runs = _named_runs(edges, E, C, centres, clf, unknown_cosine=tc.unknown_cosine)
    max_gap = int((cfg.max_silence_s if tc.max_pause_s is None else tc.max_pause_s) * cfg.sr)
    turns = []
    for a, b, label, score in runs:
        pieces = timeline.to_file(a, b)
        start, end = pieces[0]
        for s, e in pieces[1:] + [(None, None)]:
            if s is not None and s - end <= max_gap:
                end = e
                continue
            turns.append(Turn(round(start / cfg.sr, 2), round(end / cfg.sr, 2), label, round(score, 4)))
            start, end = s, e
    return turns


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


def _named_runs(edges: np.ndarray, E: np.ndarray, C: np.ndarray, centres: np.ndarray, clf, *,
                unknown_cosine: float) -> list[tuple[int, int, str, float]]:
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
        members = [m if m.any() else np.arange(len(E)) == np.argmin(np.abs(centres - (a + b) / 2))
                   for m, (a, b) in zip(members, runs)]
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
    """``turns`` as lines of NIST RTTM (``SPEAKER`` records; white space in names becomes ``_``).

    Examples
    --------
    >>> rttm_lines([Turn(0.5, 2.25, "ann lee", 0.8)], file_id="meeting")
    ['SPEAKER meeting 1 0.500 1.750 <NA> <NA> ann_lee <NA> <NA>']
    """
    fid = "_".join(str(file_id).split()) or "_"
    return [f"SPEAKER {fid} 1 {a:.3f} {b - a:.3f} <NA> <NA> {'_'.join(str(who).split()) or '_'} <NA> <NA>"
            for a, b, who, *_ in turns]


def write_rttm(path, lines) -> None:
    """Write RTTM ``lines`` (:func:`rttm_lines`) to ``path``, atomically."""
    from .persistence import atomic_write_text

    atomic_write_text(path, "".join(f"{line}\n" for line in lines))
