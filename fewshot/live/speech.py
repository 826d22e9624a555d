"""Speech in a stream: a causal energy VAD and an enrollment take (turns: :mod:`fewshot.live.turns`).

The rule is the VAD's, :func:`fewshot.audio.vad.speech_threshold_db` (a frame is
speech within ``top_db`` of the loudest frame, never below an absolute floor),
made causal: the loudest frame is that of the last few seconds. What is finally enrolled or
identified still goes through the pipeline's own ``load_speech``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..audio.vad import SILENCE_FLOOR_DBFS, speech_threshold_db
from ..config import CLIP_LEVEL, FeatureConfig

FRAME_S = 0.02
#: Below this level (dBFS) nothing counts as speech, however quiet the room (the pipeline's floor).
FLOOR_DBFS = SILENCE_FLOOR_DBFS
#: A speaker whose median speech level is under this is "too quiet".
QUIET_DBFS = -40.0


def dbfs(y: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    return 20 * np.log10(max(rms, 1e-10))


class SpeechGate:
    """Cut a stream into 20 ms frames and say which ones are speech.

    Parameters
    ----------
    top_db : float
        A frame is speech within this many dB of the loudest recent frame.
    memory_s : float
        How far back "recent" reaches, in seconds.
    """

    def __init__(
        self, *, sr: int, top_db: float = FeatureConfig.top_db, floor_dbfs: float = FLOOR_DBFS, memory_s: float = 10.0
    ):
        self.sr = sr
        self.n = int(round(FRAME_S * sr))
        self.top_db = top_db
        self.floor_dbfs = floor_dbfs
        self._recent = deque(maxlen=int(memory_s / FRAME_S))
        self._rest = np.zeros(0, np.float32)

    def frames(self, y: np.ndarray):
        """Yield ``(frame, level_dbfs, is_speech)`` for each whole frame (the remainder waits)."""
        y = np.concatenate([self._rest, np.asarray(y, np.float32)])
        k = len(y) // self.n
        self._rest = y[k * self.n :]
        for i in range(k):
            frame = y[i * self.n : (i + 1) * self.n]
            level = dbfs(frame)
            self._recent.append(level)
            threshold = speech_threshold_db(max(self._recent), top_db=self.top_db, floor_dbfs=self.floor_dbfs)
            yield frame, level, level > threshold


class EnrollmentTake:
    """One person's recording: audio, seconds of speech, level, clipping."""

    def __init__(self, *, sr: int):
        self.sr = sr
        self.gate = SpeechGate(sr=sr)
        self.blocks: list[np.ndarray] = []
        self.speech_s = 0.0
        self.seconds = 0.0
        self.level_dbfs = -100.0
        self.clipped_samples = 0
        self.last_clip_s = -1.0
        self._speech_levels: list[float] = []

    def add(self, y: np.ndarray) -> None:
        self.blocks.append(y)
        self.seconds += len(y) / self.sr
        clipped = int(np.count_nonzero(np.abs(y) >= CLIP_LEVEL))
        if clipped:
            self.clipped_samples += clipped
            self.last_clip_s = self.seconds
        levels = []
        for _, level, speech in self.gate.frames(y):
            levels.append(level)
            if speech:
                self.speech_s += FRAME_S
                self._speech_levels.append(level)
        if levels:  # the meter shows the loudest frame of the block
            self.level_dbfs = max(levels)

    @property
    def clipping_now(self) -> bool:
        return self.last_clip_s >= 0 and self.seconds - self.last_clip_s < 1.0

    @property
    def speech_level_dbfs(self) -> float | None:
        """Median level of the speech frames so far, in dBFS."""
        return float(np.median(self._speech_levels)) if self._speech_levels else None

    @property
    def too_quiet_now(self) -> bool:
        recent = self._speech_levels[-int(5 / FRAME_S) :]
        return len(recent) >= int(2 / FRAME_S) and float(np.median(recent)) < QUIET_DBFS

    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)

    def warnings(self, *, again: str = "re-enroll (key r)") -> list[str]:
        """What to fix before enrolling again (``again``: how to enroll again)."""
        out = []
        n = max(1, int(self.seconds * self.sr))
        if self.clipped_samples and self.clipped_samples / n > 1e-4:
            out.append(
                f"the signal clipped ({self.clipped_samples} samples at full scale): move back from the "
                f"microphone or lower its input gain, then {again}"
            )
        level = self.speech_level_dbfs
        if level is not None and level < QUIET_DBFS:
            out.append(
                f"the signal is quiet (speech at {level:.0f} dBFS): move closer to the microphone or "
                f"raise its input gain, then {again}"
            )
        return out
