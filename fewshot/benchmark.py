"""The full benchmark behind ``fewshot evaluate``: every figure of the report, for one system.

Builds on the standard protocol of :mod:`fewshot.evaluation`: draws the groups
(the same groups for every system and enrollment length), runs the episodes
with and without the unknown threshold, and summarises accuracy, macro F1,
confusion matrices, open-set rates and the verification curves.
"""

from __future__ import annotations

import numpy as np

from .classifier import GroupSVC
from .evaluation import (EmbeddedSpeakers, ProtocolSpeaker, compact, compute_eer, embed_protocol,
                         group_draws, verification_scores)

SAME_GENDER_K = 5


def merge_embedded(parts: list[EmbeddedSpeakers]) -> EmbeddedSpeakers:
    """Concatenate :class:`EmbeddedSpeakers` of disjoint speaker chunks (in order)."""
    Ts = parts[0].enroll if parts else {}
    return EmbeddedSpeakers(
        names=[n for p in parts for n in p.names],
        enroll={T: [e for p in parts for e in p.enroll[T]] for T in Ts},
        tests=[t for p in parts for t in p.tests],
        genders=[g for p in parts for g in p.genders],
    )


def embed_protocol_chunked(extractor, speakers: list[ProtocolSpeaker], *, chunk: int = 8,
                           progress=None) -> EmbeddedSpeakers:
    """:func:`embed_protocol` over chunks of ``chunk`` speakers (``progress`` wraps the chunks)."""
    chunks = [speakers[i:i + chunk] for i in range(0, len(speakers), chunk)]
    it = progress(chunks, total=len(chunks)) if progress is not None else chunks
    return merge_embedded([embed_protocol(extractor, c) for c in it])


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

    return {key: group_draws(n_speakers, K, draws=draws, genders=g,
                             rng=np.random.default_rng([seed, zlib.crc32(key.encode())]))
            for key, (K, g) in specs.items()}


def episode(emb: EmbeddedSpeakers, idx, *, T: float, threshold: float | None = None,
            C: float = 10.0, gamma: float = 1.0) -> dict:
    """One group: closed-set labels of its members' test pieces and, with a
    ``threshold``, open-set decisions (:meth:`GroupSVC.predict_open`) on members
    and on impostors (test pieces of every speaker outside the group).

    Returns
    -------
    dict
        ``y_true``, ``y_pred`` (indices into ``idx``); with a threshold also
        ``member_rejected``, ``member_open_correct``, ``impostor_accepted``
        (boolean arrays).
    """
    idx = np.asarray(idx)
    X = np.concatenate([emb.enroll[T][i] for i in idx])
    y = np.concatenate([np.full(len(emb.enroll[T][i]), k) for k, i in enumerate(idx)])
    clf = GroupSVC(C=C, gamma=gamma, unknown_threshold=threshold).fit(X, y)
    Xt = np.concatenate([emb.tests[i] for i in idx])
    yt = np.concatenate([np.full(len(emb.tests[i]), k) for k, i in enumerate(idx)])
    out = {"y_true": yt, "y_pred": clf.predict(Xt)}
    if threshold is not None:
        labels, _ = clf.predict_open(Xt)
        rejected = np.array([isinstance(lab, str) for lab in labels], dtype=bool)
        out["member_rejected"] = rejected
        out["member_open_correct"] = ~rejected & (np.where(rejected, -1, labels).astype(int) == yt)
        others = [emb.tests[i] for i in np.setdiff1d(np.arange(len(emb.tests)), idx)]
        if others:
            labels, _ = clf.predict_open(np.concatenate(others))
            out["impostor_accepted"] = np.array([not isinstance(lab, str) for lab in labels], dtype=bool)
        else:
            out["impostor_accepted"] = np.zeros(0, bool)
    return out


def det_points(target_scores, nontarget_scores, *, max_points: int = 300) -> dict:
    """False-accept and false-reject rates over thresholds (at most ``max_points``)."""
    tgt, non = np.sort(target_scores), np.sort(nontarget_scores)
    thr = np.unique(np.r_[tgt, non])
    frr = np.searchsorted(tgt, thr, side="left") / len(tgt)
    far = 1.0 - np.searchsorted(non, thr, side="left") / len(non)
    keep = np.unique(np.linspace(0, len(thr) - 1, min(max_points, len(thr))).round().astype(int))
    return {"threshold": thr[keep].round(5).tolist(), "far": far[keep].round(6).tolist(),
            "frr": frr[keep].round(6).tolist()}


def verification_summary(emb: EmbeddedSpeakers, *, T: float = 15.0, bins: int = 60) -> dict:
    """EER, its threshold, a DET curve and score histograms (JSON-ready)."""
    tgt, non = verification_scores(emb, T=T)
    eer, thr = compute_eer(tgt, non)
    lo, hi = float(min(tgt.min(), non.min())), float(max(tgt.max(), non.max()))
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    return {"enroll_seconds": T, "eer": eer, "eer_threshold": thr,
            "n_target": int(len(tgt)), "n_nontarget": int(len(non)),
            "target_mean": float(tgt.mean()), "nontarget_mean": float(non.mean()),
            "histogram": {"edges": edges.round(5).tolist(),
                          "target": np.histogram(tgt, edges)[0].tolist(),
                          "nontarget": np.histogram(non, edges)[0].tolist()},
            "det": det_points(tgt, non)}


def _summarise(results: list[dict], groups: list[np.ndarray], names: list[str]) -> dict:
    from sklearn.metrics import confusion_matrix, f1_score

    accs = np.array([np.mean(r["y_true"] == r["y_pred"]) for r in results])
    f1s = np.array([f1_score(r["y_true"], r["y_pred"], labels=np.arange(len(g)), average="macro",
                             zero_division=0) for r, g in zip(results, groups)])
    rep = int(np.argmin(np.abs(accs - np.median(accs))))
    g, r = groups[rep], results[rep]
    out = {"k": len(g), "n_groups": len(groups), "n_test_pieces": int(sum(len(r["y_true"]) for r in results)),
           "accuracy_mean": float(accs.mean()), "accuracy_std": float(accs.std()),
           "accuracy_p5": float(np.percentile(accs, 5)), "accuracy_p95": float(np.percentile(accs, 95)),
           "accuracy_min": float(accs.min()), "accuracy_max": float(accs.max()),
           "macro_f1_mean": float(f1s.mean()), "macro_f1_std": float(f1s.std()),
           "representative": {"speakers": [names[i] for i in g], "accuracy": float(accs[rep]),
                              "confusion": confusion_matrix(r["y_true"], r["y_pred"],
                                                            labels=np.arange(len(g))).tolist()}}
    if "member_rejected" in results[0]:
        imp = np.concatenate([r["impostor_accepted"] for r in results])
        out["open_set"] = {
            "false_reject_rate": float(np.mean(np.concatenate([r["member_rejected"] for r in results]))),
            "open_accuracy": float(np.mean(np.concatenate([r["member_open_correct"] for r in results]))),
            "false_accept_rate": float(imp.mean()) if len(imp) else None,
            "n_impostor_pieces": int(len(imp))}
    return out


def evaluate_embeddings(emb: EmbeddedSpeakers, *, group_sizes=(3, 5, 10, 20, "all"), enroll_seconds=(15, 35),
                        curve_seconds=(5, 10, 15, 20, 25, 30, 35), draws: int = 100, seed: int = 0,
                        verification_seconds: float = 15.0, progress=None) -> dict:
    """Every figure of the standard protocol for one system's embeddings.

    The unknown threshold is the EER threshold of the verification scores
    (``verification_seconds`` enrollment centroid against 5 s test pieces);
    open-set rates are measured at it for every group (impostors: test pieces
    of speakers outside the group).

    Returns
    -------
    dict
        ``verification``, ``closed_set[T][key]`` (accuracy mean/spread, macro F1,
        representative confusion matrix, open-set rates) and
        ``enrollment_curve[key][T]`` (mean accuracy). JSON-ready; ``T`` and
        ``key`` are strings.
    """
    ver = verification_summary(emb, T=verification_seconds)
    thr = ver["eer_threshold"]
    specs = group_specs(group_sizes, genders=emb.genders if any(emb.genders) else None)
    groups = draw_groups(len(emb.names), specs, draws=draws, seed=seed)
    Ts = sorted({float(t) for t in enroll_seconds} | {float(t) for t in curve_seconds})
    tasks = [(T, key) for T in Ts for key in specs]
    closed, curve = {}, {key: {} for key in specs if not key.endswith("same_gender")}
    skipped = {key: "no gender has enough speakers" for key in specs if not groups[key]}
    view = None
    for T, key in (progress(tasks, total=len(tasks)) if progress is not None else tasks):
        detailed = T in {float(t) for t in enroll_seconds}
        if not groups[key] or (not detailed and key not in curve):
            continue
        if view is None or T not in view.enroll:
            view = compact(emb, T=T)
        res = [episode(view, g, T=T, threshold=thr if detailed else None) for g in groups[key]]
        if key in curve:
            curve[key][f"{T:g}"] = float(np.mean([np.mean(r["y_true"] == r["y_pred"]) for r in res]))
        if detailed:
            closed.setdefault(f"{T:g}", {})[key] = _summarise(res, groups[key], emb.names)
    return {"verification": ver, "unknown_threshold": thr, "closed_set": closed,
            "enrollment_curve": curve, "skipped_groups": skipped}
