"""Who speaks when, as a stream: the turn decoder of :mod:`fewshot.turns.decoder`, fed a block at a time.

:class:`TurnStream` gates the stream (the causal gate of :mod:`fewshot.live.speech`
drops the pauses), embeds each new 1 s window of its speech (every 0.5 s of
speech, as :func:`fewshot.turns.timeline.embed_windows` cuts them, each window at the
model's loudness) and feeds it to a :class:`fewshot.turns.decoder.TurnDecoder`, the
decoder of :func:`fewshot.turns.decoder.find_turns`, with the timeline of the speech
since the last long pause. The decoder's last run is the current turn's
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

import numpy as np

from ..config import TurnConfig
from ..turns.decoder import Turn, TurnDecoder
from ..turns.timeline import SpeechTimeline
from .speech import SpeechGate


class TurnStream:
    """Final and provisional turns of a stream of audio, in seconds since the stream began.

    Parameters
    ----------
    clf : fewshot.groups.fitted.FittedGroup
        The group's fitted SVM (``SpeakerIdentifier.classifier(group)``).
    extractor : fewshot.model.extractor.Extractor
    config : TurnConfig, optional
        Windows, switch penalty, unknown score and snapping, as for :func:`fewshot.turns.decoder.find_turns`.
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
    decoder : fewshot.turns.decoder.TurnDecoder
        Decides the turns of the speech since the stream began or the last long pause.
    """

    def __init__(
        self,
        clf,
        extractor,
        *,
        config: TurnConfig | None = None,
        confirm_s: float = 1.5,
        min_turn_s: float = 0.2,
        memory_s: float = 10.0,
        early_s: float | None = 0.25,
    ):
        self.clf, self.extractor = clf, extractor
        cfg, self.tc = extractor.feature_config, config or TurnConfig()
        self.sr = cfg.sr
        self.gate = SpeechGate(sr=self.sr, top_db=cfg.top_db, memory_s=memory_s)
        self.n = self.gate.n  # samples per gate frame
        self.win, self.hop = round(self.tc.window_s * self.sr), round(self.tc.hop_s * self.sr)
        self.win_frames = round(self.tc.window_s * 1000 / cfg.hop_ms)
        self.max_pause = self.tc.pause_s(cfg)
        self.confirm_s = confirm_s
        self.min_turn = int(min_turn_s * self.sr)
        self.early = None if early_s is None else int(early_s * self.sr)
        self.samples_seen = 0
        self.level_dbfs = -100.0
        self.current: Turn | None = None
        self._reset()

    def _reset(self) -> None:
        """Start afresh (the stream's start, or after a long pause): no speech, no windows."""
        self.decoder = TurnDecoder(
            self.clf, features=self.extractor.feature_config, config=self.tc, confirm_s=self.confirm_s
        )
        self._intervals: list[list[int]] = []  # the speech since then, [start, end) in samples of the stream
        self._n = 0  # samples of that speech
        self._held: list[np.ndarray] = []  # its gate frames still to be embedded, from speech sample _held_at
        self._held_at = 0
        self._k = 0  # windows embedded: the next starts at _k * hop of the speech
        self._silence = 0  # samples of silence since the last speech frame
        self._decoded = 0  # samples of speech at the last decoding
        self.current = None

    # ------------------------------------------------------------ input
    def add(self, y: np.ndarray) -> list[Turn]:
        """Take the next samples of the stream; returns the turns that became final."""
        out, levels = [], []
        for frame, level, speech in self.gate.frames(y):
            self.samples_seen += self.n
            levels.append(level)
            if speech:
                at = self.samples_seen - self.n
                if self._intervals and self._intervals[-1][1] == at:
                    self._intervals[-1][1] += self.n
                else:
                    self._intervals.append([at, at + self.n])
                self._held.append(frame)
                self._n += self.n
                self._silence = 0
                n = self._n
                if n >= self._k * self.hop + self.win:
                    out += self._decode(final=False)
                elif self.early and n - self.decoder.start >= self.hop and n - self._decoded >= self.early:
                    out += self._decode(final=False, tail=True)
            elif self._n:
                self._silence += self.n
                if self._silence >= self.max_pause * self.sr - 1e-6:
                    out += self.flush()
        if levels:
            self.level_dbfs = max(levels)
        return out

    def flush(self) -> list[Turn]:
        """End the pending speech (a long pause, the end of the input): its turns, all final."""
        out = self._decode(final=True) if self._n - self.decoder.start >= self.min_turn else []
        self._reset()
        return out

    # ------------------------------------------------------------ decoding
    def _decode(self, *, final: bool, tail: bool = False) -> list[Turn]:
        """Embed the new windows of the speech (and, for ``tail``/``final``, one ending with it) and feed them
        to the decoder."""
        n, self._decoded = self._n, self._n
        speech = np.concatenate(self._held)  # speech samples _held_at onwards
        starts = np.arange(self._k * self.hop, n - self.win + 1, self.hop, dtype=np.int64)
        spans = np.stack([starts, starts + self.win], axis=1)
        E = (
            self._embed([speech[a - self._held_at : a - self._held_at + self.win] for a in starts])
            if len(starts)
            else np.zeros((0, self.extractor.dim), np.float32)
        )
        self._k += len(starts)
        last = None
        if (final or tail) and (spans[-1, 1] if len(spans) else self.decoder.end) < n:
            a = max(0, n - self.win)  # as window_starts: a last window ends with the speech
            last = self._embed([speech[a - self._held_at :]]), np.array([[a, n]])
        timeline = SpeechTimeline.of_intervals(self._intervals, sr=self.sr)
        if final:
            if last is not None:
                E, spans = np.concatenate([E, last[0]]), np.concatenate([spans, last[1]])
            return self.decoder.finish(timeline, E, spans)
        out, self.current = self.decoder.feed(E, spans, timeline, tail=last)
        keep = max(self._held_at, min(self._k * self.hop, n - self.win) // self.n * self.n)
        self._held, self._held_at = self._held[(keep - self._held_at) // self.n :], keep
        return out

    def _embed(self, pieces) -> np.ndarray:
        """Unit embeddings of speech pieces, each at the model's loudness (:meth:`Extractor.windows`, own frames):
        whole windows cut to ``window_s``, a shorter piece as :meth:`Extractor.embed` pads it."""
        cfg, ex = self.extractor.feature_config, self.extractor
        if all(len(p) == self.win for p in pieces):
            return ex.windows(
                np.concatenate(pieces),
                window_s=self.tc.window_s,
                hop_s=self.tc.window_s,
                own_frames=True,
                normalise=True,
            )
        return np.concatenate(
            [
                ex.windows(
                    p,
                    window_s=len(p) / self.sr,
                    hop_s=len(p) / self.sr,
                    own_frames=True,
                    normalise=True,
                    min_s=cfg.segment_s,
                )
                for p in pieces
            ]
        )


def warm_up(extractor, *, config: TurnConfig | None = None) -> None:
    """Run the extractor once on each input shape a stream embeds, so that the first label comes fast."""
    noise = np.random.default_rng(0).normal(0, 0.05, extractor.feature_config.sr).astype(np.float32)
    stream = TurnStream(None, extractor, config=config)
    stream._embed([noise[: stream.win]])
    stream._embed([noise[: stream.hop]])


def stream_turns(
    y: np.ndarray, clf, extractor, *, block_s: float = 0.1, config: TurnConfig | None = None, on_turn=None
) -> tuple[list[Turn], list[tuple[float, Turn]]]:
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
        new = stream.add(y[i : i + step]) if i < len(y) else stream.flush()
        for t in new:
            turns.append(t)
            if on_turn:
                on_turn(t)
        cur = stream.current
        if cur is not None and (not shown or shown[-1][1][2] != cur.speaker or shown[-1][1][0] != cur.start_s):
            shown.append((round(stream.samples_seen / stream.sr, 2), cur))
    return turns, shown
