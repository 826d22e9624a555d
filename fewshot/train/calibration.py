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
from ..openset import Calibration, ThresholdModel

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


def cohort_top_stats(X: np.ndarray, cohort: np.ndarray, *, top_k: int = TOP_K, exclude=None):
    """:meth:`fewshot.openset.Calibration.cohort_stats` with, for each row, one cohort row left out (``exclude``:
    its index, or -1): a calibration speaker is never normalised against their own cohort entry, as a
    user outside the cohort never is."""
    S = np.asarray(X, np.float64) @ cohort.T
    if exclude is not None:
        ex = np.asarray(exclude)
        S[np.flatnonzero(ex >= 0), ex[ex >= 0]] = -np.inf
    k = min(top_k, S.shape[1] - 1)
    top = np.partition(S, S.shape[1] - k, axis=1)[:, -k:]
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)


@dataclasses.dataclass
class Trials:
    """Test pieces scored against random groups: one entry per (group, piece).

    ``member``: the piece's speaker is in the group; ``correct``: the SVM named
    them; ``score``: the AS-normalised score the unknown decision is made on;
    ``quality``: the piece's cohort mean; ``claim``: for members, the score
    against their own centroid (verification); the rest describe the piece
    (:class:`~fewshot.train.population.EmbeddedPopulation`'s ``owner``,
    ``condition``, ``seconds``).
    """

    N: np.ndarray
    group: np.ndarray
    owner: np.ndarray
    condition: np.ndarray
    seconds: np.ndarray
    member: np.ndarray
    correct: np.ndarray
    score: np.ndarray
    quality: np.ndarray

    def subset(self, keep) -> "Trials":
        return Trials(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})


def trial_scores(pop, cohort: np.ndarray, own: np.ndarray, *, classifier: ClassifierConfig, sizes=SIZES,
                 draws: int = 40, seed: int = SEED, pool=None, top_k: int = TOP_K) -> Trials:
    """Test pieces against ``draws`` random groups of each size, as ``fewshot identify`` decides: the group's
    SVM (with the enrollment copies of multi-condition enrollment) picks the member, and the piece's cosine to
    that member's centroid is AS-normalised. ``own[i]`` is population speaker ``i``'s cohort row (-1: none),
    left out of their stats.

    A group is drawn within one corpus of ``pool`` (population indices; default all), chosen at random
    among those with more than N speakers, and scored with every piece of that corpus: people who
    live together sound alike more than two corpora do, and outsiders from another corpus would be easy.
    """
    from ..classifier import GroupSVC

    pool = np.arange(len(pop.names)) if pool is None else np.asarray(pool)
    rows = np.flatnonzero(np.isin(pop.owner, pool))
    Xt, ot = l2_normalize(pop.tests[rows]), pop.owner[rows]
    mx, dx = cohort_top_stats(Xt, cohort, top_k=top_k, exclude=own[ot])
    centroids = l2_normalize(np.stack([e.mean(axis=0) for e in pop.enroll]))
    mc, dc = cohort_top_stats(centroids, cohort, top_k=top_k, exclude=own)
    rng = np.random.default_rng(seed)
    corpus = np.asarray(pop.corpora)
    pools = {c: pool[corpus[pool] == c] for c in np.unique(corpus[pool])}
    parts, gid = [], 0
    for N in sizes:
        big = [c for c, p in pools.items() if len(p) > N]
        if not big:
            continue
        for _ in range(draws):
            c = big[rng.integers(len(big))]
            g = np.sort(rng.choice(pools[c], N, replace=False))
            inside = corpus[ot] == c
            if N == 1:
                near = np.full(len(rows), g[0])
            else:
                sets = [(pop.enroll[i], i, True) for i in g]
                if classifier.multi_condition:
                    sets += [(pop.copies[i], i, False) for i in g if len(pop.copies[i])]
                X = np.concatenate([p[0] for p in sets])
                y = np.concatenate([np.full(len(p[0]), p[1]) for p in sets])
                mask = np.concatenate([np.full(len(p[0]), p[2]) for p in sets])
                fitted = GroupSVC(C=classifier.C, gamma=classifier.gamma).fit(X, y, centroid_mask=mask).fitted_
                near = np.zeros(len(rows), int)
                near[inside] = fitted.predict(Xt[inside]).astype(int)
            i = np.flatnonzero(inside)
            cos = np.sum(Xt[i] * centroids[near[i]], axis=1)
            score = 0.5 * ((cos - mx[i]) / dx[i] + (cos - mc[near[i]]) / dc[near[i]])
            parts.append((np.full(len(i), N), np.full(len(i), gid), rows[i], np.isin(ot[i], g), near[i] == ot[i],
                          score, mx[i]))
            gid += 1
    cols = [np.concatenate([p[k] for p in parts]) for k in range(7)]
    at = cols[2]
    return Trials(cols[0], cols[1], pop.owner[at], pop.condition[at], pop.seconds[at], cols[3], cols[4], cols[5],
                  cols[6])


#: Terms of the threshold model (:class:`fewshot.openset.ThresholdModel`).
TERMS = ("log_group_size", "log_seconds")
#: Outsiders' pieces per cell (group size, condition, length) the quantile regression is fitted on.
FIT_PER_CELL = 400


def fit_threshold_model(trials: Trials, *, rates=RATES, terms=TERMS, seed: int = SEED,
                        per_cell: int = FIT_PER_CELL) -> ThresholdModel:
    """Linear quantile regression of outsiders' scores on the model's terms, one per rate.

    Every cell (group size, condition, test length) weighs the same: up to
    ``per_cell`` of its outsiders' pieces are drawn.
    """
    imp = trials.subset(~trials.member)
    rng = np.random.default_rng(seed)
    length = np.round(np.log(imp.seconds), 1)
    cell = np.unique(np.stack([imp.N, imp.condition, length], axis=1), axis=0, return_inverse=True)[1].ravel()
    pick = np.concatenate([rng.permutation(np.flatnonzero(cell == c))[:per_cell] for c in np.unique(cell)])
    clean = trials.condition == 0
    model = ThresholdModel(tuple(terms), np.asarray(rates, np.float64), np.zeros((len(rates), 1 + len(terms))),
                           (float(trials.N.min()), float(trials.N.max())),
                           (float(np.quantile(trials.seconds, 0.01)), float(trials.seconds.max())),
                           float(np.median(trials.quality[clean])) if clean.any() else 0.0)
    A = model.design(imp.N[pick], imp.seconds[pick], imp.quality[pick])
    coef = [quantile_regression(A, imp.score[pick], 1 - r) for r in rates]
    return dataclasses.replace(model, coefficients=np.array(coef))


def quantile_regression(A: np.ndarray, y: np.ndarray, quantile: float, *, iterations: int = 200,
                        eps: float = 1e-4) -> np.ndarray:
    """Coefficients ``b`` minimising the pinball loss of ``y - A b`` at ``quantile``, by iteratively reweighted
    least squares (each residual weighted by its side's share over its size)."""
    b = np.linalg.lstsq(A, y, rcond=None)[0]
    for _ in range(iterations):
        r = y - A @ b
        w = np.where(r >= 0, quantile, 1 - quantile) / np.maximum(np.abs(r), eps)
        new = np.linalg.solve(A.T @ (A * w[:, None]), A.T @ (w * y))
        if np.max(np.abs(new - b)) < 1e-7:
            return new
        b = new
    return b


def trial_thresholds(model: ThresholdModel, trials: Trials, rate: float) -> np.ndarray:
    """The model's threshold for each trial at ``rate``; for groups of one, as verification."""
    return model.thresholds(trials.N, rate, trials.seconds, trials.quality)


def cell_rates(trials: Trials, thresholds: np.ndarray, pop, *, by=("N", "condition", "corpus")) -> list[dict]:
    """Outsiders accepted and members rejected (and members named right and accepted) per cell."""
    corpus = np.asarray(pop.corpora)[trials.owner]
    keys = {"N": trials.N, "condition": np.asarray(pop.conditions)[trials.condition], "corpus": corpus,
            "seconds": np.round(trials.seconds).astype(int)}
    cols = [keys[b] for b in by]
    accepted = trials.score >= thresholds
    out = []
    for combo in sorted({tuple(c) for c in zip(*cols)}, key=lambda t: tuple(map(str, t))):
        m = np.ones(len(accepted), bool)
        for c, v in zip(cols, combo):
            m &= c == v
        mem, imp = m & trials.member, m & ~trials.member
        out.append({**{b: (v.item() if hasattr(v, "item") else v) for b, v in zip(by, combo)},
                    "false_accept_rate": float(np.mean(accepted[imp])) if imp.any() else None,
                    "false_reject_rate": float(np.mean(~accepted[mem])) if mem.any() else None,
                    "open_accuracy": float(np.mean(accepted[mem] & trials.correct[mem])) if mem.any() else None,
                    "outsider_pieces": int(imp.sum()), "member_pieces": int(mem.sum())})
    return out


#: Seconds of enrollment speech the self-check's thresholds are measured at (interpolated between).
CHECK_SECONDS = (15.0, 35.0)
#: Share of genuine enrollments the self-check may flag, in every corpus and condition.
CHECK_CLEAN_FLAGGED = 0.05
#: Recording conditions of the self-check's enrollments (:mod:`fewshot.eval.conditions`).
CHECK_CONDITIONS = ("clean", "room0.3+ssn20")


@dataclasses.dataclass
class CheckScores:
    """Coherences of genuine enrollments and of enrollments with a share of another voice.

    One entry per (speaker, condition, seconds) for ``genuine``; per (speaker,
    condition, seconds, stretches) for ``mixed``; the other arrays say which.
    """

    speaker: np.ndarray
    condition: np.ndarray
    seconds: np.ndarray
    coherence: np.ndarray
    mixed: np.ndarray
    stretches: np.ndarray

    def subset(self, keep) -> "CheckScores":
        return CheckScores(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})


def _mix_plan(speakers, *, slots: dict, share: float, seed: int) -> list[tuple]:
    """``(i, j, T, [(a, b, m), ...])``: speaker ``i``'s first ``slots[T]`` hops with ``m`` hops from ``a`` replaced by
    speaker ``j``'s from ``b`` (``j`` of the same corpus), in one stretch and in two."""
    rng = np.random.default_rng(seed)
    plan = []
    for i, s in enumerate(speakers):
        same = [k for k, o in enumerate(speakers) if k != i and o.corpus == s.corpus] or \
            [k for k in range(len(speakers)) if k != i]
        for T, n in slots.items():
            total = int(round(share * n))
            for chunks in (1, 2):
                m, j = total // chunks, int(rng.choice(same))
                starts = [int(rng.integers(0, n - m + 1))] if chunks == 1 else \
                    [int(rng.integers(0, n // 2 - m + 1)), int(rng.integers(n // 2, n - m + 1))]
                plan.append((i, j, T, [(a, int(rng.integers(0, slots[max(slots)] - m + 1)), m) for a in starts]))
    return plan


def enrollment_check_scores(extractor, speakers, *, conditions=CHECK_CONDITIONS, seconds=CHECK_SECONDS,
                            share: float = 0.2, seed: int = SEED, progress=None) -> CheckScores:
    """The self-check's coherence (:mod:`fewshot.selfcheck`) of each speaker's enrollment speech, prepared as
    ``enroll`` prepares it (:mod:`fewshot.train.population`), in each recording condition (the whole enrollment
    put through it), and of the same with ``share`` of another speaker of the same corpus in one or two stretches.

    The windows of the check lie on a grid of hops, and the mixing replaces whole hops, so a mixed
    enrollment's windows are those of its two speakers except one per edge of a stretch, embedded anew.
    """
    from ..audio import normalize_loudness
    from ..eval.conditions import Degrader
    from ..selfcheck import HOP_S, WINDOW_S, split_coherence, windows

    cfg = extractor.feature_config
    h, per_window = int(HOP_S * cfg.sr), int(round(WINDOW_S / HOP_S))
    slots = {T: (int(T * cfg.sr) - int(WINDOW_S * cfg.sr)) // h + per_window for T in seconds}
    plan = _mix_plan(speakers, slots=slots, share=share, seed=seed)
    degrader = Degrader([s.enroll[15.0] for s in speakers], [s.name for s in speakers], seed=0)
    longest = max(seconds)
    out = []
    for c, name in enumerate(progress(conditions, total=len(conditions)) if progress else conditions):
        audio = []
        for s in speakers:
            y = s.enroll[longest]
            if name != "clean":
                y = normalize_loudness(degrader.apply(name, y, speaker=s.name, index=0), target_dbfs=cfg.target_dbfs)
            audio.append(y)
        E = [extractor.embed(windows(y, sr=cfg.sr)) for y in audio]
        for i in range(len(speakers)):
            for T, n in slots.items():
                out.append((i, c, T, split_coherence(E[i][:n - per_window + 1]), False, 0))
        new, where = [], []
        mixes = []
        for i, j, T, stretches in plan:
            n = slots[T]
            src = [(i, k) for k in range(n)]
            for a, b, m in stretches:
                src[a:a + m] = [(j, b + k) for k in range(m)]
            rows = []
            for t in range(n - per_window + 1):
                part = src[t:t + per_window]
                if all(p[0] == part[0][0] and p[1] == part[0][1] + d for d, p in enumerate(part)):
                    rows.append(("old", part[0]))
                else:
                    rows.append(("new", len(new)))
                    new.append(np.concatenate([audio[p][k * h:(k + 1) * h] for p, k in part]))
            mixes.append((i, T, len(stretches), rows))
        N = extractor.embed(new) if new else np.zeros((0, extractor.dim))
        for i, T, k, rows in mixes:
            W = np.stack([E[r[0]][r[1]] if kind == "old" else N[r] for kind, r in rows])
            out.append((i, c, T, split_coherence(W), True, k))
    a = list(zip(*out))
    return CheckScores(np.array(a[0]), np.array(a[1]), np.array(a[2], np.float64), np.array(a[3]),
                       np.array(a[4], bool), np.array(a[5]))


def check_thresholds(scores: CheckScores, corpora, *, flagged: float = CHECK_CLEAN_FLAGGED) -> np.ndarray:
    """``(seconds, threshold)`` pairs: at each length, the lowest of each (corpus, condition)'s coherence below
    which ``flagged`` of its genuine enrollments fall, so that no corpus or condition is flagged more."""
    genuine = scores.subset(~scores.mixed)
    corpus = np.asarray(corpora)[genuine.speaker]
    table = []
    for T in np.unique(genuine.seconds):
        cells = [genuine.coherence[(genuine.seconds == T) & (corpus == co) & (genuine.condition == c)]
                 for co in np.unique(corpus) for c in np.unique(genuine.condition)]
        table.append((float(T), min(float(np.quantile(v, flagged)) for v in cells if len(v))))
    return np.array(table)


def check_rates(scores: CheckScores, table: np.ndarray, corpora, conditions) -> list[dict]:
    """Genuine enrollments refused and mixed ones caught per (seconds, corpus, condition)."""
    from ..selfcheck import threshold_for

    corpus = np.asarray(corpora)[scores.speaker]
    flagged = scores.coherence < np.array([threshold_for(T, table) for T in scores.seconds])
    out = []
    for T in np.unique(scores.seconds):
        for co in np.unique(corpus):
            for c in np.unique(scores.condition):
                m = (scores.seconds == T) & (corpus == co) & (scores.condition == c)
                g, x = m & ~scores.mixed, m & scores.mixed
                out.append({"seconds": float(T), "corpus": str(co), "condition": conditions[c],
                            "genuine_refused": float(np.mean(flagged[g])) if g.any() else None,
                            "mixed_caught": float(np.mean(flagged[x])) if x.any() else None,
                            "mixed_one_stretch_caught": float(np.mean(flagged[x & (scores.stretches == 1)]))
                            if x.any() else None,
                            "enrollments": int(g.sum())})
    return out


def cohort_cached(extractor, train, *, cache_dir, speech_cache, progress=None) -> tuple[np.ndarray, list[str]]:
    """:func:`cohort_embeddings`, kept under ``cache_dir`` per model id."""
    from pathlib import Path

    path = Path(cache_dir) / "cohort" / f"{extractor.model_id}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["cohort"].astype(np.float64), [str(n) for n in z["names"]]
    cohort, names = cohort_embeddings(extractor, train, cache_dir=speech_cache, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, cohort=cohort, names=np.array(names))
    return cohort, names


def summary(trials: Trials, model: ThresholdModel, pop, *, rate: float) -> dict:
    """The figures of the decision at ``rate`` on ``trials``: outsiders accepted per (group size, condition,
    corpus) and their worst cells; members rejected in groups of 10 (5 s pieces) per condition; verification
    (groups of one) false accepts, false rejects and EER per condition."""
    from ..eval.protocol import compute_eer

    thr = trial_thresholds(model, trials, rate)
    cells = [c for c in cell_rates(trials, thr, pop) if c["false_accept_rate"] is not None]
    fa = [c["false_accept_rate"] for c in cells]
    five = trials.seconds > 3.5
    members = {c["condition"]: c for c in cell_rates(trials.subset(five & (trials.N == 10)), thr[five & (trials.N == 10)],
                                                         pop, by=("condition",))}
    one = trials.N == 1
    verify = {}
    for c in cell_rates(trials.subset(one & five), thr[one & five], pop, by=("condition",)):
        m = one & five & (np.asarray(pop.conditions)[trials.condition] == c["condition"])
        eer = compute_eer(trials.score[m & trials.member], trials.score[m & ~trials.member])[0]
        verify[c["condition"]] = {"false_accept_rate": c["false_accept_rate"], "false_reject_rate": c["false_reject_rate"],
                                  "eer": eer}
    return {"cells": cells, "false_accept_min": float(min(fa)), "false_accept_max": float(max(fa)),
            "worst_low": min(cells, key=lambda c: c["false_accept_rate"]),
            "worst_high": max(cells, key=lambda c: c["false_accept_rate"]),
            "members_rejected_10": {k: v["false_reject_rate"] for k, v in members.items()},
            "verify": verify}


def calibrate_model(model_dir, *, train, dev, cache_dir, speech_cache, rate: float = DEFAULT_RATE, draws: int = 12,
                    check_conditions=CHECK_CONDITIONS, progress=None, write: bool = True) -> dict:
    """Calibrate the model directory ``model_dir`` in place: cohort file, ``open_set`` block and default rate.

    The calibration population is every speaker of ``train`` and ``dev`` with
    enough speech (:mod:`fewshot.train.population`), in every condition of
    :data:`fewshot.train.population.CONDITIONS`; the embeddings are those
    ``fewshot identify`` makes with the directory (its LiteRT model when it has
    one), cached under ``cache_dir``. Before the model is fitted on all of
    them, it is fitted on part and measured on the rest: on the training
    speakers, measured on ``dev``'s (whom the extractor never saw), and
    leaving out each corpus in turn (``so-*``, ``ls-*``), measured on it.
    ``meta.json`` is replaced atomically as the last step (not at all without
    ``write``); the model's id does not change.

    Returns
    -------
    dict
        ``model_id``, ``population`` (speakers per subset and corpus), ``cohort_speakers``, ``rate``,
        ``thresholds`` (per size at ``rate`` for 5 s of clean speech), ``checks`` (``{name: summary}``,
        :func:`summary`), ``enrollment_check`` (:func:`check_rates` per held-out check) and ``cohort_file``.
    """
    import hashlib
    import io
    from collections import Counter
    from pathlib import Path

    from ..extractor import Extractor
    from ..modeldir import read_model_meta, write_model_meta
    from ..persistence import atomic_write_bytes
    from .population import embed_population, load_population

    model_dir = Path(model_dir)
    ex = Extractor.load(model_dir)
    cc = dataclasses.replace(ClassifierConfig.of_model(ex), false_accept_rate=rate).validate()
    cohort, names = cohort_cached(ex, train, cache_dir=cache_dir, speech_cache=speech_cache, progress=progress)
    speakers = load_population({"train": train, "dev": dev}, config=ex.feature_config, cache_dir=cache_dir,
                               progress=progress)
    pop = embed_population(ex, speakers, cache_dir=cache_dir, copies=cc.multi_condition, progress=progress)
    index = {n: k for k, n in enumerate(names)}
    own = np.array([index.get(n, -1) for n in pop.names])
    subset, corpus = np.asarray(pop.subsets), np.asarray(pop.corpora)
    splits = {"all": (None, None), "train -> dev": (subset != "dev", subset == "dev")}
    for c in sorted(set(corpus)):
        if (corpus == c).sum() > 2 and (corpus != c).sum() > 2:
            splits[f"without {c} -> {c}"] = (corpus != c, corpus == c)

    def trials_of(mask, seed):
        return trial_scores(pop, cohort, own, classifier=cc, draws=draws, seed=seed,
                            pool=None if mask is None else np.flatnonzero(mask))

    path = Path(cache_dir) / "selfcheck" / f"{ex.model_id}-{'-'.join(check_conditions)}.npz"
    if not check_conditions:
        scores = None
    elif path.is_file():
        with np.load(path, allow_pickle=False) as z:
            scores = CheckScores(**{k: z[k] for k in z.files})
    else:
        scores = enrollment_check_scores(ex, speakers, conditions=check_conditions, progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **dataclasses.asdict(scores))
    checks, check_split = {}, {}
    for name, (fit, test) in splits.items():
        if name == "all":
            continue
        model = fit_threshold_model(trials_of(fit, SEED))
        checks[name] = summary(trials_of(test, SEED + 1), model, pop, rate=rate)
        check_split[name] = (fit, test)
    final = fit_threshold_model(trials_of(None, SEED))
    enrollment, check = {}, None
    for name, (fit, test) in check_split.items() if scores is not None else ():
        table = check_thresholds(scores.subset(fit[scores.speaker]), pop.corpora)
        enrollment[name] = check_rates(scores.subset(test[scores.speaker]), table, pop.corpora, check_conditions)
    if scores is not None:
        check = check_thresholds(scores, pop.corpora)
    elif ex.meta.get("open_set", {}).get("enrollment_check") is not None:  # kept as the model has it
        check = np.asarray(ex.meta["open_set"]["enrollment_check"], np.float64)
    counts = Counter(f"{s}/{c}" for s, c in zip(pop.subsets, pop.corpora))
    source = (f"{len(pop.names)} speakers ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}), 15 s "
              f"enrollment, 5 s and 2 s pieces in {len(pop.conditions)} conditions ({', '.join(pop.conditions)}), "
              f"{draws} groups per size; cohort of {len(names)} training speakers")
    sizes = np.array(SIZES, np.float64)
    table = np.maximum.accumulate(np.array([[final.thresholds(N, r, np.array([5.0]))[0] for r in RATES]
                                            for N in sizes]), axis=0)
    cal = Calibration(cohort=cohort, top_k=TOP_K, group_sizes=sizes, false_accept_rates=np.array(RATES),
                      thresholds=table, source=source, enrollment_check=check, model=final)
    buf = io.BytesIO()
    np.save(buf, cohort.astype(np.float32), allow_pickle=False)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    cohort_file = f"cohort-{digest[:12]}.npy"
    if write:
        atomic_write_bytes(model_dir / cohort_file, buf.getvalue())
        meta = read_model_meta(model_dir)[0]
        meta["open_set"] = cal.to_meta(cohort_file, digest)
        meta["classifier"] = {**meta.get("classifier", {}), "false_accept_rate": rate}
        write_model_meta(model_dir, meta)
    return {"model_id": ex.model_id, "population": dict(counts), "cohort_speakers": len(names), "rate": rate,
            "source": source, "thresholds": {int(N): cal.threshold(int(N), rate) for N in sizes},
            "model": final.to_meta(), "checks": checks, "enrollment_check": enrollment,
            "check_table": [] if check is None else check.tolist(),
            "cohort_file": cohort_file}
