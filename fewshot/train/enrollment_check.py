"""Calibrating the enrollment self-check (:mod:`fewshot.groups.selfcheck`) on the calibration population.

Coherences of genuine enrollments and of enrollments with a share of
another voice put in, per corpus and recording condition, and the thresholds
that flag at most :data:`CHECK_CLEAN_FLAGGED` of genuine ones in each.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .calibration import SEED

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

    def subset(self, keep) -> CheckScores:
        return CheckScores(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})


def _mix_plan(speakers, *, slots: dict, share: float, seed: int) -> list[tuple]:
    """``(i, j, T, [(a, b, m), ...])``: speaker ``i``'s first ``slots[T]`` hops with ``m`` hops from ``a`` replaced by
    speaker ``j``'s from ``b`` (``j`` of the same corpus), in one stretch and in two."""
    rng = np.random.default_rng(seed)
    plan = []
    for i, s in enumerate(speakers):
        same = [k for k, o in enumerate(speakers) if k != i and o.corpus == s.corpus] or [
            k for k in range(len(speakers)) if k != i
        ]
        for T, n in slots.items():
            total = int(round(share * n))
            for chunks in (1, 2):
                m, j = total // chunks, int(rng.choice(same))
                starts = (
                    [int(rng.integers(0, n - m + 1))]
                    if chunks == 1
                    else [int(rng.integers(0, n // 2 - m + 1)), int(rng.integers(n // 2, n - m + 1))]
                )
                plan.append((i, j, T, [(a, int(rng.integers(0, slots[max(slots)] - m + 1)), m) for a in starts]))
    return plan


def enrollment_check_scores(
    extractor,
    speakers,
    *,
    conditions=CHECK_CONDITIONS,
    seconds=CHECK_SECONDS,
    share: float = 0.2,
    seed: int = SEED,
    progress=None,
) -> CheckScores:
    """The self-check's coherence (:mod:`fewshot.groups.selfcheck`) of each speaker's enrollment speech, prepared as
    ``enroll`` prepares it (:mod:`fewshot.train.population`), in each recording condition (the whole enrollment
    put through it), and of the same with ``share`` of another speaker of the same corpus in one or two stretches.

    The windows of the check lie on a grid of hops, and the mixing replaces whole hops, so a mixed
    enrollment's windows are those of its two speakers except one per edge of a stretch, embedded anew.
    """
    from ..audio.vad import normalize_loudness
    from ..eval.conditions import Degrader
    from ..groups.selfcheck import HOP_S, WINDOW_S, split_coherence, windows

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
        E = [windows(extractor, y) for y in audio]
        for i in range(len(speakers)):
            for T, n in slots.items():
                out.append((i, c, T, split_coherence(E[i][: n - per_window + 1]), False, 0))
        new = []
        mixes = []
        for i, j, T, stretches in plan:
            n = slots[T]
            src = [(i, k) for k in range(n)]
            for a, b, m in stretches:
                src[a : a + m] = [(j, b + k) for k in range(m)]
            rows = []
            for t in range(n - per_window + 1):
                part = src[t : t + per_window]
                if all(p[0] == part[0][0] and p[1] == part[0][1] + d for d, p in enumerate(part)):
                    rows.append(("old", part[0]))
                else:
                    rows.append(("new", len(new)))
                    new.append(np.concatenate([audio[p][k * h : (k + 1) * h] for p, k in part]))
            mixes.append((i, T, len(stretches), rows))
        N = extractor.embed(new) if new else np.zeros((0, extractor.dim))
        for i, T, k, rows in mixes:
            W = np.stack([E[r[0]][r[1]] if kind == "old" else N[r] for kind, r in rows])
            out.append((i, c, T, split_coherence(W), True, k))
    a = list(zip(*out))
    return CheckScores(
        np.array(a[0]), np.array(a[1]), np.array(a[2], np.float64), np.array(a[3]), np.array(a[4], bool), np.array(a[5])
    )


def check_thresholds(scores: CheckScores, corpora, *, flagged: float = CHECK_CLEAN_FLAGGED) -> np.ndarray:
    """``(seconds, threshold)`` pairs: at each length, the lowest of each (corpus, condition)'s coherence below
    which ``flagged`` of its genuine enrollments fall, so that no corpus or condition is flagged more."""
    genuine = scores.subset(~scores.mixed)
    corpus = np.asarray(corpora)[genuine.speaker]
    table = []
    for T in np.unique(genuine.seconds):
        cells = [
            genuine.coherence[(genuine.seconds == T) & (corpus == co) & (genuine.condition == c)]
            for co in np.unique(corpus)
            for c in np.unique(genuine.condition)
        ]
        table.append((float(T), min(float(np.quantile(v, flagged)) for v in cells if len(v))))
    return np.array(table)


def check_rates(scores: CheckScores, table: np.ndarray, corpora, conditions) -> list[dict]:
    """Genuine enrollments refused and mixed ones caught per (seconds, corpus, condition)."""
    from ..groups.selfcheck import threshold_for

    corpus = np.asarray(corpora)[scores.speaker]
    flagged = scores.coherence < np.array([threshold_for(T, table) for T in scores.seconds])
    out = []
    for T in np.unique(scores.seconds):
        for co in np.unique(corpus):
            for c in np.unique(scores.condition):
                m = (scores.seconds == T) & (corpus == co) & (scores.condition == c)
                g, x = m & ~scores.mixed, m & scores.mixed
                out.append(
                    {
                        "seconds": float(T),
                        "corpus": str(co),
                        "condition": conditions[c],
                        "genuine_refused": float(np.mean(flagged[g])) if g.any() else None,
                        "mixed_caught": float(np.mean(flagged[x])) if x.any() else None,
                        "mixed_one_stretch_caught": float(np.mean(flagged[x & (scores.stretches == 1)]))
                        if x.any()
                        else None,
                        "enrollments": int(g.sum()),
                    }
                )
    return out
