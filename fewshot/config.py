"""Frozen configuration objects, saved next to every model.

Every number that changes what the extractor sees lives in :class:`FeatureConfig`;
a model directory stores it as JSON and refuses to run with another one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: A sample at or above this level (of full scale) is clipped, in a file to enroll and at the live microphone
#: alike. Decoding and resampling round off the flat tops of clipped audio, so the level is a little below 1.
CLIP_LEVEL = 0.95

#: The label of speech that is none of a group's members: what identify, verify and the turns answer.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes log-mel "images" and fixed-length segments.

    Attributes
    ----------
    sr : int
        Sample rate every input is resampled to, in Hz.
    n_fft : int
        FFT size in samples.
    win_ms, hop_ms : float
        Analysis window and hop, in milliseconds.
    n_mels : int
        Number of mel bands.
    fmin_hz, fmax_hz : float
        Frequency range of the mel filterbank.
    top_db : float
        Energy VAD threshold below the loudest frame, in dB.
    max_silence_s : float
        Pauses longer than this are cut out of the speech.
    min_speech_s : float
        Less speech than this is rejected as too short to use.
    segment_s, segment_hop_s : float
        Length and hop of the segments that are embedded one by one.
    target_dbfs : float
        RMS level speech is normalised to.
    """

    sr: int = 16000
    n_fft: int = 512
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 64
    fmin_hz: float = 20.0
    fmax_hz: float = 7600.0
    top_db: float = 35.0
    max_silence_s: float = 0.5
    min_speech_s: float = 1.0
    segment_s: float = 3.0
    segment_hop_s: float = 1.5
    target_dbfs: float = -23.0

    @property
    def hop_length(self) -> int:
        return int(round(self.sr * self.hop_ms / 1000.0))

    @property
    def win_length(self) -> int:
        return int(round(self.sr * self.win_ms / 1000.0))

    @property
    def segment_frames(self) -> int:
        return int(round(self.segment_s * 1000.0 / self.hop_ms))

    @property
    def segment_hop_frames(self) -> int:
        return int(round(self.segment_hop_s * 1000.0 / self.hop_ms))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        return _from_dict(cls, d)

    def validate(self) -> FeatureConfig:
        """Raise ``ValueError`` unless every setting has its type and lies in its range (:data:`_FEATURE_RANGES`)."""
        _check_ranges(self, _FEATURE_RANGES)
        if not (
            self.win_length <= self.n_fft
            and self.fmin_hz < self.fmax_hz <= self.sr / 2
            and self.segment_hop_s <= self.segment_s
        ):
            raise ValueError(
                f"need win_ms within n_fft, fmin_hz < fmax_hz <= sr / 2 and segment_hop_s <= segment_s, given {self}"
            )
        return self


TURN_DECODERS = ("viterbi", "changepoint")


@dataclass(frozen=True)
class TurnConfig:
    """How speech is cut into turns (:class:`fewshot.turns.decoder.TurnDecoder`), for a whole file and a live stream.

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
        Longer pauses end a turn (``None``: the model's ``FeatureConfig.max_silence_s``, see :meth:`pause_s`).
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
        if self.decoder not in TURN_DECODERS:
            raise ValueError(f"decoder must be one of {TURN_DECODERS}, given {self.decoder!r}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"need 0 < hop_s <= window_s, given hop_s={self.hop_s}, window_s={self.window_s}")

    def pause_s(self, features: FeatureConfig) -> float:
        """Seconds of pause that end a turn: :attr:`max_pause_s`, or the model's ``max_silence_s``."""
        return features.max_silence_s if self.max_pause_s is None else self.max_pause_s


@dataclass(frozen=True)
class ExtractorConfig:
    """Shape of the CNN built by :func:`fewshot.model.extractor.build_cnn`.

    Attributes
    ----------
    arch : str
        ``"resnet"`` (the default extractor) or ``"original"`` (the small
        Cifar-10-style CNN of the first project, flattened into the SVM).
    channels : tuple of int
        Filters of each residual stage; every stage after the first halves
        time and frequency.
    blocks : tuple of int
        Residual blocks per stage.
    embedding_dim : int
        Width of the layer named ``"embedding"``.
    crop_frames : int
        Training crop length in frames (also the fixed input length of the
        ``"original"`` architecture, which has no pooling over time).
    whitened : bool
        The layer named ``"embedding"`` is a frozen linear map fitted after
        training (within-class covariance normalisation on the training
        speakers, see :mod:`fewshot.train.whitening`), applied to the unit-normalised
        output of the trained dense layer (then named ``"speaker_dense"``).
    """

    arch: str = "resnet"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    blocks: tuple[int, ...] = (0, 1, 2, 2)
    embedding_dim: int = 192
    crop_frames: int = 200
    whitened: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExtractorConfig:
        d = dict(d)
        for key in ("channels", "blocks"):
            if key in d:
                d[key] = tuple(d[key])
        return _from_dict(cls, d)

    def validate(self) -> ExtractorConfig:
        """Raise ``ValueError`` unless the shape is one :func:`fewshot.model.nn.build_cnn` makes, within bounds."""
        _check_ranges(self, _EXTRACTOR_RANGES)
        if self.arch not in ("resnet", "original"):
            raise ValueError(f"arch must be 'resnet' or 'original', given {self.arch!r}")
        for name in ("channels", "blocks"):
            value = getattr(self, name)
            low = 1 if name == "channels" else 0
            if (
                not isinstance(value, tuple)
                or not 1 <= len(value) <= 8
                or not all(_is_int(v) and low <= v <= 1024 for v in value)
            ):
                raise ValueError(f"{name} must be 1 to 8 whole numbers from {low} to 1024, given {value!r}")
        if len(self.channels) != len(self.blocks):
            raise ValueError(f"channels and blocks must have one entry per stage, given {self.channels}, {self.blocks}")
        return self


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyperparameters of the per-group SVM and its unknown threshold.

    Attributes
    ----------
    C, gamma : float
        RBF SVC parameters, on L2-normalised embeddings.
    unknown_threshold : float
        Cosine similarity between an utterance and the nearest enrolled
        speaker's centroid below which the answer is "unknown".
    threshold_from : str
        How the threshold was chosen (written by the model release).
    multi_condition : bool
        Multi-condition enrollment: the SVM also learns from degraded copies of
        each person's enrollment speech (:func:`fewshot.audio.degrade.enrollment_copies`).
    false_accept_rate : float or None
        For a model calibrated for open-set use (:mod:`fewshot.groups.openset`): the
        fraction of outsiders' speech accepted as a member, at every group
        size; it replaces ``unknown_threshold``. ``None``: the cosine threshold.
    """

    C: float = 10.0
    gamma: float = 1.0
    unknown_threshold: float = 0.5
    threshold_from: str = ""
    multi_condition: bool = False
    false_accept_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        return _from_dict(cls, d)

    @classmethod
    def of_model(cls, extractor) -> ClassifierConfig:
        """The operating point stored with a model (its ``meta.json`` block ``classifier``)."""
        return cls.from_dict(extractor.meta.get("classifier", {}))

    def validate(self) -> ClassifierConfig:
        """Raise ``ValueError`` unless every setting has its type and lies in its range (:data:`_CLASSIFIER_RANGES`):
        C and gamma positive and bounded, the threshold a cosine."""
        _check_ranges(self, _CLASSIFIER_RANGES)
        rate = self.false_accept_rate
        if rate is not None and not (_is_number(rate) and 0 < rate < 1):
            raise ValueError(f"false_accept_rate must be a fraction between 0 and 1, given {rate!r}")
        return self

    def svc_params(self) -> dict[str, float]:
        """Keyword arguments of :class:`fewshot.groups.svc.GroupSVC`."""
        return {"C": self.C, "gamma": self.gamma, "unknown_threshold": self.unknown_threshold}


#: ``name: (type, low, high)`` of every setting read from a model's ``meta.json`` (bounds included).
_FEATURE_RANGES = {
    "sr": (int, 8000, 48000),
    "n_fft": (int, 64, 8192),
    "win_ms": (float, 5.0, 200.0),
    "hop_ms": (float, 1.0, 100.0),
    "n_mels": (int, 8, 256),
    "fmin_hz": (float, 0.0, 24000.0),
    "fmax_hz": (float, 1.0, 24000.0),
    "top_db": (float, 1.0, 120.0),
    "max_silence_s": (float, 0.0, 10.0),
    "min_speech_s": (float, 0.1, 60.0),
    "segment_s": (float, 0.5, 30.0),
    "segment_hop_s": (float, 0.05, 30.0),
    "target_dbfs": (float, -60.0, 0.0),
}
_EXTRACTOR_RANGES = {
    "arch": (str, None, None),
    "embedding_dim": (int, 1, 4096),
    "crop_frames": (int, 10, 10000),
    "whitened": (bool, None, None),
}
_CLASSIFIER_RANGES = {
    "C": (float, 1e-4, 1e6),
    "gamma": (float, 1e-4, 1e3),
    "unknown_threshold": (float, -1.0, 1.0),
    "threshold_from": (str, None, None),
    "multi_condition": (bool, None, None),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    import math

    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _check_ranges(config, ranges: dict) -> None:
    """Raise ``ValueError`` for the first field of ``config`` of the wrong type or outside its ``ranges``."""
    for name, (kind, low, high) in ranges.items():
        value = getattr(config, name)
        ok = {
            int: _is_int,
            float: _is_number,
            bool: lambda v: isinstance(v, bool),
            str: lambda v: isinstance(v, str) and len(v) <= 1000,
        }[kind](value)
        if not ok:
            raise ValueError(
                f"{name} must be {'a whole number' if kind is int else 'a number' if kind is float else kind.__name__}"
                f", given {value!r}"
            )
        if low is not None and not low <= value <= high:
            raise ValueError(f"{name} must be from {low:g} to {high:g}, given {value!r}")


def _from_dict(cls, d):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        from .errors import IncompatibleModelError

        raise IncompatibleModelError(
            f"{cls.__name__} has no field(s) {unknown}; the model was written by another version of fewshot"
        )
    return cls(**d)
