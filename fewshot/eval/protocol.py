"""The standard protocol: n-way k-shot episodes, accuracy, macro F1 and EER.

For a speaker-per-folder dataset: per speaker, its files in name order,
resampled to 16 kHz mono, silences cut with the energy VAD of
:func:`fewshot.audio.vad.speech_intervals` (``top_db=35``, 25 ms frames, 10 ms hop,
no absolute floor: ``librosa.effects.split``'s rule), speech concatenated. Enrollment is the first T s of that speech; test pieces are
non-overlapping 5 s pieces of the speech after 35 s, at most 12 per speaker;
speakers with fewer than 2 test pieces are left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..audio.decode import SAMPLE_RATE, load
from ..audio.features import l2_normalize
from ..audio.vad import speech_intervals
from ..config import ClassifierConfig
from ..datasets import read_genders, speaker_folders
from ..groups.svc import GroupSVC

logger = logging.getLogger(__name__)


@dataclass
class ProtocolSpeaker:
    """One speaker's enrollment speech and test pieces (16 kHz mono float32)."""

    name: str
    speech_s: float
    enroll: dict[float, np.ndarray] = field(default_factory=dict)
    tests: list[np.ndarray] = field(default_factory=list)
    gender: str | None = None


#: The protocol's VAD threshold below the loudest frame, in dB.
PROTOCOL_TOP_DB = 35.0


def protocol_speech(files, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Concatenated VAD speech of ``files`` (the protocol's definition)."""
    parts = []
    for f in files:
        y = load(f, sr=sr)
        for s, e in speech_intervals(y, sr=sr, top_db=PROTOCOL_TOP_DB, floor_dbfs=None):
            parts.append(y[s:e])
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


#: Where each speaker's test pieces start, in seconds of their speech: enrollment is at most this long.
TEST_OFFSET_S = 35.0


def prepare_protocol(
    root,
    *,
    enroll_seconds=(15, 35),
    piece_s: float = 5.0,
    max_pieces: int = 12,
    test_offset_s: float = TEST_OFFSET_S,
    sr: int = SAMPLE_RATE,
    progress=None,
) -> list[ProtocolSpeaker]:
    """Load a speaker-per-folder dataset into enrollment speech and test pieces.

    ``progress`` wraps the speaker iterator (for example ``tqdm``) when given.
    """
    folders = speaker_folders(root)
    genders = read_genders(root)
    items = folders.items()
    if progress is not None:
        items = progress(items, total=len(folders))
    speakers = []
    for name, files in items:
        y = protocol_speech(files, sr=sr)
        test = y[int(test_offset_s * sr) :]
        n = min(max_pieces, len(test) // int(piece_s * sr))
        if n < 2:
            logger.info("%s: %.1f s of speech, too little for the protocol; left out", name, len(y) / sr)
            continue
        p = int(piece_s * sr)
        speakers.append(
            ProtocolSpeaker(
                name=name,
                speech_s=len(y) / sr,
                gender=genders.get(name),
                enroll={float(t): y[: int(t * sr)] for t in enroll_seconds},
                tests=[test[i * p : (i + 1) * p] for i in range(n)],
            )
        )
    return speakers


def det(target_scores, nontarget_scores):
    """False-accept and false-reject rates at every distinct score (``sklearn.metrics.det_curve``).

    A score at or above the threshold is accepted.

    Returns
    -------
    far, frr, thresholds : np.ndarray
        In order of increasing threshold.
    """
    from sklearn.metrics import det_curve

    tgt = np.asarray(target_scores, dtype=np.float64)
    non = np.asarray(nontarget_scores, dtype=np.float64)
    y = np.r_[np.ones(len(tgt)), np.zeros(len(non))]
    return det_curve(y, np.r_[tgt, non], drop_intermediate=False)


def compute_eer(target_scores, nontarget_scores) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached.

    Returns
    -------
    eer : float
        In [0, 1].
    threshold : float
        Scores at or above it are accepted.
    """
    far, frr, thr = det(target_scores, nontarget_scores)
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2), float(thr[i])


@dataclass
class EmbeddedSpeakers:
    """Embeddings of the protocol: enrollment segments per T, one vector per test piece.

    ``enroll_copies`` (multi-condition enrollment) holds, per T, the segment
    embeddings of each speaker's degraded enrollment copies.
    """

    names: list[str]
    enroll: dict[float, list[np.ndarray]]
    tests: list[np.ndarray]
    genders: list[str | None]
    enroll_copies: dict[float, list[np.ndarray]] | None = None


def embed_protocol(extractor, speakers: list[ProtocolSpeaker], *, copies: bool = False) -> EmbeddedSpeakers:
    """Run the extractor over every speaker's enrollment speech and test pieces.

    With ``copies``, also over the degraded copies of the enrollment speech that
    multi-condition enrollment adds (:func:`fewshot.audio.degrade.enrollment_copies`).
    """
    from ..audio.degrade import enrollment_copies

    Ts = sorted(speakers[0].enroll) if speakers else []
    enroll = {T: extractor.embed([s.enroll[T] for s in speakers], return_segments=True) for T in Ts}
    extra = None
    if copies:
        extra = {
            T: [
                np.concatenate(extractor.embed(enrollment_copies(s.enroll[T], sr=SAMPLE_RATE), return_segments=True))
                for s in speakers
            ]
            for T in Ts
        }
    flat = [p for s in speakers for p in s.tests]
    E = extractor.embed(flat)
    bounds = np.cumsum([0] + [len(s.tests) for s in speakers])
    tests = [E[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return EmbeddedSpeakers([s.name for s in speakers], enroll, tests, [s.gender for s in speakers], extra)


def fit_group(emb: EmbeddedSpeakers, idx, *, T: float, classifier: ClassifierConfig | None = None, calibration=None):
    """The :class:`~fewshot.groups.fitted.FittedGroup` ``fewshot identify`` would use for the speakers ``idx`` enrolled
    from ``T`` s (``classifier``'s settings; with ``multi_condition`` and ``emb.enroll_copies``, the degraded
    enrollment copies join the SVM's training points but not the centroids; with ``calibration`` and the
    classifier's ``false_accept_rate``, the calibrated unknown decision). Its classes are ``0 .. len(idx) - 1``."""
    cc = classifier or ClassifierConfig()
    parts = [(emb.enroll[T][i], k, True) for k, i in enumerate(idx)]
    if cc.multi_condition and emb.enroll_copies is not None:
        parts += [(emb.enroll_copies[T][i], k, False) for k, i in enumerate(idx)]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    mask = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    clf = GroupSVC(C=cc.C, gamma=cc.gamma, unknown_threshold=cc.unknown_threshold).fit(X, y, centroid_mask=mask)
    return clf.fitted_.with_open_set(calibration, cc.false_accept_rate)


def episode(
    emb: EmbeddedSpeakers,
    idx,
    *,
    T: float,
    classifier: ClassifierConfig | None = None,
    open_set: bool = True,
    calibration=None,
) -> dict:
    """One group: the SVM's labels for its members' test pieces and, with ``open_set``,
    the scores the unknown decision is made from, for members and for
    impostors (test pieces of every speaker outside the group).

    The SVM and the unknown decision are those ``fewshot identify`` makes for
    the group (:func:`fit_group`; with ``calibration``, AS-normalised scores
    against the threshold for the group's size, :mod:`fewshot.groups.openset`).

    Returns
    -------
    dict
        ``y_true``, ``y_pred`` (indices into ``idx``); with ``open_set`` also
        ``member_cosine`` and ``impostor_cosine`` (cosine to the chosen
        speaker's centroid), ``member_score`` and ``impostor_score`` (what
        unknown is decided on) and ``decision_threshold``, from which
        :func:`fewshot.eval.benchmark.open_rates` gives the rates.
    """
    idx = np.asarray(idx)
    fitted = fit_group(emb, idx, T=T, classifier=classifier, calibration=calibration)
    Xt = np.concatenate([emb.tests[i] for i in idx])
    yt = np.concatenate([np.full(len(emb.tests[i]), k) for k, i in enumerate(idx)])
    if not open_set:
        return {"y_true": yt, "y_pred": fitted.predict(Xt)}
    pred, cosine, decision = fitted.open_scores(Xt)
    out = {
        "y_true": yt,
        "y_pred": pred,
        "member_cosine": cosine,
        "member_score": decision,
        "decision_threshold": fitted.decision_threshold,
    }
    others = [emb.tests[i] for i in np.setdiff1d(np.arange(len(emb.tests)), idx)]
    _, out["impostor_cosine"], out["impostor_score"] = (
        fitted.open_scores(np.concatenate(others)) if others else (None, np.zeros(0), np.zeros(0))
    )
    return out


def group_draws(n_speakers: int, K, *, draws: int, rng, genders=None) -> list[np.ndarray]:
    """``draws`` random groups of ``K`` speakers (one group when ``K`` is all).

    With ``genders``, every group is drawn within one gender (chosen at random
    among those with at least K speakers).
    """
    if K == "all" or n_speakers <= K:
        return [np.arange(n_speakers)]
    if genders is None:
        return [np.sort(rng.choice(n_speakers, K, replace=False)) for _ in range(draws)]
    pools = {}
    for i, g in enumerate(genders):
        if g:
            pools.setdefault(g, []).append(i)
    pools = [np.array(v) for v in pools.values() if len(v) >= K]
    if not pools:
        return []
    return [np.sort(rng.choice(pools[rng.integers(len(pools))], K, replace=False)) for _ in range(draws)]


def verification_scores(emb: EmbeddedSpeakers, *, T: float = 15.0):
    """Cosine of each speaker's enrollment centroid against every test piece.

    Returns
    -------
    target, nontarget : np.ndarray
    """
    C = l2_normalize(np.stack([e.mean(axis=0) for e in emb.enroll[T]]))
    X = np.concatenate(emb.tests)
    owner = np.concatenate([np.full(len(t), i) for i, t in enumerate(emb.tests)])
    S = C @ X.T
    mask = owner[None, :] == np.arange(len(C))[:, None]
    return S[mask], S[~mask]


def quick_scores(
    emb: EmbeddedSpeakers, *, T: float = 15.0, group_sizes=(3, 10, "all"), draws: int = 30, seed: int = 0
) -> dict[str, float]:
    """Mean accuracy per group size and EER: the figures training selects models by."""
    rng = np.random.default_rng(seed)
    out = {}
    view = compact(emb, T=T)
    for K in group_sizes:
        accs = [
            np.mean([r["y_true"] == r["y_pred"] for r in [episode(view, g, T=T, open_set=False)]])
            for g in group_draws(len(emb.names), K, draws=draws, rng=rng)
        ]
        out[f"acc_{K}"] = float(np.mean(accs))
    tgt, non = verification_scores(emb, T=T)
    out["eer"], out["eer_threshold"] = compute_eer(tgt, non)
    return out


def compact(emb: EmbeddedSpeakers, *, T: float, keep_space: bool = False) -> EmbeddedSpeakers:
    """The embeddings of one enrollment length in at most ``n`` coordinates.

    ``n`` is the number of vectors (enrollment segments plus test pieces).
    Every inner product is kept (``Y Y^T = A A^T``), so an RBF SVM on
    L2-normalised rows and cosine scores see exactly the same thing; wide
    embeddings (the original CNN's 19,200 numbers) then fit many times faster.
    Embeddings no wider than ``n``, and any with ``keep_space`` (scored against
    a cohort in the model's own coordinates, :mod:`fewshot.groups.openset`), are
    returned as they are.
    """
    copies = list(emb.enroll_copies[T]) if emb.enroll_copies is not None else []
    parts = list(emb.enroll[T]) + list(emb.tests) + copies
    A = np.concatenate(parts).astype(np.float64)
    if keep_space or A.shape[1] <= A.shape[0]:
        return EmbeddedSpeakers(emb.names, {T: emb.enroll[T]}, emb.tests, emb.genders, {T: copies} if copies else None)
    w, V = np.linalg.eigh(A @ A.T)
    keep = w > max(w.max(), 0.0) * 1e-12
    keep[-1] = True  # at least one coordinate, even when every embedding is zero
    Y = V[:, keep] * np.sqrt(np.clip(w[keep], 0.0, None))
    bounds = np.cumsum([0] + [len(p) for p in parts])
    Ys = [Y[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    n, m = len(emb.enroll[T]), len(emb.tests)
    return EmbeddedSpeakers(emb.names, {T: Ys[:n]}, Ys[n : n + m], emb.genders, {T: Ys[n + m :]} if copies else None)
