"""Decoders of who-speaks-when: a sequence of window scores or embeddings cut into runs of one speaker.

Pure functions on arrays, used by :func:`fewshot.turns.decoder.find_turns`.
"""

from __future__ import annotations

import numpy as np

from ..audio.features import l2_normalize


def viterbi(scores: np.ndarray, *, switch_penalty: float) -> np.ndarray:
    """The state of each step on the path of highest total score, each change of state costing ``switch_penalty``.

    Parameters
    ----------
    scores : np.ndarray [shape=(n_steps, n_states)]

    Returns
    -------
    path : np.ndarray of int [shape=(n_steps,)]

    Examples
    --------
    >>> viterbi(np.array([[1, 0], [0, .2], [1, 0], [0, 1], [0, 1]]), switch_penalty=0.5).tolist()
    [0, 0, 0, 1, 1]
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, k = scores.shape
    back = np.zeros((n, k), dtype=np.int64)
    total = scores[0].copy()
    for t in range(1, n):
        best = int(np.argmax(total))
        switch = total[best] - switch_penalty
        stay = total >= switch
        back[t] = np.where(stay, np.arange(k), best)
        total = np.where(stay, total, switch) + scores[t]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def change_points(E: np.ndarray, *, context: int, gap: int, threshold: float) -> np.ndarray:
    """Windows ``j`` where a change of speaker begins: those before differ from those after.

    The windows on each side are the ``context`` ones ending ``gap`` windows
    before ``j`` (so that they do not overlap window ``j``) and the ``context``
    ones from ``j`` on. A change is where the cosine distance of the two sides'
    mean embeddings exceeds ``threshold`` and is the largest within
    ``context`` windows.

    Returns
    -------
    j : np.ndarray of int
    """
    n = len(E)
    csum = np.concatenate([np.zeros((1, E.shape[1])), np.cumsum(E, axis=0)])
    j = np.arange(gap + 1, n)
    if not len(j):
        return j
    left = csum[j - gap] - csum[np.maximum(j - gap - context, 0)]
    right = csum[np.minimum(j + context, n)] - csum[j]
    d = 1 - np.sum(l2_normalize(left) * l2_normalize(right), axis=1)
    keep = [i for i in range(len(d)) if d[i] > threshold and d[i] >= d[max(0, i - context) : i + context + 1].max()]
    return j[keep]
