"""A group's fitted SVM as the store keeps it: named by what it was fitted on, used only when it is that fit.

:func:`stored_or_fit` takes what the store holds for a group (:func:`kept_fit`, from the store's ``fits``
table) and the group's rows; a kept fit is used only when its key (:func:`fit_key`) is that of these rows and
settings and it passes :meth:`fewshot.groups.fitted.FittedGroup.matches`, else the group is fitted again
(:func:`fit_group`, with scikit-learn) and the new fit returned for the store to keep (:func:`keep_fit`).
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from ..errors import StoreFullError, StoreReadOnlyError
from ..names import normalize_name
from .fitted import FIT_FORMAT, FittedGroup

logger = logging.getLogger(__name__)


def fit_key(X: np.ndarray, y: np.ndarray, centroid_mask: np.ndarray, params: dict) -> str:
    """A digest of everything a group's fit depends on: embeddings, names, centroid rows and settings."""
    h = hashlib.sha256(f"format {FIT_FORMAT}; {sorted(params.items())!r}".encode())
    for part in (np.ascontiguousarray(X, np.float32), np.asarray(centroid_mask, bool)):
        h.update(repr(part.shape).encode())
        h.update(part.tobytes())
    h.update("\0".join(map(str, y)).encode())
    return h.hexdigest()[:32]


def fit_group(X, y, *, centroid_mask, params: dict) -> FittedGroup:
    """Fit a group's SVM (with scikit-learn) on its rows."""
    from .svc import GroupSVC

    return GroupSVC(**params).fit(X, y, centroid_mask=centroid_mask).fitted_


def stored_or_fit(stored, X, y, *, centroid_mask, params: dict) -> tuple[FittedGroup, tuple[str, bytes] | None]:
    """The group's :class:`FittedGroup` from ``stored`` (``(key, blob)`` as the store keeps it, or ``None``)
    when it is the fit of exactly these rows and settings and passes every check; else a new fit.

    Returns
    -------
    fitted : FittedGroup
    new : (str, bytes) or None
        The new fit's key and bytes, for the store to keep (``None`` when ``stored`` was used).
    """
    key = fit_key(X, y, centroid_mask, params)
    if stored is not None and stored[0] == key:
        try:
            fitted = FittedGroup.from_bytes(stored[1], max_bytes=_max_fit_bytes(X, y))
            if fitted.matches(X, y, centroid_mask=centroid_mask, params=params):
                return fitted, None
        except ValueError as exc:
            logger.debug("the stored fit is refitted: %s", exc)
    fitted = fit_group(X, y, centroid_mask=centroid_mask, params=params)
    return fitted, (key, fitted.to_bytes())


def _max_fit_bytes(X, y) -> int:
    """The most bytes a fit of these rows can take: every row a support vector, every pair an intercept."""
    n, (rows, dim) = len(np.unique(y)), np.shape(X)
    return 8 * (rows * (dim + n) + n * (dim + n * n + 2)) + 64 * n + 65536


def kept_fit(store, group: str, *, revision: tuple[str, int]) -> tuple[str, bytes] | None:
    """``(key, data)`` of the fit ``store`` keeps for ``group`` at ``revision`` (``group_revision``), or ``None``."""
    row = (
        store._read()
        .execute(
            "SELECT f.key, f.data FROM fits f JOIN groups g ON g.id=f.group_id "
            "WHERE g.name=? COLLATE NAME AND g.extractor_id=? AND g.revision=? AND f.revision=g.revision",
            (normalize_name(group, kind="group"), *revision),
        )
        .fetchone()
    )
    return None if row is None else (str(row[0]), bytes(row[1]))


def keep_fit(store, group: str, *, revision: tuple[str, int], key: str, data: bytes) -> bool:
    """Keep ``group``'s fit in ``store``, unless its members changed since ``revision`` (then ``False``). A store
    that is read-only or on a full disk keeps none (``False``): the next use fits again."""
    group = normalize_name(group, kind="group")
    if store._read() is store._empty or store._db.read_only:
        return False

    def work():
        return (
            store._db.execute(
                "INSERT OR REPLACE INTO fits (group_id, revision, key, data) SELECT id, revision, ?, ? FROM groups "
                "WHERE name=? COLLATE NAME AND extractor_id=? AND revision=?",
                (key, data, group, *revision),
            ).rowcount
            > 0
        )

    try:
        return store._write(work)
    except (StoreFullError, StoreReadOnlyError):
        return False
