"""Calibrating a model directory in place: cohort, threshold model, self-check, and their checks.

The body of ``scripts/calibrate_unknown.py``; the parts live in
:mod:`fewshot.train.calibration` (the unknown decision) and
:mod:`fewshot.train.enrollment_check` (the self-check).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import ClassifierConfig
from ..groups.openset import Calibration, ThresholdModel
from .calibration import (
    CHECK_DRAWS,
    DEFAULT_RATE,
    RATES,
    SEED,
    SIZES,
    TOP_K,
    Trials,
    cell_rates,
    cohort_embeddings,
    condition_thresholds,
    fit_threshold_model,
    trial_scores,
    trial_thresholds,
)
from .enrollment_check import CHECK_CONDITIONS, CheckScores, check_rates, check_thresholds, enrollment_check_scores


def cohort_cached(extractor, train, *, cache_dir, speech_cache, progress=None) -> tuple[np.ndarray, list[str]]:
    """:func:`cohort_embeddings`, kept under ``cache_dir`` per model id."""
    from pathlib import Path

    from ..persistence import atomic_save_npz, read_npz_cache

    path = Path(cache_dir) / "cohort" / f"{extractor.model_id}.npz"
    z = read_npz_cache(path, keys=("cohort", "names"))
    if z is not None and z["cohort"].ndim == 2 and len(z["cohort"]) == len(z["names"]) > 0:
        return z["cohort"].astype(np.float64), [str(n) for n in z["names"]]
    cohort, names = cohort_embeddings(extractor, train, cache_dir=speech_cache, progress=progress)
    atomic_save_npz(path, cohort=cohort, names=np.array(names))
    return cohort, names


def summary(trials: Trials, thr: np.ndarray, pop) -> dict:
    """The figures of the decision with thresholds ``thr`` (one per trial) on ``trials``: outsiders accepted
    per (group size, condition, corpus) and their worst cells; members rejected in groups of 10 (5 s pieces)
    per condition; verification (groups of one) false accepts, false rejects and EER per condition."""
    from ..eval.protocol import compute_eer

    cells = [c for c in cell_rates(trials, thr, pop) if c["false_accept_rate"] is not None]
    fa = [c["false_accept_rate"] for c in cells]
    five = trials.seconds > 3.5
    members = {
        c["condition"]: c
        for c in cell_rates(
            trials.subset(five & (trials.N == 10)), thr[five & (trials.N == 10)], pop, by=("condition",)
        )
    }
    one = trials.N == 1
    verify = {}
    for c in cell_rates(trials.subset(one & five), thr[one & five], pop, by=("condition",)):
        m = one & five & (np.asarray(pop.conditions)[trials.condition] == c["condition"])
        eer = compute_eer(trials.score[m & trials.member], trials.score[m & ~trials.member])[0]
        verify[c["condition"]] = {
            "false_accept_rate": c["false_accept_rate"],
            "false_reject_rate": c["false_reject_rate"],
            "eer": eer,
        }
    return {
        "cells": cells,
        "false_accept_min": float(min(fa)),
        "false_accept_max": float(max(fa)),
        "worst_low": min(cells, key=lambda c: c["false_accept_rate"]),
        "worst_high": max(cells, key=lambda c: c["false_accept_rate"]),
        "members_rejected_10": {k: v["false_reject_rate"] for k, v in members.items()},
        "verify": verify,
    }


def enrolled_in_room(trials: Trials, model: ThresholdModel, pop, *, rates) -> dict:
    """The decision for groups enrolled in :data:`~fewshot.train.population.ROOM` and heard there (``trials`` of
    :meth:`~fewshot.train.population.EmbeddedPopulation.enrolled_in_room`): per rate, the share of outsiders' 5 s
    pieces accepted (every group size) and of members' called unknown in groups of 10."""
    from .population import ROOM

    here = (np.asarray(pop.conditions)[trials.condition] == ROOM) & (trials.seconds > 3.5)
    out = {}
    for r in sorted(set(rates), reverse=True):
        accepted = trials.score >= trial_thresholds(model, trials, r)
        out[float(r)] = {
            "false_accept_rate": float(np.mean(accepted[here & ~trials.member])),
            "members_rejected_10": float(np.mean(~accepted[here & trials.member & (trials.N == 10)])),
        }
    return out


def calibrate_model(
    model_dir,
    *,
    train,
    dev,
    cache_dir,
    speech_cache,
    rate: float = DEFAULT_RATE,
    draws: int = 12,
    check_conditions=CHECK_CONDITIONS,
    progress=None,
    write: bool = True,
) -> dict:
    """Calibrate the model directory ``model_dir`` in place: cohort file, ``open_set`` block and default rate.

    The calibration population is every speaker of ``train`` and ``dev`` with
    enough speech (:mod:`fewshot.train.population`), in every condition of
    :data:`fewshot.train.population.CONDITIONS`; the embeddings are those
    ``fewshot identify`` makes with the directory (its LiteRT model when it has
    one), cached under ``cache_dir``. Before the model is fitted on all of
    them, it is fitted on part and measured on the rest (on
    :data:`~fewshot.train.calibration.CHECK_DRAWS` groups per size): on the
    training speakers, measured on ``dev``'s (whom the extractor never saw),
    and leaving out each corpus in turn (``so-*``, ``ls-*``), measured on it.
    ``meta.json`` is replaced atomically as the last step (not at all without
    ``write``); the model's id does not change.

    Returns
    -------
    dict
        ``model_id``, ``population`` (speakers per subset and corpus), ``cohort_speakers``, ``rate``,
        ``thresholds`` (per size at ``rate`` for 5 s of clean speech), ``checks`` (``{name: summary}``,
        :func:`summary`, with ``condition_known``: the same figures from a threshold model per condition,
        :func:`~fewshot.train.calibration.condition_thresholds`; and ``enrolled_in_room``, the same groups
        enrolled in a room, :func:`enrolled_in_room`), ``enrollment_check`` (:func:`check_rates` per held-out
        check) and ``cohort_file``.
    """
    import hashlib
    import io
    from collections import Counter
    from pathlib import Path

    from ..model.extractor import Extractor
    from ..model.modeldir import read_model_meta, write_model_meta
    from ..persistence import atomic_save_npz, atomic_write_bytes, read_npz_cache
    from .population import embed_population, load_population

    model_dir = Path(model_dir)
    ex = Extractor.load(model_dir)
    cc = dataclasses.replace(ClassifierConfig.of_model(ex), false_accept_rate=rate).validate()
    cohort, names = cohort_cached(ex, train, cache_dir=cache_dir, speech_cache=speech_cache, progress=progress)
    speakers = load_population(
        {"train": train, "dev": dev}, config=ex.feature_config, cache_dir=cache_dir, progress=progress
    )
    pop = embed_population(ex, speakers, cache_dir=cache_dir, copies=cc.multi_condition, progress=progress)
    index = {n: k for k, n in enumerate(names)}
    own = np.array([index.get(n, -1) for n in pop.names])
    subset, corpus = np.asarray(pop.subsets), np.asarray(pop.corpora)
    splits = {"all": (None, None), "train -> dev": (subset != "dev", subset == "dev")}
    for c in sorted(set(corpus)):
        if (corpus == c).sum() > 2 and (corpus != c).sum() > 2:
            splits[f"without {c} -> {c}"] = (corpus != c, corpus == c)

    def trials_of(mask, seed, draws=draws, population=pop):
        return trial_scores(
            population,
            cohort,
            own,
            classifier=cc,
            draws=draws,
            seed=seed,
            pool=None if mask is None else np.flatnonzero(mask),
        )

    path = Path(cache_dir) / "selfcheck" / f"{ex.model_id}-{'-'.join(check_conditions)}.npz"
    fields = [f.name for f in dataclasses.fields(CheckScores)]
    cached = read_npz_cache(path, keys=fields) if check_conditions else None
    if not check_conditions:
        scores = None
    elif cached is not None:
        scores = CheckScores(**{k: cached[k] for k in fields})
    else:
        scores = enrollment_check_scores(ex, speakers, conditions=check_conditions, progress=progress)
        atomic_save_npz(path, **dataclasses.asdict(scores))
    checks, check_split = {}, {}
    for name, (fit, test) in splits.items():
        if name == "all":
            continue
        fitted, measured = trials_of(fit, SEED), trials_of(test, SEED + 1, max(draws, CHECK_DRAWS))
        model = fit_threshold_model(fitted)
        checks[name] = summary(measured, trial_thresholds(model, measured, rate), pop)
        known = summary(measured, condition_thresholds(fitted, measured, rate), pop)
        checks[name]["condition_known"] = {
            k: known[k] for k in ("false_accept_min", "false_accept_max", "members_rejected_10")
        }
        in_room = trials_of(test, SEED + 1, max(draws, CHECK_DRAWS), pop.enrolled_in_room())
        checks[name]["enrolled_in_room"] = enrolled_in_room(in_room, model, pop, rates=(rate, 0.02, 0.01))
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
    source = (
        f"{len(pop.names)} speakers ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}), 15 s "
        f"enrollment, 5 s and 2 s pieces in {len(pop.conditions)} conditions ({', '.join(pop.conditions)}), "
        f"{draws} groups per size; cohort of {len(names)} training speakers"
    )
    sizes = np.array(SIZES, np.float64)
    table = np.maximum.accumulate(
        np.array([[final.thresholds(N, r, np.array([5.0]))[0] for r in RATES] for N in sizes]), axis=0
    )
    cal = Calibration(
        cohort=cohort,
        top_k=TOP_K,
        group_sizes=sizes,
        false_accept_rates=np.array(RATES),
        thresholds=table,
        source=source,
        enrollment_check=check,
        model=final,
    )
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
    return {
        "model_id": ex.model_id,
        "population": dict(counts),
        "cohort_speakers": len(names),
        "rate": rate,
        "source": source,
        "thresholds": {int(N): cal.threshold(int(N), rate) for N in sizes},
        "model": final.to_meta(),
        "checks": checks,
        "enrollment_check": enrollment,
        "check_table": [] if check is None else check.tolist(),
        "cohort_file": cohort_file,
    }
