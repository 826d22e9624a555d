"""Who speaks when, as a stream: the turn decoder of :mod:`fewshot.turns`, fed a block at a time.

:class:`TurnStream` keeps the speech heard since the last final turn (the
causal gate of :mod:`fewshot.live.speech` drops the pauses), embeds each new
1 s window of it (every 0.5 s of speech, as :func:`fewshot.timeline.embed_windows`
cuts them, each window at the model's loudness) and re-decodes that pending
speech with the same scores, Viterbi pass, snapping to pauses and naming of
runs as :func:`fewshot.turns.find_turns`. The last run is the current turn's
provisional label (:attr:`TurnStream.current`); a turn is final when the
speaker changed and ``confirm_s`` of speech after the change agree, or when a
pause longer than ``max_pause_s`` ends it (or the input ends).

Examples
--------
>>> stream = TurnStream(clf, extractor)                         # doctest: +SKIP
>>> for block in blocks:                                        # doctest: +SKIP
...     for turn in stream.add(block):
...         print(turn)                                         # final: Turn(start_s, end_s, speaker, score)
...     stream.current                                          # provisional, or None
>>> stream.flush()                                              # doctest: +SKIP
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..decoders import viterbi
from ..turns import Turn, TurnConfig, named_runs, snap_to_pauses
from .speech import SpeechGate


class TurnStream:
    """Final and provisional turns of a stream of audio, in seconds since the stream began.

    Parameters
    ----------
    clf : fewshot.svm.FittedGroup
        The group's fitted SVM (``SpeakerIdentifier.classifier(group)``).
    extractor : fewshot.extractor.Extractor
    config : TurnConfig, optional
        Windows, switch penalty, unknown score and snapping, as for :func:`fewshot.turns.find_turns`.
    confirm_s : float
        Seconds of speech after a change of speaker before the turn before it is final.
    min_turn_s : float
        Speech between two long pauses shorter than this is dropped (a click, a breath).
    memory_s : float
        The gate's loudness reference is the loudest frame of the last ``memory_s`` seconds.

    Attributes
    ----------
    current : Turn or None
        The turn being heard: its start, the end of the speech so far, the provisional speaker and score.
    level_dbfs : float
        The loudest frame of the last block.
    """

    def __init__(self, clf, extractor, *, config: TurnConfig | None = None, confirm_s: float = 1.5,
                 min_turn_s: float = 0.2, memory_s: float = 10.0, early_s: float | None = 0.25):
        self.clf, self.extractor = clf, extractor
        cfg, self.tc = extractor.feature_config, config or TurnConfig()
        self.sr = cfg.sr
        self.gate = SpeechGate(sr=self.sr, top_db=cfg.top_db, memory_s=memory_s)
        self.n = self.gate.n  # samples per gate frame
        self.win, self.hop = round(self.tc.window_s * self.sr), round(self.tc.hop_s * self.sr)
        self.win_frames = round(self.tc.window_s * 1000 / cfg.hop_ms)
        self.max_pause = self.tc.max_pause_s if self.tc.max_pause_s is not None else cfg.max_silence_s
        self.confirm = int(confirm_s * self.sr)
        self.min_turn = int(min_turn_s * self.sr)
        self.early = None if early_s is None else int(early_s * self.sr)
        self.samples_seen = 0
        self.level_dbfs = -100.0
        self.current: Turn | None = None
        self._reset()

    def _reset(self) -> None:
        self._frames: list[np.ndarray] = []  # the pending speech, gate frame by gate frame
        self._at: list[int] = []  # where each of those frames starts, in samples of the stream
        self._E: list[np.ndarray] = []  # embeddings of the pending speech's windows, k * hop onwards
        self._silence = 0  # samples of silence since the last speech frame
        self._decoded = 0  # samples of pending speech at the last decoding
        self.current = None

    # ------------------------------------------------------------ input
    def add(self, y: np.ndarray) -> list[Turn]:
        """Take the next samples of the stream; returns the turns that became final."""
        out, levels = [], []
        for frame, level, speech in self.gate.frames(y):
            self.samples_seen += self.n
            levels.append(level)
            if speech:
                self._frames.append(frame)
                self._at.append(self.samples_seen - self.n)
                self._silence = 0
                n = len(self._frames) * self.n
                if n >= len(self._E) * self.hop + self.win:
                    out += self._decode(final=False)
                elif self.early and n >= self.hop and n - self._decoded >= self.early:
                    out += self._decode(final=False, tail=True)
            elif self._frames:
                self._silence += self.n
                if self._silence >= self.max_pause * self.sr - 1e-6:
                    out += self.flush()
        if levels:
            self.level_dbfs = max(levels)
        return out

    def flush(self) -> list[Turn]:
        """End the pending speech (a long pause, the end of the input): its turns, all final."""
        out = self._decode(final=True) if len(self._frames) * self.n >= self.min_turn else []
        self._reset()
        return out

    # ------------------------------------------------------------ decoding
    def _decode(self, *, final: bool, tail: bool = False) -> list[Turn]:
        out = []
        while True:
            speech = np.concatenate(self._frames)
            self._decoded = len(speech)
            self._embed_windows(speech)
            E = np.stack(self._E) if self._E else np.zeros((0, self.extractor.dim), np.float32)
            centres = np.arange(len(E)) * self.hop + self.win / 2
            if (final or tail) and (not len(E) or centres[-1] + self.win / 2 < len(speech)):
                a = max(0, len(speech) - self.win)  # as window_starts: a last window ends with the speech
                E = np.concatenate([E, self._embed([speech[a:]])])
                centres = np.append(centres, (a + len(speech)) / 2)
            runs = self._runs(speech, E, centres)
            if final:
                return out + [self._turn(*r) for r in runs]
            if len(runs) > 1 and len(speech) - runs[0][1] >= self.confirm:
                out.append(self._turn(*runs[0]))
                self._drop(runs[0][1] // self.n)
                continue
            self.current = self._turn(*runs[-1])
            return out

    def _runs(self, speech: np.ndarray, E: np.ndarray, centres: np.ndarray) -> list:
        """``(start, end, label, score)`` in samples of the pending speech, as :func:`find_turns` names them."""
        C = self.clf.cosine_scores(E)
        scores = np.concatenate([C, np.full((len(E), 1), self.tc.unknown_cosine)], axis=1)
        path = viterbi(scores, switch_penalty=self.tc.switch_penalty)
        cuts = (centres[1:] + centres[:-1])[path[1:] != path[:-1]] / 2
        cuts = snap_to_pauses(cuts, self._timeline(len(speech)), within=int(self.tc.snap_s * self.sr))
        cuts = np.unique(np.clip(np.round(cuts / self.n).astype(np.int64), 1, len(self._frames) - 1)) * self.n
        edges = np.concatenate([[0], cuts, [len(speech)]]).astype(np.int64)
        return named_runs(edges, E, C, centres, self.clf, unknown_cosine=self.tc.unknown_cosine)

    def _timeline(self, n_speech: int) -> SimpleNamespace:
        """The joins and pauses of the pending speech, as :func:`fewshot.turns.snap_to_pauses` reads a timeline."""
        at = np.asarray(self._at, dtype=np.int64)
        jump = np.flatnonzero(at[1:] != at[:-1] + self.n) + 1
        return SimpleNamespace(joins=np.concatenate([[0], jump * self.n, [n_speech]]),
                               pauses_s=(at[jump] - at[jump - 1] - self.n) / self.sr)

    def _turn(self, a: int, b: int, label: str, score: float) -> Turn:
        """Speech samples ``[a, b)`` as a turn in seconds of the stream."""
        start = self._at[a // self.n] + a % self.n
        last = b - 1
        stop = self._at[last // self.n] + last % self.n + 1
        return Turn(round(int(start) / self.sr, 2), round(int(stop) / self.sr, 2), str(label), round(float(score), 4))

    def _drop(self, k: int) -> None:
        """Forget the first ``k`` frames (a final turn); the rest is embedded again from its own start."""
        self._frames, self._at, self._E = self._frames[k:], self._at[k:], []

    def _embed_windows(self, speech: np.ndarray) -> None:
        starts = range(len(self._E) * self.hop, len(speech) - self.win + 1, self.hop)
        if len(starts):
            self._E += list(self._embed([speech[a:a + self.win] for a in starts]))

    def _embed(self, pieces) -> np.ndarray:
        """Unit embeddings of speech pieces, each at the model's loudness (:meth:`Extractor.windows`, own frames):
        whole windows cut to ``window_s``, a shorter piece as :meth:`Extractor.embed` pads it."""
        cfg, ex = self.extractor.feature_config, self.extractor
        if all(len(p) == self.win for p in pieces):
            return ex.windows(np.concatenate(pieces), window_s=self.tc.window_s, hop_s=self.tc.window_s,
                              own_frames=True, normalise=True)
        return np.concatenate([ex.windows(p, window_s=len(p) / self.sr, hop_s=len(p) / self.sr, own_frames=True,
                                          normalise=True, min_s=cfg.segment_s) for p in pieces])


def warm_up(extractor, *, config: TurnConfig | None = None) -> None:
    """Run the extractor once on each input shape a stream embeds, so that the first label comes fast."""
    noise = np.random.default_rng(0).normal(0, 0.05, extractor.feature_config.sr).astype(np.float32)
    stream = TurnStream(None, extractor, config=config)
    stream._embed([noise[:stream.win]])
    stream._embed([noise[:stream.hop]])


def stream_turns(y: np.ndarray, clf, extractor, *, block_s: float = 0.1, config: TurnConfig | None = None,
                 on_turn=None) -> tuple[list[Turn], list[tuple[float, Turn]]]:
    """``y`` fed to a :class:`TurnStream` in blocks of ``block_s``, as a microphone would give it.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Audio at ``extractor.feature_config.sr``.
    on_turn : callable, optional
        Called with each final turn as soon as it is final.

    Returns
    -------
    turns : list of Turn
        The final turns, in seconds of ``y``.
    shown : list of (float, Turn)
        Each change of the provisional label: when it was shown (seconds of ``y`` heard so far) and the
        current turn then.
    """
    stream = TurnStream(clf, extractor, config=config)
    step = max(1, int(block_s * stream.sr))
    turns, shown = [], []
    for i in range(0, len(y) + step, step):
        new = stream.add(y[i:i + step]) if i < len(y) else stream.flush()
        for t in new:
            turns.append(t)
            if on_turn:
                on_turn(t)
        cur = stream.current
        if cur is not None and (not shown or shown[-1][1][2] != cur.speaker or shown[-1][1][0] != cur.start_s):
            shown.append((round(stream.samples_seen / stream.sr, 2), cur))
    return turns, shown
