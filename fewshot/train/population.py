"""The calibration population: speakers prepared as ``enroll`` and ``identify`` prepare them, in every condition.

Each speaker's files (in name order) are read and their speech found as
``fewshot enroll`` finds it (:func:`fewshot.audio.vad.load_speech` per file,
concatenated). Enrollment is the first 15 s and 35 s of that speech; test
pieces are non-overlapping 5 s stretches after 35 s (at most
:data:`MAX_PIECES`), and the first 2 s of each, each put through a test
condition of :mod:`fewshot.eval.conditions` (clean, rooms, noise, telephone)
and then prepared as ``fewshot identify`` prepares a file
(:func:`fewshot.audio.vad.speech`). Speakers with fewer than 2 pieces are left out.
The 15 s enrollment is also put through :data:`ROOM` and prepared as ``enroll``
prepares a recording: a household enrolling in the room it speaks in.

Speech is cached per speaker (it does not depend on the model) and embeddings
per speaker and model id, so a second calibration of the same model embeds
nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import FeatureConfig

logger = logging.getLogger(__name__)

#: Enrollment lengths prepared (the self-check is calibrated at both).
ENROLL_SECONDS = (15.0, 35.0)
#: Test speech starts after this much of a speaker's speech.
TEST_OFFSET_S = 35.0
#: Length of the test pieces, and of the shorter pieces cut from their starts.
PIECE_S, SHORT_S = 5.0, 2.0
#: Most test pieces per speaker.
MAX_PIECES = 8
#: Test conditions of the calibration (those of ``fewshot evaluate --conditions default``).
CONDITIONS = ("clean", "room0.3+ssn20", "room0.6+ssn10", "ssn10", "room0.6", "phone")
#: The room and noise an enrollment is also made in (the room of :data:`CONDITIONS` the goals name).
ROOM = "room0.3+ssn20"
#: Bumped when what is cached changes meaning.
CACHE_FORMAT = 2
#: What a speaker's cached embeddings hold (a file without one of them is embedded again).
EMBEDDED = ("enroll", "copies", "room_enroll", "room_copies", "tests", "condition", "seconds", "piece")


@dataclass
class PopulationSpeaker:
    """One speaker's prepared speech; ``corpus`` is the name's prefix (``so``, ``ls``), ``subset`` its tree."""

    name: str
    corpus: str
    subset: str
    enroll: dict[float, np.ndarray] = field(default_factory=dict)
    tests: list[np.ndarray] = field(default_factory=list)


@dataclass
class EmbeddedPopulation:
    """Embeddings of the population, speaker by speaker.

    ``enroll[i]``: segment embeddings of speaker ``i``'s 15 s enrollment;
    ``copies[i]``: those of its degraded copies (multi-condition enrollment);
    ``room_enroll[i]``, ``room_copies[i]``: the same of the enrollment made in :data:`ROOM`;
    ``tests``: one row per (speaker, condition, piece, length), described by
    ``owner`` (speaker index), ``condition`` (index into ``conditions``),
    ``seconds`` (speech seconds embedded) and ``piece`` (piece index).
    """

    names: list[str]
    corpora: list[str]
    subsets: list[str]
    conditions: tuple
    enroll: list[np.ndarray]
    copies: list[np.ndarray]
    tests: np.ndarray
    owner: np.ndarray
    condition: np.ndarray
    seconds: np.ndarray
    piece: np.ndarray
    room_enroll: list[np.ndarray]
    room_copies: list[np.ndarray]

    def enrolled_in_room(self) -> EmbeddedPopulation:
        """The same population, every speaker enrolled from their enrollment made in :data:`ROOM`."""
        return dataclasses.replace(self, enroll=self.room_enroll, copies=self.room_copies)


def corpus_of(name: str) -> str:
    """The corpus of a speaker folder's name: its prefix before ``-`` (``so-0003``: ``so``)."""
    return name.split("-", 1)[0] if "-" in name else "other"


def prepare_speaker(name: str, files, *, subset: str, config: FeatureConfig) -> PopulationSpeaker | None:
    """A speaker's speech as ``enroll`` finds it, cut into enrollment and test pieces (``None``: too little)."""
    from ..audio.vad import load_speech
    from ..errors import AudioError

    parts = []
    for f in files:
        try:
            parts.append(load_speech(f, config=config).samples)
        except AudioError as exc:
            logger.info("%s: %s; left out", f, exc)
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    sr, p = config.sr, int(PIECE_S * config.sr)
    test = y[int(TEST_OFFSET_S * sr) :]
    n = min(MAX_PIECES, len(test) // p)
    if n < 2:
        return None
    return PopulationSpeaker(
        name,
        corpus_of(name),
        subset,
        {T: y[: int(T * sr)] for T in ENROLL_SECONDS},
        [test[i * p : (i + 1) * p] for i in range(n)],
    )


def _speech_cache(cache_dir, subset: str, name: str, files, config: FeatureConfig) -> Path:
    h = hashlib.sha256(
        repr(
            (CACHE_FORMAT, sorted(config.to_dict().items()), [str(f) for f in files], [f.stat().st_size for f in files])
        ).encode()
    ).hexdigest()[:16]
    return Path(cache_dir) / "speech" / subset / f"{name}-{h}.npz"


def load_population(trees: dict, *, config: FeatureConfig, cache_dir, progress=None) -> list[PopulationSpeaker]:
    """Every speaker with enough speech of the speaker-per-folder ``trees`` (``{subset: folder}``)."""
    from ..datasets import speaker_folders
    from ..persistence import atomic_save_npz, read_npz_cache

    jobs = [(subset, name, files) for subset, root in trees.items() for name, files in speaker_folders(root).items()]
    out = []
    for subset, name, files in progress(jobs, total=len(jobs)) if progress else jobs:
        path = _speech_cache(cache_dir, subset, name, files, config)
        z = read_npz_cache(path, keys=("n",))
        n = int(z["n"]) if z is not None and z["n"].shape == () and z["n"].dtype.kind in "iu" else -1
        n = n if n <= MAX_PIECES else -1  # a cache that claims more pieces than are ever cut is spoiled
        if n == 0:
            continue
        if n > 0 and all(k in z for k in [f"enroll{T:g}" for T in ENROLL_SECONDS] + [f"test{i}" for i in range(n)]):
            out.append(
                PopulationSpeaker(
                    name,
                    corpus_of(name),
                    subset,
                    {T: z[f"enroll{T:g}"] for T in ENROLL_SECONDS},
                    [z[f"test{i}"] for i in range(n)],
                )
            )
            continue
        s = prepare_speaker(name, files, subset=subset, config=config)
        arrays = (
            {"n": np.int64(0)}
            if s is None
            else {
                "n": np.int64(len(s.tests)),
                **{f"enroll{T:g}": s.enroll[T] for T in ENROLL_SECONDS},
                **{f"test{i}": t for i, t in enumerate(s.tests)},
            }
        )
        atomic_save_npz(path, **arrays)
        if s is not None:
            out.append(s)
    return out


def condition_pieces(speaker: PopulationSpeaker, condition: str, degrader, *, config: FeatureConfig):
    """``(speech, seconds, piece index)`` of the speaker's test pieces under ``condition``, prepared as identify
    prepares a file, whole and their first :data:`SHORT_S` seconds."""
    from ..audio.vad import speech
    from ..errors import AudioError

    out = []
    for i, t in enumerate(speaker.tests):
        y = t if condition == "clean" else degrader.apply(condition, t, speaker=speaker.name, index=i)
        for part in (y, y[: int(SHORT_S * config.sr)]):
            try:
                s = speech(part, config=config).samples
            except AudioError:
                continue
            out.append((s, len(s) / config.sr, i))
    return out


def embed_population(
    extractor,
    speakers: list[PopulationSpeaker],
    *,
    cache_dir,
    conditions=CONDITIONS,
    copies: bool = True,
    progress=None,
) -> EmbeddedPopulation:
    """Embed every speaker's 15 s enrollment (and its degraded copies), clean and made in :data:`ROOM`, and test
    pieces in every condition.

    The babble of the conditions is drawn from the population's own enrollments (never the speaker's own).
    """
    from ..audio.decode import SAMPLE_RATE
    from ..audio.degrade import enrollment_copies
    from ..audio.vad import speech
    from ..eval.conditions import Degrader
    from ..persistence import atomic_save_npz, read_npz_cache

    cfg = extractor.feature_config
    degrader = Degrader([s.enroll[15.0] for s in speakers], [s.name for s in speakers], seed=0)
    key = hashlib.sha256(repr((CACHE_FORMAT, extractor.model_id, tuple(conditions), copies)).encode()).hexdigest()[:12]
    enroll, extra, rows = [], [], []
    it = list(enumerate(speakers))
    for k, s in progress(it, total=len(it)) if progress else it:
        path = Path(cache_dir) / "embeddings" / key / s.subset / f"{s.name}.npz"
        z = read_npz_cache(path, keys=EMBEDDED)
        if z is None:

            def enrollment(y):
                E = extractor.embed([y], return_segments=True)[0]
                C = (
                    np.concatenate(extractor.embed(enrollment_copies(y, sr=SAMPLE_RATE), return_segments=True))
                    if copies
                    else np.zeros((0, E.shape[1]))
                )
                return E, C

            E, C = enrollment(s.enroll[15.0])
            room = degrader.apply(ROOM, s.enroll[15.0], speaker=s.name, index=MAX_PIECES)  # a piece of its own
            RE, RC = enrollment(speech(room, config=cfg).samples)
            pieces = [
                (c, *p) for c, name in enumerate(conditions) for p in condition_pieces(s, name, degrader, config=cfg)
            ]
            T = extractor.embed([p[1] for p in pieces])
            z = {
                "enroll": E,
                "copies": C,
                "room_enroll": RE,
                "room_copies": RC,
                "tests": T,
                "condition": np.array([p[0] for p in pieces]),
                "seconds": np.array([p[2] for p in pieces]),
                "piece": np.array([p[3] for p in pieces]),
            }
            atomic_save_npz(path, **z)
        enroll.append(z["enroll"])
        extra.append(z["copies"])
        rows.append((k, z))
    return EmbeddedPopulation(
        [s.name for s in speakers],
        [s.corpus for s in speakers],
        [s.subset for s in speakers],
        tuple(conditions),
        enroll,
        extra,
        np.concatenate([z["tests"] for _, z in rows]).astype(np.float64),
        np.concatenate([np.full(len(z["tests"]), k) for k, z in rows]),
        np.concatenate([z["condition"] for _, z in rows]).astype(int),
        np.concatenate([z["seconds"] for _, z in rows]).astype(np.float64),
        np.concatenate([z["piece"] for _, z in rows]).astype(int),
        [z["room_enroll"] for _, z in rows],
        [z["room_copies"] for _, z in rows],
    )
