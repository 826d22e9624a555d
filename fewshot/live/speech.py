"""Speech in a stream: a causal energy VAD, an enrollment take, rolling windows.

The rule is the VAD's, :func:`fewshot.audio.speech_threshold_db` (a frame is
speech within ``top_db`` of the loudest frame, never below an absolute floor),
made causal: the loudest frame is that of the last few seconds. What is finally enrolled or
identified still goes through the pipeline's own ``load_speech``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..audio import SILENCE_FLOOR_DBFS, speech_threshold_db
from ..config import FeatureConfig

FRAME_S = 0.02
#: Below this level (dBFS) nothing counts as speech, however quiet the room (the pipeline's floor).
FLOOR_DBFS = SILENCE_FLOOR_DBFS
#: Full scale, for clipping (int16 full scale is 32767/32768).
CLIP_LEVEL = 0.999
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

    def __init__(self, *, sr: int = SR, top_db: float = FeatureConfig.top_db, floor_dbfs: float = FLOOR_DBFS,
                 memory_s: float = 10.0):
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
        self._rest = y[k * self.n:]
        for i in range(k):
            frame = y[i * self.n:(i + 1) * self.n]
            level = dbfs(frame)
            self._recent.append(level)
            threshold = speech_threshold_db(max(self._recent), top_db=self.top_db, floor_dbfs=self.floor_dbfs)
            yield frame, level, level > threshold


class EnrollmentTake:
    """One person's recording: audio, seconds of speech, level, clipping."""

    def __init__(self, *, sr: int = SR):
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
        recent = self._speech_levels[-int(5 / FRAME_S):]
        return len(recent) >= int(2 / FRAME_S) and float(np.median(recent)) < QUIET_DBFS

    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)

    def warnings(self) -> list[str]:
        out = []
        n = max(1, int(self.seconds * self.sr))
        if self.clipped_samples and self.clipped_samples / n > 1e-4:
            out.append(f"the signal clipped ({self.clipped_samples} samples at full scale): move back from the "
                       "microphone or lower its input gain, then re-enroll (key r)")
        level = self.speech_level_dbfs
        if level is not None and level < QUIET_DBFS:
            out.append(f"the signal is quiet (speech at {level:.0f} dBFS): move closer to the microphone or "
                       "raise its input gain, then re-enroll (key r)")
        return out


@dataclass(frozen=True)
class Window:
    """A stretch of speech to identify; times in seconds since the stream began."""

    start_s: float
    end_s: float
    speech_s: float
    y: np.ndarray


class Windower:
    """Rolling windows of speech from a stream.

    Inside an utterance, a window of the last ``window_s`` seconds is emitted
    each time ``hop_s`` more seconds of speech came in; when the speaker stops
    (``end_pause_s`` of silence) the rest is emitted at once if it holds at
    least ``min_speech_s`` of new speech. Windows never span two utterances.
    """

    def __init__(self, *, sr: int = SR, window_s: float = 4.0, hop_s: float = 2.0, end_pause_s: float = 0.6,
                 min_speech_s: float = 1.0):
        self.sr = sr
        self.gate = SpeechGate(sr=sr)
        self.window_frames = int(round(window_s / FRAME_S))
        self.hop_s = hop_s
        self.end_pause_s = end_pause_s
        self.min_speech_s = min_speech_s
        self.frames_seen = 0
        self._buf: deque = deque(maxlen=self.window_frames + int(end_pause_s / FRAME_S) + 2)
        self._in_utterance = False
        self._silence_s = 0.0
        self._new_speech_s = 0.0
        self.level_dbfs = -100.0

    def add(self, y: np.ndarray) -> list[Window]:
        out, levels = [], []
        for frame, level, speech in self.gate.frames(y):
            self.frames_seen += 1
            levels.append(level)
            if speech:
                if not self._in_utterance:
                    self._in_utterance, self._new_speech_s = True, 0.0
                    self._buf.clear()
                self._buf.append((frame, True, self.frames_seen))
                self._silence_s = 0.0
                self._new_speech_s += FRAME_S
                if self._new_speech_s >= self.hop_s - 1e-9 and self._voiced_frames() >= self.window_frames:
                    out.append(self._emit())
            elif self._in_utterance:
                self._buf.append((frame, False, self.frames_seen))
                self._silence_s += FRAME_S
                if self._silence_s >= self.end_pause_s - 1e-9:
                    out.extend(self.flush())
        if levels:
            self.level_dbfs = max(levels)
        return out

    def flush(self) -> list[Window]:
        """End the current utterance, emitting its unlabelled speech if there is enough."""
        out = []
        if self._in_utterance and self._new_speech_s >= self.min_speech_s - 1e-9:
            out.append(self._emit())
        self._in_utterance = False
        self._buf.clear()
        return out

    def _voiced_frames(self) -> int:
        """Frames from the buffer's start to its last speech frame."""
        items = list(self._buf)
        while items and not items[-1][1]:
            items.pop()
        return len(items)

    def _emit(self) -> Window:
        items = list(self._buf)
        while items and not items[-1][1]:
            items.pop()
        items = items[-self.window_frames:]
        end = items[-1][2] * FRAME_S
        speech_s = sum(FRAME_S for _, s, _ in items if s)
        self._new_speech_s = 0.0
        return Window(round(end - len(items) * FRAME_S, 2), round(end, 2), round(speech_s, 2),
                      np.concatenate([f for f, _, _ in items]))
