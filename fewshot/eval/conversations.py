"""Conversations: who speaks when, scored as diarization.

Synthetic recordings are built from each dev speaker's held-out speech (the
protocol's split, :mod:`fewshot.eval.protocol`): enrollment from the first
15 s of a speaker's speech, turns cut at random from their speech after 35 s.
Each conversation has 3 to 5 speakers, turns of 1 to 8 s (never two in a row
by the same person), pauses of 0 to 1 s, each person at their own level
(within 4 dB of -23 dBFS), over a faint noise floor, about 2 minutes long;
all of it is drawn from one seed. The group is the conversation's speakers.

Systems, each giving ``(start_s, end_s, speaker)`` in seconds of the file:

- ``turns``: :func:`fewshot.turns.decoder.find_turns` (Viterbi);
- ``changepoint``: the same with the change-point decoder;
- ``blocks``: ``fewshot identify --segments`` before turns, 3 s pieces of
  the speech after pauses over 0.5 s are cut, their times read as seconds of the file;
- ``demo``: the live demo's file mode, the same decoder as a stream
  (:mod:`fewshot.live.turns`); its summary also has the latency of its
  provisional label (:func:`label_latencies`).

:func:`evaluate_conversations` runs them and scores them
(:class:`fewshot.eval.diarization.Scores`): diarization error rate with
pyannote.metrics (collar 0.25 s either side of each reference boundary,
pyannote's ``collar=0.5``, overlap scored), identification error rate (the
same, names not remapped), speaker-time accuracy (reference speech time given
the right name, no collar) and boundary errors at each change of speaker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.decode import SAMPLE_RATE
from ..audio.vad import normalize_loudness, trim_silence
from ..datasets import speaker_folders
from .protocol import protocol_speech

#: Reference boundaries are not scored this close (seconds, either side).
COLLAR_S = 0.25
SYSTEMS = ("turns", "changepoint", "blocks", "demo")


@dataclass
class ConversationSpeaker:
    """One speaker's enrollment speech and the later speech their turns are cut from (16 kHz)."""

    name: str
    enroll: np.ndarray
    speech: np.ndarray


@dataclass
class Conversation:
    """A recording and who speaks when in it: ``reference`` holds ``(start_s, end_s, speaker)``."""

    y: np.ndarray
    reference: list
    speakers: list


def conversation_speakers(
    root,
    *,
    enroll_s: float = 15.0,
    offset_s: float = 35.0,
    min_speech_s: float = 10.0,
    sr: int = SAMPLE_RATE,
    progress=None,
) -> list[ConversationSpeaker]:
    """Speakers of a speaker-per-folder dataset with at least ``min_speech_s`` of speech after ``offset_s``."""
    folders = speaker_folders(root)
    items = folders.items() if progress is None else progress(folders.items(), total=len(folders))
    out = []
    for name, files in items:
        y = protocol_speech(files, sr=sr)
        later = y[int(offset_s * sr) :]
        if len(later) >= min_speech_s * sr:
            out.append(ConversationSpeaker(name, y[: int(enroll_s * sr)], later))
    return out


def make_conversation(
    speakers: list[ConversationSpeaker],
    rng,
    *,
    duration_s: float = 120.0,
    n_speakers=(3, 5),
    turn_s=(1.0, 8.0),
    pause_s=(0.0, 1.0),
    sr: int = SAMPLE_RATE,
) -> Conversation:
    """One conversation of ``n_speakers`` (inclusive range) drawn from ``speakers`` with ``rng``."""
    chosen = [
        speakers[i] for i in rng.choice(len(speakers), rng.integers(n_speakers[0], n_speakers[1] + 1), replace=False)
    ]
    gains = 10 ** (rng.uniform(-4, 4, len(chosen)) / 20)
    parts, reference, t, last = [np.zeros(int(0.5 * sr), np.float32)], [], 0.5, -1
    while t < duration_s:
        k = int(rng.choice([i for i in range(len(chosen)) if i != last]))
        speech = chosen[k].speech
        n = min(len(speech), int(rng.uniform(*turn_s) * sr))
        a = int(rng.integers(0, len(speech) - n + 1))
        parts.append(gains[k] * normalize_loudness(speech[a : a + n]))
        reference.append((round(t, 3), round(t + n / sr, 3), chosen[k].name))
        pause = int(rng.uniform(*pause_s) * sr)
        parts.append(np.zeros(pause, np.float32))
        t += (n + pause) / sr
        last = k
    parts.append(np.zeros(int(0.5 * sr), np.float32))
    y = np.concatenate(parts).astype(np.float32)
    y += (10 ** (-65 / 20) * rng.standard_normal(len(y))).astype(np.float32)
    return Conversation(np.clip(y, -1, 1), reference, [s.name for s in chosen])


def make_conversations(speakers, *, n: int = 50, seed: int = 0, **kwargs) -> list[Conversation]:
    """``n`` conversations from one seed (:func:`make_conversation`'s keywords pass through)."""
    rng = np.random.default_rng(seed)
    return [make_conversation(speakers, rng, **kwargs) for _ in range(n)]


def blocks(y: np.ndarray, clf, extractor) -> list[tuple]:
    """``fewshot identify --segments`` before turns: 3 s pieces of the speech, in seconds of speech."""
    cfg = extractor.feature_config
    speech = normalize_loudness(
        trim_silence(y, sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s), target_dbfs=cfg.target_dbfs
    )
    step = int(cfg.segment_s * cfg.sr)
    pieces = [speech[i : i + step] for i in range(0, len(speech), step)]
    labels, _ = clf.predict_open(extractor.embed(pieces))
    return [
        (i * cfg.segment_s, min((i + 1) * cfg.segment_s, len(speech) / cfg.sr), str(lab))
        for i, lab in enumerate(labels)
    ]


def demo_stream(y: np.ndarray, clf, extractor) -> tuple[list, list]:
    """The live demo's file mode (:func:`fewshot.live.turns.stream_turns`, 0.1 s blocks): its final turns, and
    each change of its provisional label as ``(seconds heard, Turn)``."""
    from ..live.turns import stream_turns

    return stream_turns(y, clf, extractor)


def label_latencies(reference, shown, *, late_s: float = 1.0) -> list[float]:
    """Per reference turn ``(start_s, end_s, speaker)``: seconds from its start until the provisional label
    first names its speaker (``inf`` when that does not happen before ``late_s`` after its end)."""
    out = []
    for a, b, who in reference:
        times = [t - a for t, cur in shown if a <= t <= b + late_s and cur.speaker == who]
        out.append(min(times) if times else float("inf"))
    return out


def group_classifiers(extractor, speakers: list[ConversationSpeaker], groups) -> list:
    """The fitted SVM of each group of speaker names, as ``fewshot identify`` fits it (the model's settings)."""
    from ..config import ClassifierConfig
    from ..groups.openset import load_calibration
    from ..groups.svc import GroupSVC

    cc, calibration = ClassifierConfig.of_model(extractor), load_calibration(extractor)
    E = dict(zip([s.name for s in speakers], extractor.embed([s.enroll for s in speakers], return_segments=True)))
    out = []
    for names in groups:
        X, y = np.concatenate([E[n] for n in names]), np.repeat(names, [len(E[n]) for n in names])
        out.append(GroupSVC(**cc.svc_params()).fit(X, y).fitted_.with_open_set(calibration, cc.false_accept_rate))
    return out


def run_system(system: str, y: np.ndarray, clf, extractor) -> list:
    """``(start_s, end_s, speaker, ...)`` of one of :data:`SYSTEMS` on the recording ``y``."""
    from ..turns.decoder import TurnConfig, find_turns

    if system in ("turns", "changepoint"):
        return find_turns(y, clf, extractor, config=TurnConfig(decoder="viterbi" if system == "turns" else system))
    if system == "demo":
        return demo_stream(y, clf, extractor)[0]
    return blocks(y, clf, extractor)


def evaluate_conversations(
    extractor, speakers, conversations, *, systems=SYSTEMS, outsider: bool = False, progress=None
) -> dict:
    """Scores of each system over ``conversations`` (:meth:`fewshot.eval.diarization.Scores.summary`), with
    ``seconds_per_10_min`` and ``cpu_seconds_per_10_min``: its time to process 10 minutes of recording, on the
    clock and on the CPU (every thread of this process). The demo's also has ``label_latency_median_s`` and
    ``labelled_within_1_5s``: how soon its provisional label first names a turn's speaker (:func:`label_latencies`).

    With ``outsider``, each conversation's first speaker is left out of the group and the right answer for
    their turns is unknown.
    """
    import time

    from ..config import UNKNOWN
    from .diarization import Scores

    groups = [c.speakers[1:] if outsider else c.speakers for c in conversations]
    classifiers = group_classifiers(extractor, speakers, groups)
    out = {}
    for system in systems:
        scores, seconds, cpu, latencies = Scores(collar_s=COLLAR_S), 0.0, 0.0, []
        items = enumerate(zip(conversations, classifiers))
        for i, (c, clf) in progress(items, total=len(conversations), desc=system) if progress else items:
            t0, c0 = time.perf_counter(), time.process_time()
            if system == "demo":
                hypothesis, shown = demo_stream(c.y, clf, extractor)
            else:
                hypothesis = run_system(system, c.y, clf, extractor)
            seconds, cpu = seconds + time.perf_counter() - t0, cpu + time.process_time() - c0
            reference = [(a, b, UNKNOWN if outsider and who == c.speakers[0] else who) for a, b, who in c.reference]
            if system == "demo":
                latencies += label_latencies(reference, shown)
            scores.add(reference, hypothesis, duration_s=len(c.y) / SAMPLE_RATE, uri=f"conversation{i:03d}")
        out[system] = {
            **scores.summary(),
            "seconds_per_10_min": 600 * seconds / scores.seconds,
            "cpu_seconds_per_10_min": 600 * cpu / scores.seconds,
        }
        if latencies:
            out[system] |= {
                "label_latency_median_s": float(np.median(latencies)),
                "labelled_within_1_5s": float(np.mean(np.asarray(latencies) <= 1.5)),
            }
    return out
