"""The full benchmark behind ``fewshot evaluate``: every figure of the report, for one system.

Builds on the standard protocol of :mod:`fewshot.eval.protocol`: draws the groups
(the same groups for every system and enrollment length), runs the episodes
with and without the unknown threshold, and summarises accuracy, macro F1,
confusion matrices, open-set rates and the verification curves.
"""

from __future__ import annotations

import numpy as np

from ..config import ClassifierConfig
from .protocol import (
    EmbeddedSpeakers,
    ProtocolSpeaker,
    compact,
    compute_eer,
    det,
    embed_protocol,
    episode,
    group_draws,
    verification_scores,
)

SAME_GENDER_K = 5
#: Group sizes of the open-set table and its DET curves.
OPEN_SET_SIZES = (1, 3, 5, 10)


def merge_embedded(parts: list[EmbeddedSpeakers]) -> EmbeddedSpeakers:
    """Concatenate :class:`EmbeddedSpeakers` of disjoint speaker chunks (in order)."""
    Ts = parts[0].enroll if parts else {}
    return EmbeddedSpeakers(
        names=[n for p in parts for n in p.names],
        enroll={T: [e for p in parts for e in p.enroll[T]] for T in Ts},
        tests=[t for p in parts for t in p.tests],
        genders=[g for p in parts for g in p.genders],
        enroll_copies=None
        if not parts or parts[0].enroll_copies is None
        else {T: [e for p in parts for e in p.enroll_copies[T]] for T in Ts},
    )


def embed_protocol_chunked(
    extractor, speakers: list[ProtocolSpeaker], *, chunk: int = 8, copies: bool = False, progress=None
) -> EmbeddedSpeakers:
    """:func:`embed_protocol` over chunks of ``chunk`` speakers (``progress`` wraps the chunks)."""
    chunks = [speakers[i : i + chunk] for i in range(0, len(speakers), chunk)]
    it = progress(chunks, total=len(chunks)) if progress is not None else chunks
    return merge_embedded([embed_protocol(extractor, c, copies=copies) for c in it])


def embed_as_enrolled(
    extractor,
    speakers: list[ProtocolSpeaker],
    classifier: ClassifierConfig | None,
    *,
    progress=None,
    embed=embed_protocol_chunked,
) -> EmbeddedSpeakers:
    """:func:`embed_protocol_chunked` (or ``embed``, a function with its signature, such as
    :func:`fewshot.eval.embed_pool.embed_protocol_on_ray`) as ``fewshot identify`` enrolls with
    ``classifier``: with the degraded copies of the enrollment speech when it uses multi-condition enrollment."""
    copies = bool(classifier is not None and classifier.multi_condition)
    return embed(extractor, speakers, copies=copies, progress=progress)


def group_specs(group_sizes, *, genders=None) -> dict[str, tuple]:
    """``{key: (K, genders or None)}`` for the protocol's group sizes.

    Keys are ``"3"``, ``"10"``, ``"all"``...; ``"5_same_gender"`` is added when
    at least two speakers have a gender (it may still draw no group).
    """
    specs = {str(K): (K if K == "all" else int(K), None) for K in group_sizes}
    if genders is not None and sum(g is not None for g in genders) >= 2:
        specs[f"{SAME_GENDER_K}_same_gender"] = (SAME_GENDER_K, list(genders))
    return specs


def draw_groups(n_speakers: int, specs: dict, *, draws: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Groups for every spec; each spec has its own seeded stream, so every system,
    every enrollment length and every subset of sizes sees the same groups."""
    import zlib

    return {
        key: group_draws(
            n_speakers, K, draws=draws, genders=g, rng=np.random.default_rng([seed, zlib.crc32(key.encode())])
        )
        for key, (K, g) in specs.items()
    }


def open_rates(results: list[dict], threshold: float | None = None) -> dict:
    """Members rejected, members right and accepted, impostors accepted.

    With ``threshold=None``, at the decision ``fewshot identify`` makes (each
    episode's ``decision_threshold`` on its decision scores); otherwise at a
    cosine ``threshold``.
    """
    shipped = threshold is None
    member = np.concatenate([r["member_score" if shipped else "member_cosine"] for r in results])
    imp = np.concatenate([r["impostor_score" if shipped else "impostor_cosine"] for r in results])
    thr_m = np.concatenate(
        [np.full(len(r["member_score"]), r["decision_threshold"] if shipped else threshold) for r in results]
    )
    thr_i = np.concatenate(
        [np.full(len(r["impostor_score"]), r["decision_threshold"] if shipped else threshold) for r in results]
    )
    correct = np.concatenate([r["y_true"] == r["y_pred"] for r in results])
    thresholds = sorted({float(r["decision_threshold"]) for r in results}) if shipped else [float(threshold)]
    return {
        "threshold": thresholds[0] if len(thresholds) == 1 else thresholds,
        "false_reject_rate": float(np.mean(member < thr_m)),
        "open_accuracy": float(np.mean(correct & (member >= thr_m))),
        "false_accept_rate": float(np.mean(imp >= thr_i)) if len(imp) else None,
        "n_impostor_pieces": int(len(imp)),
    }


def det_points(target_scores, nontarget_scores, *, max_points: int = 300) -> dict:
    """False-accept and false-reject rates over thresholds (at most ``max_points``)."""
    far, frr, thr = det(target_scores, nontarget_scores)
    keep = np.unique(np.linspace(0, len(thr) - 1, min(max_points, len(thr))).round().astype(int))
    return {
        "threshold": thr[keep].round(5).tolist(),
        "far": far[keep].round(6).tolist(),
        "frr": frr[keep].round(6).tolist(),
    }


def verification_summary(emb: EmbeddedSpeakers, *, T: float = 15.0, bins: int = 60) -> dict:
    """EER, its threshold, a DET curve and score histograms (JSON-ready)."""
    tgt, non = verification_scores(emb, T=T)
    eer, thr = compute_eer(tgt, non)
    lo, hi = float(min(tgt.min(), non.min())), float(max(tgt.max(), non.max()))
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    return {
        "enroll_seconds": T,
        "eer": eer,
        "eer_threshold": thr,
        "n_target": int(len(tgt)),
        "n_nontarget": int(len(non)),
        "target_mean": float(tgt.mean()),
        "nontarget_mean": float(non.mean()),
        "histogram": {
            "edges": edges.round(5).tolist(),
            "target": np.histogram(tgt, edges)[0].tolist(),
            "nontarget": np.histogram(non, edges)[0].tolist(),
        },
        "det": det_points(tgt, non),
    }


def _summarise(results: list[dict], groups: list[np.ndarray], names: list[str], *, thresholds: dict) -> dict:
    from sklearn.metrics import confusion_matrix, f1_score

    accs = np.array([np.mean(r["y_true"] == r["y_pred"]) for r in results])
    f1s = np.array(
        [
            f1_score(r["y_true"], r["y_pred"], labels=np.arange(len(g)), average="macro", zero_division=0)
            for r, g in zip(results, groups)
        ]
    )
    rep = int(np.argmin(np.abs(accs - np.median(accs))))
    g, r = groups[rep], results[rep]
    out = {
        "k": len(g),
        "n_groups": len(groups),
        "n_test_pieces": int(sum(len(r["y_true"]) for r in results)),
        "accuracy_mean": float(accs.mean()),
        "accuracy_std": float(accs.std()),
        "accuracy_p5": float(np.percentile(accs, 5)),
        "accuracy_p95": float(np.percentile(accs, 95)),
        "accuracy_min": float(accs.min()),
        "accuracy_max": float(accs.max()),
        "macro_f1_mean": float(f1s.mean()),
        "macro_f1_std": float(f1s.std()),
        "representative": {
            "speakers": [names[i] for i in g],
            "accuracy": float(accs[rep]),
            "confusion": confusion_matrix(r["y_true"], r["y_pred"], labels=np.arange(len(g))).tolist(),
        },
    }
    if "member_score" in results[0]:
        for name, thr in thresholds.items():
            out[name] = open_rates(results, thr)
    return out


def open_set_by_size(
    emb: EmbeddedSpeakers,
    *,
    classifier: ClassifierConfig,
    calibration=None,
    sizes=OPEN_SET_SIZES,
    T: float = 15.0,
    draws: int = 100,
    seed: int = 0,
) -> dict:
    """The unknown decision ``fewshot identify`` makes, per group size: members' pieces
    rejected, outsiders' pieces accepted, and the DET curve of the decision scores.

    Returns
    -------
    dict
        ``{str(K): {false_reject_rate, false_accept_rate, open_accuracy, threshold, n_groups, det}}``.
    """
    specs = {str(K): (K, None) for K in sizes if len(emb.names) > K}
    groups = draw_groups(len(emb.names), specs, draws=draws, seed=seed)
    view = compact(emb, T=T, keep_space=calibration is not None)
    out = {}
    for key, gs in groups.items():
        res = [episode(view, g, T=T, classifier=classifier, calibration=calibration) for g in gs]
        member = np.concatenate([r["member_score"] for r in res])
        imp = np.concatenate([r["impostor_score"] for r in res])
        out[key] = {**open_rates(res), "n_groups": len(gs), "det": det_points(member, imp)}
    return out


def evaluate_embeddings(
    emb: EmbeddedSpeakers,
    *,
    classifier: ClassifierConfig | None = None,
    group_sizes=(3, 5, 10, 20, "all"),
    enroll_seconds=(15, 35),
    curve_seconds=(5, 10, 15, 20, 25, 30, 35),
    draws: int = 100,
    seed: int = 0,
    verification_seconds: float = 15.0,
    calibration=None,
    progress=None,
) -> dict:
    """Every figure of the standard protocol for one system's embeddings.

    ``classifier`` (with the model's ``calibration``, when it has one) is the
    operating point ``fewshot identify`` runs (SVM settings and unknown
    decision, from the model's ``meta.json``); open-set rates are measured at
    its decision (``open_set``, and per group size in ``open_set_by_size``)
    and, labelled as the best case, at the cosine EER threshold of this data's
    verification scores (``open_set_at_eer``; ``verification_seconds``
    enrollment centroid against 5 s test pieces). Impostors are the test pieces
    of speakers outside the group. Without ``classifier`` (a baseline), only
    the best case is measured.

    Returns
    -------
    dict
        ``verification``, ``closed_set[T][key]`` (accuracy mean/spread, macro F1,
        representative confusion matrix, open-set rates) and
        ``enrollment_curve[key][T]`` (mean accuracy). JSON-ready; ``T`` and
        ``key`` are strings.
    """
    ver = verification_summary(emb, T=verification_seconds)
    thresholds = {"open_set_at_eer": ver["eer_threshold"]}
    if classifier is not None:
        thresholds = {"open_set": None, **thresholds}
    specs = group_specs(group_sizes, genders=emb.genders if any(emb.genders) else None)
    groups = draw_groups(len(emb.names), specs, draws=draws, seed=seed)
    Ts = sorted({float(t) for t in enroll_seconds} | {float(t) for t in curve_seconds})
    tasks = [(T, key) for T in Ts for key in specs]
    closed, curve = {}, {key: {} for key in specs if not key.endswith("same_gender")}
    skipped = {key: "no gender has enough speakers" for key in specs if not groups[key]}
    view = None
    for T, key in progress(tasks, total=len(tasks)) if progress is not None else tasks:
        detailed = T in {float(t) for t in enroll_seconds}
        if not groups[key] or (not detailed and key not in curve):
            continue
        if view is None or T not in view.enroll:
            view = compact(emb, T=T, keep_space=calibration is not None)
        res = [
            episode(view, g, T=T, classifier=classifier, open_set=detailed, calibration=calibration)
            for g in groups[key]
        ]
        if key in curve:
            curve[key][f"{T:g}"] = float(np.mean([np.mean(r["y_true"] == r["y_pred"]) for r in res]))
        if detailed:
            closed.setdefault(f"{T:g}", {})[key] = _summarise(res, groups[key], emb.names, thresholds=thresholds)
    out = {
        "verification": ver,
        "thresholds": thresholds,
        "classifier": (classifier or ClassifierConfig()).to_dict(),
        "closed_set": closed,
        "enrollment_curve": curve,
        "skipped_groups": skipped,
    }
    if classifier is not None:
        shipped = classifier.false_accept_rate is not None and calibration is not None
        thresholds["open_set"] = None if shipped else classifier.unknown_threshold
        out["unknown_rule"] = (
            f"AS-normalised score against the threshold for the group's size at a target "
            f"false-accept rate of {classifier.false_accept_rate:g} ({calibration.source})"
            if shipped
            else f"cosine below {classifier.unknown_threshold:g}"
        )
        out["open_set_by_size"] = open_set_by_size(
            emb, classifier=classifier, calibration=calibration, T=verification_seconds, draws=draws, seed=seed
        )
    return out


def condition_figures(
    emb: EmbeddedSpeakers,
    *,
    classifier: ClassifierConfig | None = None,
    group_sizes=(3, 10, "all"),
    T: float = 15.0,
    draws: int = 100,
    seed: int = 0,
) -> dict:
    """Mean accuracy per group size and the verification EER for one test condition.

    The groups are those of :func:`evaluate_embeddings` (same seed, same draws),
    so conditions differ only in their test pieces.
    """
    specs = group_specs(group_sizes)
    groups = draw_groups(len(emb.names), specs, draws=draws, seed=seed)
    view = compact(emb, T=T)
    out = {}
    for key, gs in groups.items():
        res = [episode(view, g, T=T, classifier=classifier, open_set=False) for g in gs]
        out[f"acc_{key}"] = float(np.mean([np.mean(r["y_true"] == r["y_pred"]) for r in res]))
    tgt, non = verification_scores(emb, T=T)
    out["eer"] = compute_eer(tgt, non)[0]
    return out


def paired_comparison(right_a: np.ndarray, right_b: np.ndarray) -> dict:
    """Two systems on the same test pieces: how often each is right where the other is wrong,
    and the exact McNemar test of that split (two-sided binomial on the discordant pieces).

    ``right_a``, ``right_b``: booleans, one per test piece, in the same order.
    """
    from scipy.stats import binomtest

    right_a, right_b = np.asarray(right_a, bool), np.asarray(right_b, bool)
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {
        "pieces": len(right_a),
        "accuracy_a": float(right_a.mean()),
        "accuracy_b": float(right_b.mean()),
        "only_a_right": only_a,
        "only_b_right": only_b,
        "mcnemar_p": float(p),
    }
