"""Calibrating a model's unknown decision (:mod:`fewshot.openset`): its cohort and threshold table.

- The cohort: each training speaker's mean embedding of up to
  ``COHORT_PIECES`` random 5 s pieces of their speech.
- The table: on held-out speakers (the standard protocol, 15 s enrollment,
  5 s pieces), for each group size, random groups (seeded apart from
  ``fewshot evaluate``'s draws) and the AS-normalised scores of every
  outsider's pieces against the member the SVM picks; the threshold at a rate
  is the score that fraction of them reaches. Thresholds never fall as groups
  grow (the best of more members can only score higher).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import ClassifierConfig
from ..features import l2_normalize
from ..openset import Calibration
from ..eval.benchmark import draw_groups
from ..eval.protocol import EmbeddedSpeakers, episode

#: Group sizes of the table (larger groups use the last).
SIZES = (1, 2, 3, 4, 5, 7, 10, 15, 20)
#: False-accept rates of the table.
RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: The rate a calibrated model ships with.
DEFAULT_RATE = 0.05
#: Highest cohort scores averaged on each side.
TOP_K = 50
#: Pieces of each training speaker averaged into their cohort embedding.
COHORT_PIECES = 4
#: Seed of the calibration's group draws (``fewshot evaluate`` draws with seed 0).
SEED = 1000


def cohort_embeddings(extractor, train, *, cache_dir, piece_s: float = 5.0, pieces: int = COHORT_PIECES,
                      seed: int = 0, progress=None) -> tuple[np.ndarray, list[str]]:
    """Unit-length mean embeddings of the training speakers (those with at least one piece).

    Returns
    -------
    cohort : np.ndarray [shape=(n_speakers, dim)]
    speakers : list of str
    """
    from .data import corpus_speech, int16_to_float, list_training_speakers

    cfg = extractor.feature_config
    waves, classes = corpus_speech(list_training_speakers(train), config=cfg, cache_dir=cache_dir,
                                   progress=progress)
    rng, n = np.random.default_rng(seed), int(piece_s * cfg.sr)
    cohort, names = [], []
    for wave, name in zip(waves, classes):
        starts = rng.permutation(len(wave) // n)[:pieces] * n
        if len(starts):
            y = [int16_to_float(wave[s:s + n]) for s in starts]
            cohort.append(l2_normalize(extractor.embed(y).mean(axis=0, keepdims=True))[0])
            names.append(name)
    return np.stack(cohort), names


def impostor_scores(emb: EmbeddedSpeakers, *, classifier: ClassifierConfig, cohort: np.ndarray, top_k: int = TOP_K,
                    sizes=SIZES, draws: int = 60, seed: int = SEED, T: float = 15.0, speakers=None) -> dict:
    """Normalised scores of outsiders' pieces against groups of each size.

    ``speakers`` (indices) restricts groups and outsiders to a subset.

    Returns
    -------
    dict
        ``{N: (member_scores, impostor_scores)}``.
    """
    view = emb
    if speakers is not None:
        keep = np.asarray(speakers)
        view = EmbeddedSpeakers([emb.names[i] for i in keep], {T: [emb.enroll[T][i] for i in keep]},
                                [emb.tests[i] for i in keep], [emb.genders[i] for i in keep],
                                None if emb.enroll_copies is None else {T: [emb.enroll_copies[T][i] for i in keep]})
    scoring = Calibration(cohort=cohort, top_k=top_k, group_sizes=np.array([1.0]),
                          false_accept_rates=np.array([0.01, 0.5]), thresholds=np.zeros((1, 2)))
    cc = dataclasses.replace(classifier, false_accept_rate=0.05)
    sizes = [N for N in sizes if N < len(view.names)]
    groups = draw_groups(len(view.names), {str(N): (N, None) for N in sizes}, draws=draws, seed=seed)
    out = {}
    for N in sizes:
        res = [episode(view, g, T=T, classifier=cc, calibration=scoring) for g in groups[str(N)]]
        out[N] = (np.concatenate([r["member_score"] for r in res]), np.concatenate([r["impostor_score"] for r in res]))
    return out


def threshold_table(scores: dict, *, rates=RATES) -> tuple[np.ndarray, np.ndarray]:
    """Group sizes and thresholds ``(n_sizes, n_rates)`` from :func:`impostor_scores`' outsiders."""
    sizes = np.array(sorted(scores), dtype=np.float64)
    table = np.array([[np.quantile(scores[int(N)][1], 1 - r) for r in rates] for N in sizes])
    return sizes, np.maximum.accumulate(table, axis=0)


def calibrate(extractor, emb: EmbeddedSpeakers, cohort: np.ndarray, *, classifier: ClassifierConfig,
              source: str, draws: int = 60) -> Calibration:
    """The calibration of ``extractor`` from its embeddings ``emb`` of held-out speakers."""
    sizes, table = threshold_table(impostor_scores(emb, classifier=classifier, cohort=cohort, draws=draws))
    return Calibration(cohort=cohort, top_k=TOP_K, group_sizes=sizes, false_accept_rates=np.array(RATES),
                       thresholds=table, source=source)


def held_out_check(emb: EmbeddedSpeakers, cohort: np.ndarray, *, classifier: ClassifierConfig,
                   rate: float = DEFAULT_RATE, sizes=(1, 3, 5, 10), draws: int = 60, seed: int = 0) -> dict:
    """Two-fold check: thresholds from one half of the speakers, rates measured on the other half.

    Returns
    -------
    dict
        ``{N: {"false_accept_rate", "false_reject_rate"}}``, averaged over both folds.
    """
    order = np.random.default_rng(seed).permutation(len(emb.names))
    halves = (np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:]))
    sizes = [N for N in sizes if N < min(len(h) for h in halves)]
    rates = {N: [] for N in sizes}
    for fit, test in (halves, halves[::-1]):
        fitted = impostor_scores(emb, classifier=classifier, cohort=cohort, sizes=sizes, draws=draws, speakers=fit)
        measured = impostor_scores(emb, classifier=classifier, cohort=cohort, sizes=sizes, draws=draws,
                                   speakers=test, seed=SEED + 1)
        for N in sizes:
            thr = np.quantile(fitted[N][1], 1 - rate)
            member, imp = measured[N]
            rates[N].append((np.mean(imp >= thr), np.mean(member < thr)))
    return {N: {"false_accept_rate": float(np.mean([a for a, _ in v])),
                "false_reject_rate": float(np.mean([b for _, b in v]))} for N, v in rates.items()}


#: Seconds of enrollment speech the self-check's thresholds are measured at (interpolated between).
CHECK_SECONDS = (15.0, 35.0)
#: Share of clean enrollments the self-check may flag.
CHECK_CLEAN_FLAGGED = 0.05


def mixed(y: np.ndarray, other: np.ndarray, *, share: float, chunks: int, rng) -> np.ndarray:
    """``y`` with ``share`` of its samples replaced by ``other``'s speech, in ``chunks`` contiguous stretches."""
    z, n = y.copy(), int(share * len(y)) // chunks
    for _ in range(chunks):
        a, b = rng.integers(0, len(y) - n), rng.integers(0, len(other) - n)
        z[a:a + n] = other[b:b + n]
    return z


def enrollment_check_table(extractor, speakers, *, seconds=CHECK_SECONDS, share: float = 0.2,
                           seed: int = SEED) -> tuple[np.ndarray, dict]:
    """Thresholds of the enrollment self-check (:mod:`fewshot.selfcheck`), and how often they flag.

    At each length, the threshold is the coherence below which
    :data:`CHECK_CLEAN_FLAGGED` of the speakers' clean enrollments fall. Each
    speaker's enrollment is then mixed with ``share`` of another speaker's
    speech (test pieces), three times: twice in one stretch, once in two.

    Returns
    -------
    table : np.ndarray [shape=(len(seconds), 2)]
    flagged : dict
        ``{T: {"clean": rate, "mixed": rate, "mixed_one_stretch": rate, "mixed_two_stretches": rate}}``.
    """
    from ..selfcheck import coherence

    rng = np.random.default_rng(seed)
    table, flagged = [], {}
    for T in seconds:
        clean = np.array([coherence(extractor, s.enroll[T]) for s in speakers])
        threshold = float(np.quantile(clean, CHECK_CLEAN_FLAGGED))
        one, two = [], []
        for i, s in enumerate(speakers):
            for chunks in (1, 1, 2):
                j = rng.choice([k for k in range(len(speakers)) if k != i])
                z = mixed(s.enroll[T], np.concatenate(speakers[j].tests), share=share, chunks=chunks, rng=rng)
                (one if chunks == 1 else two).append(coherence(extractor, z) < threshold)
        table.append((T, threshold))
        flagged[T] = {"clean": float(np.mean(clean < threshold)), "mixed": float(np.mean(one + two)),
                      "mixed_one_stretch": float(np.mean(one)), "mixed_two_stretches": float(np.mean(two))}
    return np.array(table), flagged


def calibrate_model(model_dir, *, train, dev, cache_dir, rate: float = DEFAULT_RATE, draws: int = 60,
                    progress=None) -> dict:
    """Calibrate the model directory ``model_dir`` in place: cohort file, ``open_set`` block and default rate.

    The embeddings are those ``fewshot identify`` makes with the directory
    (its LiteRT model when it has one). ``meta.json`` is replaced atomically
    as the last step; the model's id does not change.

    Returns
    -------
    dict
        ``model_id``, ``cohort_speakers``, ``dev_speakers``, ``rate``, ``thresholds`` (per size at ``rate``),
        ``held_out`` (:func:`held_out_check`), ``cohort_file`` and ``enrollment_check``
        (:func:`enrollment_check_table`'s flag rates).
    """
    import hashlib
    import io
    from pathlib import Path

    from ..extractor import Extractor
    from ..modeldir import read_model_meta, write_model_meta
    from ..persistence import atomic_write_bytes
    from ..eval.protocol import embed_protocol, prepare_protocol

    model_dir = Path(model_dir)
    ex = Extractor.load(model_dir)
    cc = dataclasses.replace(ClassifierConfig.of_model(ex), false_accept_rate=rate).validate()
    cohort, names = cohort_embeddings(ex, train, cache_dir=cache_dir, progress=progress)
    speakers = prepare_protocol(dev, enroll_seconds=sorted({15.0, *CHECK_SECONDS}), progress=progress)
    emb = embed_protocol(ex, speakers, copies=cc.multi_condition)
    source = (f"{len(speakers)} held-out speakers of {Path(dev).name}, 15 s enrollment, 5 s pieces, "
              f"{draws} groups per size; cohort of {len(names)} training speakers")
    cal = calibrate(ex, emb, cohort, classifier=cc, source=source, draws=draws)
    check, flagged = enrollment_check_table(ex, speakers)
    cal = dataclasses.replace(cal, enrollment_check=check)
    held_out = held_out_check(emb, cohort, classifier=cc, rate=rate, draws=draws)
    buf = io.BytesIO()
    np.save(buf, cohort.astype(np.float32), allow_pickle=False)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    cohort_file = f"cohort-{digest[:12]}.npy"
    atomic_write_bytes(model_dir / cohort_file, buf.getvalue())
    meta = read_model_meta(model_dir)[0]
    meta["open_set"] = cal.to_meta(cohort_file, digest)
    meta["classifier"] = {**meta.get("classifier", {}), "false_accept_rate": rate}
    write_model_meta(model_dir, meta)
    return {"model_id": ex.model_id, "cohort_speakers": len(names), "dev_speakers": len(speakers), "rate": rate,
            "thresholds": {int(N): cal.threshold(int(N), rate) for N in cal.group_sizes},
            "held_out": held_out, "cohort_file": cohort_file, "enrollment_check": flagged}
