"""Test conditions: the protocol's test pieces in rooms, in noise, through other microphones.

Only test pieces are degraded, never the enrollment: people enroll close to the
microphone and are heard later across a room. Every draw is seeded (by the
condition's name and the piece's index), so two runs degrade the same piece the
same way. The rooms are image-source simulations (pyroomacoustics), not the
synthetic impulse responses training draws from (:mod:`fewshot.train.augment`),
so a model is not measured on the simulator it was trained on.

Conditions (``fewshot evaluate --conditions``):

- ``clean``: the pieces as recorded;
- ``room0.3``, ``room0.6``: a shoebox room with that RT60 (Sabine), random size
  and positions, speaker 1-3 m from the microphone;
- ``ssn20``, ``ssn10``, ``ssn5``: noise shaped like the piece's own long-term
  spectrum at that SNR (dB); ``babble20``, ``babble10``, ``babble5``: four other
  dev speakers' enrollment speech at once;
- ``room0.3+ssn20``, ``room0.6+ssn10``: both;
- ``phone``: the telephone band through 8 kHz and 8-bit mu-law; ``cheapmic``: a
  small microphone's band-pass and uneven response;
- ``rec20``, ``rec10``, ``rec5``, ``room0.3+rec20``, ``room0.6+rec10``: recorded
  background noise (a folder of FLAC/WAV recordings, ``fewshot evaluate --noise``;
  by default the ``noise`` folder beside the dataset), from the last third of each
  recording, the part training never draws from
  (:data:`fewshot.audio.degrade.RECORDED_TRAIN_SHARE`). Not used to choose a model.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..audio import degrade
from ..audio.decode import SAMPLE_RATE

#: Impulse responses drawn per room condition (pieces take them in turn).
RIRS_PER_ROOM = 6


@dataclass(frozen=True)
class Condition:
    name: str
    rt60_s: float = 0.0
    noise: str = ""
    snr_db: float | None = None
    channel: str = ""


CONDITIONS = {
    c.name: c
    for c in [
        Condition("clean"),
        Condition("room0.3", rt60_s=0.3),
        Condition("room0.6", rt60_s=0.6),
        Condition("ssn20", noise="ssn", snr_db=20),
        Condition("ssn10", noise="ssn", snr_db=10),
        Condition("ssn5", noise="ssn", snr_db=5),
        Condition("babble20", noise="babble", snr_db=20),
        Condition("babble10", noise="babble", snr_db=10),
        Condition("babble5", noise="babble", snr_db=5),
        Condition("room0.3+ssn20", rt60_s=0.3, noise="ssn", snr_db=20),
        Condition("room0.6+ssn10", rt60_s=0.6, noise="ssn", snr_db=10),
        Condition("phone", channel="phone"),
        Condition("cheapmic", channel="cheapmic"),
        Condition("rec20", noise="recorded", snr_db=20),
        Condition("rec10", noise="recorded", snr_db=10),
        Condition("rec5", noise="recorded", snr_db=5),
        Condition("room0.3+rec20", rt60_s=0.3, noise="recorded", snr_db=20),
        Condition("room0.6+rec10", rt60_s=0.6, noise="recorded", snr_db=10),
    ]
}
#: What ``--conditions default`` runs: clean and the issue-level headline conditions.
DEFAULT = ("clean", "room0.3+ssn20", "room0.6+ssn10", "ssn10", "room0.6", "phone")


def parse_conditions(text: str) -> list[str]:
    """``"all"``, ``"default"`` or a comma-separated list of names (``clean`` always first)."""
    names = (
        list(CONDITIONS)
        if text == "all"
        else list(DEFAULT)
        if text == "default"
        else [t.strip() for t in text.split(",") if t.strip()]
    )
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(CONDITIONS)}")
    return ["clean"] + [n for n in dict.fromkeys(names) if n != "clean"]


def needs_recordings(names) -> bool:
    """Whether any of the conditions ``names`` mixes in recorded noise."""
    return any(CONDITIONS[n].noise == "recorded" for n in names)


def load_recordings(folder, *, sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """The held-out (last) third of every noise recording in ``folder``, sorted by file name."""
    from pathlib import Path

    from ..audio.decode import load

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".flac", ".wav")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no .flac or .wav noise recordings (the rec* conditions need --noise DIR)")
    return [degrade.recorded_noise_part(load(p, sr=sr), "test") for p in files]


def room_rirs(rt60_s: float, *, n: int = RIRS_PER_ROOM, sr: int = SAMPLE_RATE, seed: int = 0) -> list[np.ndarray]:
    """``n`` image-source impulse responses of shoebox rooms with a Sabine RT60 of ``rt60_s``."""
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, int(rt60_s * 1000)])
    out = []
    for _ in range(n):
        dims = np.array([rng.uniform(4, 8), rng.uniform(3, 6), rng.uniform(2.5, 3.2)])
        absorption, max_order = pra.inverse_sabine(rt60_s, dims)
        room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(max_order, 60))
        mic = np.array([rng.uniform(0.5, dims[0] - 0.5), rng.uniform(0.5, dims[1] - 0.5), rng.uniform(0.8, 1.5)])
        for _ in range(100):  # a source 1-3 m away, inside the room
            d = rng.uniform(1.0, 3.0)
            a = rng.uniform(0, 2 * np.pi)
            src = mic + np.array([d * np.cos(a), d * np.sin(a), rng.uniform(0.0, 0.5)])
            if np.all(src > 0.3) and np.all(src < dims - 0.3):
                break
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], np.float32)
        out.append(h / np.max(np.abs(h)))
    return out


class Degrader:
    """Apply named conditions to test pieces, deterministically.

    Parameters
    ----------
    babble_pool : list of np.ndarray
        Speech of other people, for babble (``pool_owner`` says whose, so a
        speaker's own voice is never in the babble over them).
    """

    def __init__(self, babble_pool, pool_owner, *, sr: int = SAMPLE_RATE, seed: int = 0, recordings=()):
        #: Recorded noises for the ``rec*`` conditions (:func:`load_recordings`); piece ``i`` takes one in turn.
        self.recordings = list(recordings)
        self.pool = babble_pool
        self.owner = list(pool_owner)
        self.sr = sr
        self.seed = seed
        self._rirs = {}

    def rirs(self, rt60_s):
        if rt60_s not in self._rirs:
            self._rirs[rt60_s] = room_rirs(rt60_s, sr=self.sr, seed=self.seed)
        return self._rirs[rt60_s]

    def apply(self, name: str, y: np.ndarray, *, speaker: str, index: int) -> np.ndarray:
        """Piece ``index`` of ``speaker`` under condition ``name``."""
        c = CONDITIONS[name]
        rng = np.random.default_rng([self.seed, zlib.crc32(f"{name}/{speaker}".encode()), index])
        y = np.asarray(y, np.float32)
        if c.rt60_s:
            bank = self.rirs(c.rt60_s)
            y = degrade.reverberate(y, bank[index % len(bank)])
        if c.noise == "ssn":
            y = degrade.add_noise(y, degrade.speech_shaped_noise(y, len(y), rng=rng), snr_db=c.snr_db)
        elif c.noise == "babble":
            others = [i for i, o in enumerate(self.owner) if o != speaker]
            pick = [self.pool[i] for i in rng.choice(others, size=min(4, len(others)), replace=False)]
            y = degrade.add_noise(y, degrade.babble(pick, len(y), rng=rng), snr_db=c.snr_db)
        elif c.noise == "recorded":
            if not self.recordings:
                raise ValueError(f"condition {name} needs recorded noise (Degrader(recordings=...))")
            rec = self.recordings[index % len(self.recordings)]
            y = degrade.add_noise(y, degrade.recorded_noise(rec, len(y), rng=rng), snr_db=c.snr_db)
        if c.channel == "phone":
            y = degrade.telephone(y, sr=self.sr)
        elif c.channel == "cheapmic":
            y = degrade.band_limit(y, sr=self.sr, low_hz=250.0, high_hz=5000.0)
            y = degrade.equalise(y, sr=self.sr, gains_db=(6.0, -5.0, 4.0), centres_hz=(900.0, 2000.0, 3500.0))
        return y
