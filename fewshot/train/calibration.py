"""Calibrating a model's unknown decision (:mod:`fewshot.groups.openset`): its cohort and threshold table.

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

from ..audio.features import l2_normalize
from ..config import ClassifierConfig
from ..groups.openset import ThresholdModel

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
#: Random groups per size the held-out checks are measured on: more than a fit needs (one fitted on 12 decides as
#: well as one fitted on 48), as a cell measured on 12 groups moves by a point or two from one draw to the next.
CHECK_DRAWS = 48
#: Seed of the calibration's group draws (``fewshot evaluate`` draws with seed 0).
SEED = 1000


def cohort_embeddings(
    extractor, train, *, cache_dir, piece_s: float = 5.0, pieces: int = COHORT_PIECES, seed: int = 0, progress=None
) -> tuple[np.ndarray, list[str]]:
    """Unit-length mean embeddings of the training speakers (those with at least one piece).

    Returns
    -------
    cohort : np.ndarray [shape=(n_speakers, dim)]
    speakers : list of str
    """
    from .data import corpus_speech, int16_to_float, list_training_speakers

    cfg = extractor.feature_config
    waves, classes = corpus_speech(list_training_speakers(train), config=cfg, cache_dir=cache_dir, progress=progress)
    rng, n = np.random.default_rng(seed), int(piece_s * cfg.sr)
    cohort, names = [], []
    for wave, name in zip(waves, classes):
        starts = rng.permutation(len(wave) // n)[:pieces] * n
        if len(starts):
            y = [int16_to_float(wave[s : s + n]) for s in starts]
            cohort.append(l2_normalize(extractor.embed(y).mean(axis=0, keepdims=True))[0])
            names.append(name)
    return np.stack(cohort), names


def cohort_top_stats(X: np.ndarray, cohort: np.ndarray, *, top_k: int = TOP_K, exclude=None):
    """:meth:`fewshot.groups.openset.Calibration.cohort_stats` with, for each row, one cohort row left out (``exclude``:
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

    def subset(self, keep) -> Trials:
        return Trials(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})


def trial_scores(
    pop,
    cohort: np.ndarray,
    own: np.ndarray,
    *,
    classifier: ClassifierConfig,
    sizes=SIZES,
    draws: int = 40,
    seed: int = SEED,
    pool=None,
    top_k: int = TOP_K,
) -> Trials:
    """Test pieces against ``draws`` random groups of each size, as ``fewshot identify`` decides: the group's
    SVM (with the enrollment copies of multi-condition enrollment) picks the member, and the piece's cosine to
    that member's centroid is AS-normalised. ``own[i]`` is population speaker ``i``'s cohort row (-1: none),
    left out of their stats.

    A group is drawn within one corpus of ``pool`` (population indices; default all), chosen at random
    among those with more than N speakers, and scored with every piece of that corpus: people who
    live together sound alike more than two corpora do, and outsiders from another corpus would be easy.
    """
    from ..groups.svc import GroupSVC

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
            parts.append(
                (np.full(len(i), N), np.full(len(i), gid), rows[i], np.isin(ot[i], g), near[i] == ot[i], score, mx[i])
            )
            gid += 1
    cols = [np.concatenate([p[k] for p in parts]) for k in range(7)]
    at = cols[2]
    return Trials(
        cols[0], cols[1], pop.owner[at], pop.condition[at], pop.seconds[at], cols[3], cols[4], cols[5], cols[6]
    )


#: Terms of the threshold model (:class:`fewshot.groups.openset.ThresholdModel`).
TERMS = ("log_group_size", "log_seconds")
#: Outsiders' pieces per cell (group size, condition, length) the quantile regression is fitted on.
FIT_PER_CELL = 400


def fit_threshold_model(
    trials: Trials, *, rates=RATES, terms=TERMS, seed: int = SEED, per_cell: int = FIT_PER_CELL
) -> ThresholdModel:
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
    model = ThresholdModel(
        tuple(terms),
        np.asarray(rates, np.float64),
        np.zeros((len(rates), 1 + len(terms))),
        (float(trials.N.min()), float(trials.N.max())),
        (float(np.quantile(trials.seconds, 0.01)), float(trials.seconds.max())),
        float(np.median(trials.quality[clean])) if clean.any() else 0.0,
    )
    A = model.design(imp.N[pick], imp.seconds[pick], imp.quality[pick])
    coef = [quantile_regression(A, imp.score[pick], 1 - r) for r in rates]
    return dataclasses.replace(model, coefficients=np.array(coef))


def quantile_regression(
    A: np.ndarray, y: np.ndarray, quantile: float, *, iterations: int = 200, eps: float = 1e-4
) -> np.ndarray:
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


def condition_thresholds(fit: Trials, trials: Trials, rate: float) -> np.ndarray:
    """Thresholds at ``rate`` from a threshold model fitted on each condition of ``fit`` apart.

    Not a rule that can ship (``identify`` does not know how a recording was
    made): it bounds what any term for the test speech's condition could do,
    so the calibration prints it beside the shipped model's figures.
    """
    thresholds = np.full(len(trials.score), np.nan)
    for c in np.unique(trials.condition):
        m = trials.condition == c
        model = fit_threshold_model(fit.subset(fit.condition == c))
        thresholds[m] = trial_thresholds(model, trials.subset(m), rate)
    return thresholds


def cell_rates(trials: Trials, thresholds: np.ndarray, pop, *, by=("N", "condition", "corpus")) -> list[dict]:
    """Outsiders accepted and members rejected (and members named right and accepted) per cell."""
    corpus = np.asarray(pop.corpora)[trials.owner]
    keys = {
        "N": trials.N,
        "condition": np.asarray(pop.conditions)[trials.condition],
        "corpus": corpus,
        "seconds": np.round(trials.seconds).astype(int),
    }
    cols = [keys[b] for b in by]
    accepted = trials.score >= thresholds
    out = []
    for combo in sorted({tuple(c) for c in zip(*cols)}, key=lambda t: tuple(map(str, t))):
        m = np.ones(len(accepted), bool)
        for c, v in zip(cols, combo):
            m &= c == v
        mem, imp = m & trials.member, m & ~trials.member
        out.append(
            {
                **{b: (v.item() if hasattr(v, "item") else v) for b, v in zip(by, combo)},
                "false_accept_rate": float(np.mean(accepted[imp])) if imp.any() else None,
                "false_reject_rate": float(np.mean(~accepted[mem])) if mem.any() else None,
                "open_accuracy": float(np.mean(accepted[mem] & trials.correct[mem])) if mem.any() else None,
                "outsider_pieces": int(imp.sum()),
                "member_pieces": int(mem.sum()),
            }
        )
    return out
