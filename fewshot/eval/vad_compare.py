"""Voice-activity detectors side by side, under noise: wrappers, test conditions and frame scoring.

Every detector answers on one grid, the energy VAD's (:func:`fewshot.audio.vad.speech_intervals`):
a 25 ms frame centred every 10 ms, ``1 + n // 160`` frames for ``n`` samples at
16 kHz. A detector with other frames (webrtcvad: 10, 20 or 30 ms back to back;
silero: 32 ms chunks) gives each grid frame the decision of its own frame that
holds the grid frame's centre.

- :func:`energy_mask`: the project's energy VAD (``top_db``, -60 dBFS floor);
- :func:`webrtc_mask`: webrtcvad (package ``webrtcvad-wheels``), aggressiveness 0-3;
- :func:`SileroOnnx`: silero-vad's ONNX model (package ``silero-vad``, its file
  only: the package itself, which imports torch, is never imported) run by
  onnxruntime on one thread, speech where the chunk's probability is at least
  ``threshold``; raw chunk decisions, without silero's own smoothing
  (``get_speech_timestamps``), as the other detectors are scored raw too.

:func:`degraded` makes the test conditions from :mod:`fewshot.audio.degrade` alone;
:func:`score` counts a mask against a reference mask. webrtcvad, onnxruntime and
silero-vad are imported here and by ``scripts/compare_vad.py`` only, never by the runtime.
"""

from __future__ import annotations

import importlib.util
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import degrade
from ..audio.vad import speech_intervals

SR = 16000
HOP = SR // 100  # 10 ms: the grid every mask is on
PAD_S = 1.0  # silence before and after every utterance, so noise-only stretches exist


def n_frames(n: int) -> int:
    """Frames of the grid for ``n`` samples (those of :func:`fewshot.audio.vad.frame_rms`)."""
    return 1 + n // HOP


def _grid_from(decisions: np.ndarray, *, frame_len: int, n: int) -> np.ndarray:
    """Grid mask from decisions on back-to-back frames of ``frame_len`` samples."""
    idx = np.minimum(np.arange(n_frames(n)) * HOP // frame_len, len(decisions) - 1)
    return decisions[idx] if len(decisions) else np.zeros(n_frames(n), bool)


def energy_mask(y: np.ndarray, *, top_db: float = 35.0) -> np.ndarray:
    """The project's energy VAD (:func:`fewshot.audio.vad.speech_intervals`) as a grid mask."""
    mask = np.zeros(n_frames(len(y)), bool)
    for s, e in speech_intervals(y, sr=SR, top_db=top_db):
        mask[s // HOP : int(np.ceil(e / HOP))] = True
    return mask


def _pcm16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(y, np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def webrtc_mask(y: np.ndarray, *, mode: int, frame_ms: int = 30) -> np.ndarray:
    """webrtcvad's decisions (aggressiveness ``mode``, frames of ``frame_ms``) as a grid mask."""
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    frame_len = SR * frame_ms // 1000
    pcm = _pcm16(y)
    pcm = np.pad(pcm, (0, -len(pcm) % frame_len))
    buf = pcm.tobytes()
    step = 2 * frame_len
    decisions = np.array([vad.is_speech(buf[k : k + step], SR) for k in range(0, len(buf), step)], bool)
    return _grid_from(decisions, frame_len=frame_len, n=len(y))


def silero_model_path(name: str = "silero_vad.onnx") -> Path:
    """The model file inside the installed ``silero-vad`` wheel, found without importing it (it imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"silero-vad's model file {path} is missing")
    return path


class SileroOnnx:
    """silero-vad's ONNX model on onnxruntime (one thread, CPU): a probability per 32 ms chunk."""

    CHUNK, CONTEXT = 512, 64

    def __init__(self, path: str | Path | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.inter_op_num_threads = opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path or silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def probs(self, y: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample chunk (state carried over, as in a stream)."""
        y = np.asarray(y, np.float32)
        y = np.pad(y, (0, -len(y) % self.CHUNK))
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, self.CONTEXT), np.float32)
        sr = np.array(SR, np.int64)
        out = np.empty(len(y) // self.CHUNK, np.float32)
        for j in range(len(out)):
            x = np.concatenate([context, y[None, j * self.CHUNK : (j + 1) * self.CHUNK]], axis=1)
            p, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            out[j] = p.reshape(-1)[0]
            context = x[:, -self.CONTEXT :]
        return out

    def mask(self, y: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
        return _grid_from(self.probs(y) >= threshold, frame_len=self.CHUNK, n=len(y))


class SileroSequence(SileroOnnx):
    """The same model's "sequence" export (``silero_vad_16k_sequence.onnx``): one ONNX call per block of
    up to ``max_frames`` chunks instead of one per chunk; the same probabilities, far fewer Python calls."""

    def __init__(self, path: str | Path | None = None, *, max_frames: int = 512):
        super().__init__(path or silero_model_path("silero_vad_16k_sequence.onnx"))
        self.max_frames = max_frames

    def probs(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, np.float32)
        frames = np.pad(y, (0, -len(y) % self.CHUNK)).reshape(-1, self.CHUNK)
        context = np.concatenate([np.zeros((1, self.CONTEXT), np.float32), frames[:-1, -self.CONTEXT :]])
        x = np.concatenate([context, frames], axis=1)
        h = c = np.zeros((1, 1, 128), np.float32)
        out = []
        for k in range(0, len(x), self.max_frames):
            p, h, c = self.session.run(
                ["speech_probs", "hn", "cn"], {"input": x[k : k + self.max_frames], "h": h, "c": c}
            )
            out.append(np.asarray(p).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def detectors(*, silero: SileroOnnx | None = None, webrtc_frame_ms: int = 30) -> dict:
    """``{name: y -> grid mask}``: the detectors compared."""
    out = {"energy35": lambda y: energy_mask(y, top_db=35.0)}
    for mode in (1, 2, 3):
        out[f"webrtc{mode}"] = lambda y, m=mode: webrtc_mask(y, mode=m, frame_ms=webrtc_frame_ms)
    if silero is not None:
        out["silero0.5"] = lambda y: silero.mask(y, threshold=0.5)
    return out


# --- conditions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    name: str
    noise: str = ""  # "", "ssn" or "babble"
    snr_db: float | None = None
    rt60_s: float = 0.0


CONDITIONS = (
    Condition("clean"),
    Condition("ssn20", "ssn", 20.0),
    Condition("ssn10", "ssn", 10.0),
    Condition("ssn5", "ssn", 5.0),
    Condition("babble10", "babble", 10.0),
    Condition("room0.6+ssn10", "ssn", 10.0, rt60_s=0.6),
)


def pad(y: np.ndarray, *, seconds: float = PAD_S) -> np.ndarray:
    """``y`` with ``seconds`` of digital silence before and after."""
    z = np.zeros(int(seconds * SR), np.float32)
    return np.concatenate([z, np.asarray(y, np.float32), z])


def degraded(y: np.ndarray, cond: Condition, *, index: int, seed: int = 0, others=()) -> np.ndarray:
    """The padded utterance ``y`` (:func:`pad` of it) under ``cond``, seeded by name and ``index``.

    Built from :mod:`fewshot.audio.degrade` only. The SNR is the speech's (the
    unpadded utterance's power, pauses included, as in
    :mod:`fewshot.eval.conditions`), not the padded file's: the noise level is
    set from ``y`` and then runs through the padding at that level.
    ``others`` are the babble talkers' waveforms.
    """
    padded = pad(y)
    if cond.name == "clean":
        return padded
    rng = np.random.default_rng([seed, zlib.crc32(cond.name.encode()), index])
    out = padded
    if cond.rt60_s:
        out = degrade.reverberate(out, degrade.synthetic_rir(sr=SR, rt60_s=cond.rt60_s, drr_db=0.0, rng=rng))
    if cond.noise:
        noise = (
            degrade.speech_shaped_noise(y, len(out), rng=rng)
            if cond.noise == "ssn"
            else degrade.babble(others, len(out), rng=rng)
        )
        # add_noise sets the noise from the power of what it is given (the padded file); shift the SNR so
        # that the noise sits cond.snr_db below the utterance's own power
        shift_db = 20 * np.log10(_rms(out) / max(_rms(y), 1e-12))
        out = degrade.add_noise(out, noise, snr_db=cond.snr_db + shift_db)
    return out


def _rms(y) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(y, np.float64))))) if len(y) else 0.0


def padding_mask(n_utt: int, *, seconds: float = PAD_S) -> np.ndarray:
    """Grid frames of a padded utterance that lie wholly in the padding: noise-only whatever the reference."""
    p = int(seconds * SR)
    half = 200  # half a 25 ms frame
    centres = np.arange(n_frames(n_utt + 2 * p)) * HOP
    return (centres + half <= p) | (centres - half >= p + n_utt)


# --- scoring --------------------------------------------------------------------------------------


@dataclass
class Counts:
    """Frame counts of one detector under one condition, against one reference."""

    speech: int = 0  # reference speech frames
    noise: int = 0  # reference non-speech frames
    hits: int = 0  # speech frames called speech
    false_alarms: int = 0  # non-speech frames called speech
    pad_frames: int = 0  # frames in the padding (reference-free noise-only)
    pad_alarms: int = 0  # of them called speech

    def add(self, mask: np.ndarray, ref: np.ndarray, pad_only: np.ndarray | None = None) -> Counts:
        mask, ref = np.asarray(mask, bool), np.asarray(ref, bool)
        if mask.shape != ref.shape:
            raise ValueError(f"mask of {mask.shape} frames against a reference of {ref.shape}")
        self.speech += int(ref.sum())
        self.noise += int((~ref).sum())
        self.hits += int((mask & ref).sum())
        self.false_alarms += int((mask & ~ref).sum())
        if pad_only is not None:
            self.pad_frames += int(pad_only.sum())
            self.pad_alarms += int((mask & pad_only).sum())
        return self

    def rates(self) -> dict:
        kept = self.hits + self.false_alarms
        nan = float("nan")
        return {
            "false_alarm": self.false_alarms / self.noise if self.noise else nan,
            "miss": 1 - self.hits / self.speech if self.speech else nan,
            "noise_share_of_kept": self.false_alarms / kept if kept else nan,
            "kept_share": kept / (self.speech + self.noise) if self.speech + self.noise else nan,
            "padding_false_alarm": self.pad_alarms / self.pad_frames if self.pad_frames else nan,
            "frames": self.speech + self.noise,
            "speech_frames": self.speech,
        }


def score(mask: np.ndarray, ref: np.ndarray, pad_only: np.ndarray | None = None) -> dict:
    """Rates of one mask against one reference (:meth:`Counts.rates`)."""
    return Counts().add(mask, ref, pad_only).rates()


def speed(fn, y: np.ndarray, *, repeats: int = 3) -> dict:
    """Seconds of audio per second of compute (x real time) of ``fn(y)``: the median of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(y)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return {"audio_s": len(y) / SR, "seconds": median, "x_real_time": len(y) / SR / median, "runs": times}
