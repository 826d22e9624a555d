"""The decisions a user meets, per test condition and corpus: identify's "unknown" and verify's accept.

For ``fewshot evaluate --conditions``. Each corpus (speaker folders named
``so-*``, ``ls-*``, and all speakers together) gets random groups of
:data:`SIZES` people drawn among its speakers (the draws of
:func:`fewshot.eval.benchmark.open_set_by_size`, so the clean cells of "all"
repeat that table), each fitted once from the clean enrollment, as ``fewshot
enroll`` fits a group (:func:`fewshot.eval.protocol.fit_group`), and asked
about every condition's test pieces with the call ``fewshot identify`` makes
(:meth:`fewshot.groups.fitted.FittedGroup.predict_open`): members' pieces called
unknown, and outsiders' pieces (the corpus's speakers outside the group, in
the same condition) named as a member. Verification is ``fewshot verify``'s
decision (:func:`fewshot.groups.verify.claim_decisions`) on the trials of the EER:
each speaker enrolled alone, every piece of the corpus claimed to be theirs.
"""

from __future__ import annotations

import numpy as np

from .benchmark import draw_groups
from .protocol import EmbeddedSpeakers, compute_eer, fit_group, verification_scores

#: Group sizes of the per-condition open-set table.
SIZES = (1, 3, 5, 10, 20)
#: Corpora told apart by the prefix of the speaker folder's name (``so-0003``: speechocean762, ``ls-...``: LibriSpeech).
CORPORA = ("so", "ls")
#: The key of every speaker together.
ALL = "all"


def corpus_speakers(names) -> dict[str, np.ndarray]:
    """``{"all": every index, "so": indices of so-* speakers, "ls": ...}`` (possibly empty)."""
    names = list(names)
    return {
        ALL: np.arange(len(names)),
        **{c: np.array([i for i, n in enumerate(names) if n.startswith(f"{c}-")], int) for c in CORPORA},
    }


def measure_decisions(
    emb: EmbeddedSpeakers,
    tests: dict,
    *,
    classifier,
    calibration=None,
    T: float = 15.0,
    piece_s: float = 5.0,
    draws: int = 100,
    seed: int = 0,
    sizes=SIZES,
) -> dict:
    """Open-set and verification rates of the shipped decisions per condition and corpus.

    Parameters
    ----------
    emb : EmbeddedSpeakers
        The clean enrollment (``emb.enroll[T]``, and its copies for multi-condition enrollment).
    tests : dict
        ``{condition: [test embeddings of speaker i, shape=(n_i, dim)]}``, the speakers of ``emb`` in order.
    classifier, calibration
        The operating point ``fewshot identify`` runs (:class:`~fewshot.config.ClassifierConfig`, the model's
        :class:`~fewshot.groups.openset.Calibration` or ``None``).
    piece_s : float
        Seconds of speech in each test piece (what the threshold model is asked for).

    Returns
    -------
    dict
        ``{condition: {"open_set": {corpus: cell}, "verify": {corpus: cell}}}``. An open-set cell holds
        ``speakers``, ``by_size`` (``{str(K): {false_accept_rate, false_reject_rate, open_accuracy, n_groups,
        outsider_pieces, member_pieces}}``), ``left_out`` (``{str(K): reason}``) and, for a corpus
        with the same speakers as another, ``same_as``; a verification cell ``false_accept_rate``,
        ``false_reject_rate``, ``eer``, ``n_target``, ``n_nontarget`` (or ``left_out``). Rates in [0, 1].
    """
    conditions = list(tests)
    out = {c: {"open_set": {}, "verify": {}} for c in conditions}
    done = {}
    for corpus, idx in corpus_speakers(emb.names).items():
        key = tuple(idx.tolist())
        if key and key in done:
            for c in conditions:
                for part in ("open_set", "verify"):
                    out[c][part][corpus] = {**out[c][part][done[key]], "same_as": done[key]}
            continue
        done[key] = corpus
        opened = _open_set(
            emb,
            tests,
            idx,
            corpus=corpus,
            classifier=classifier,
            calibration=calibration,
            T=T,
            piece_s=piece_s,
            draws=draws,
            seed=seed,
            sizes=sizes,
        )
        verified = _verify(
            emb, tests, idx, corpus=corpus, classifier=classifier, calibration=calibration, T=T, piece_s=piece_s
        )
        for c in conditions:
            out[c]["open_set"][corpus], out[c]["verify"][corpus] = opened[c], verified[c]
    return out


def _label(corpus: str) -> str:
    return "speakers" if corpus == ALL else f"{corpus}-* speakers"


def _open_set(emb, tests, idx, *, corpus, classifier, calibration, T, piece_s, draws, seed, sizes) -> dict:
    n = len(idx)
    left_out = {
        str(K): (
            f"no {_label(corpus)} in this dataset"
            if n == 0
            else f"only {n} {_label(corpus)}; a group of {K} needs {K + 1} (one outsider at least)"
        )
        for K in sizes
        if n <= K
    }
    groups = draw_groups(n, {str(K): (K, None) for K in sizes if n > K}, draws=draws, seed=seed)
    counts = {c: {} for c in tests}
    owner = np.concatenate([np.full(len(emb.tests[i]), i) for i in idx]) if n else np.zeros(0, int)
    X = {c: np.concatenate([tests[c][i] for i in idx]) for c in tests} if n else {}
    for K, gs in groups.items():
        for g in gs:
            members = idx[g]
            fitted = fit_group(emb, members, T=T, classifier=classifier, calibration=calibration)
            member = np.isin(owner, members)
            truth = np.searchsorted(members, owner)  # the class of a member's piece (members are sorted)
            for c in tests:
                labels, _, nearest = fitted.predict_open(X[c], seconds=np.full(len(X[c]), piece_s), return_nearest=True)
                unknown = np.asarray(labels == fitted.unknown_label, bool)
                row = counts[c].setdefault(K, np.zeros(5, np.int64))
                row += [
                    np.sum(~unknown & ~member),
                    np.sum(~member),
                    np.sum(unknown & member),
                    np.sum(member),
                    np.sum(~unknown & member & (nearest.astype(np.int64) == truth)),
                ]
    out = {}
    for c in tests:
        by_size = {
            K: {
                "false_accept_rate": float(r[0] / r[1]) if r[1] else None,
                "false_reject_rate": float(r[2] / r[3]) if r[3] else None,
                "open_accuracy": float(r[4] / r[3]) if r[3] else None,
                "n_groups": len(groups[K]),
                "outsider_pieces": int(r[1]),
                "member_pieces": int(r[3]),
            }
            for K, r in counts[c].items()
        }
        out[c] = {"speakers": n, "by_size": by_size, "left_out": left_out}
    return out


def _verify(emb, tests, idx, *, corpus, classifier, calibration, T, piece_s) -> dict:
    from ..groups.verify import claim_decisions

    n = len(idx)
    if n < 2:
        reason = f"only {n} {_label(corpus)}; verification needs 2 (a claim and another speaker's pieces)"
        return {c: {"speakers": n, "left_out": reason} for c in tests}
    owner = np.concatenate([np.full(len(emb.tests[i]), i) for i in idx])
    counts = {c: np.zeros(4, np.int64) for c in tests}
    X = {c: np.concatenate([tests[c][i] for i in idx]) for c in tests}
    for i in idx:
        alone = fit_group(emb, [i], T=T, classifier=classifier, calibration=calibration)
        target = owner == i
        for c in tests:
            accepted = claim_decisions(alone, X[c], alone.classes_[0], seconds=np.full(len(X[c]), piece_s))[0]
            counts[c] += [np.sum(accepted & ~target), np.sum(~target), np.sum(~accepted & target), np.sum(target)]
    out = {}
    for c in tests:
        view = EmbeddedSpeakers(
            [emb.names[i] for i in idx],
            {T: [emb.enroll[T][i] for i in idx]},
            [tests[c][i] for i in idx],
            [emb.genders[i] for i in idx],
        )
        r = counts[c]
        out[c] = {
            "speakers": n,
            "false_accept_rate": float(r[0] / r[1]),
            "false_reject_rate": float(r[2] / r[3]),
            "eer": compute_eer(*verification_scores(view, T=T))[0],
            "n_nontarget": int(r[1]),
            "n_target": int(r[3]),
        }
    return out


def worst_cell(conditions: dict) -> dict | None:
    """The cell (condition, corpus, group size) where the most outsiders' pieces are accepted, with its rates."""
    cells = [
        {"condition": c, "corpus": corpus, "group_size": int(K), **rates}
        for c, figs in conditions.items()
        for corpus, cell in figs.get("open_set", {}).items()
        if "same_as" not in cell
        for K, rates in cell["by_size"].items()
        if rates["false_accept_rate"] is not None
    ]
    return max(cells, key=lambda x: x["false_accept_rate"]) if cells else None
