"""A group's fitted SVM as plain arrays: its predictions, in NumPy alone.

:class:`~fewshot.groups.svc.GroupSVC` fits a group's RBF SVM with
scikit-learn; what it learned (support vectors, dual coefficients, intercepts,
the speakers' centroids) becomes a :class:`FittedGroup`, which makes every
prediction. The store keeps each group's :class:`FittedGroup` beside its
members (deleted with them), named by a digest of the rows it was fitted on;
``fewshot identify`` uses it only when it is the fit of exactly the group's
rows and passes every check (:func:`fewshot.groups.kept_fit.stored_or_fit`), so answering needs neither
scikit-learn nor a refit: importing scikit-learn alone takes longer than the
rest of a cold start.

Predictions equal scikit-learn's ``SVC`` (libsvm's one-vs-one votes, ties to
the first class; the one-vs-rest ``decision_function`` of
``decision_function_shape="ovr"``), checked in ``tests/unit/test_classifier.py``.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from dataclasses import dataclass

import numpy as np

from ..audio.features import l2_normalize
from ..config import UNKNOWN
from ..persistence import read_npz_bytes

#: Bumped when the arrays' meaning changes, so older stored fits are not read.
FIT_FORMAT = 1


def _l2(X) -> np.ndarray:
    return l2_normalize(np.asarray(X, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class FittedGroup:
    """What a group's SVM learned, and its open-set answer.

    Parameters
    ----------
    classes_ : np.ndarray of str [shape=(n_classes,)]
        Enrolled speakers, sorted.
    centroids_ : np.ndarray [shape=(n_classes, dim)]
        Unit-length mean embedding of each speaker.
    support_vectors : np.ndarray [shape=(n_sv, dim)]
        Grouped by class, ``n_support[k]`` rows for class ``k`` (empty for one speaker).
    dual_coef : np.ndarray [shape=(n_classes - 1, n_sv)]
        libsvm's one-vs-one coefficients (scikit-learn's ``_dual_coef_``).
    intercept : np.ndarray [shape=(n_classes * (n_classes - 1) / 2,)]
        libsvm's intercepts (scikit-learn's ``_intercept_``), pairs in ``(0, 1), (0, 2), ..., (1, 2), ...`` order.
    n_support : np.ndarray of int [shape=(n_classes,)]
    gamma : float
        RBF width.
    unknown_threshold : float or None
        Cosine to the predicted speaker's centroid below which the answer is ``unknown_label``.
    unknown_label : str
    calibration : fewshot.groups.openset.Calibration, optional
        The model's cohort and threshold table (not part of the stored arrays).
    false_accept_rate : float, optional
        With ``calibration``: the unknown decision is the normalised score
        against the table's threshold for this group's size at this rate,
        instead of the cosine against ``unknown_threshold``.
    """

    classes_: np.ndarray
    centroids_: np.ndarray
    support_vectors: np.ndarray
    dual_coef: np.ndarray
    intercept: np.ndarray
    n_support: np.ndarray
    gamma: float
    unknown_threshold: float | None = None
    unknown_label: str = UNKNOWN
    calibration: object = None
    false_accept_rate: float | None = None

    @classmethod
    def from_svc(cls, svc, *, classes, centroids, unknown_threshold=None, unknown_label=UNKNOWN) -> FittedGroup:
        """The arrays of a fitted ``sklearn.svm.SVC`` (or ``None`` for a group of one speaker)."""
        dim = np.asarray(centroids).shape[1]
        if svc is None:
            sv, dual, icpt, n_sup, gamma = np.zeros((0, dim)), np.zeros((0, 0)), np.zeros(0), np.zeros(1, int), 1.0
        else:
            sv, dual, icpt = svc.support_vectors_, svc._dual_coef_, svc._intercept_
            n_sup, gamma = svc.n_support_, float(svc._gamma)
        return cls(
            np.asarray(classes),
            np.asarray(centroids, np.float64),
            np.asarray(sv, np.float64),
            np.asarray(dual, np.float64),
            np.asarray(icpt, np.float64),
            np.asarray(n_sup, np.int64),
            gamma,
            None if unknown_threshold is None else float(unknown_threshold),
            unknown_label,
        )

    @property
    def n_features_in_(self) -> int:
        return int(self.centroids_.shape[1])

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape}; this group's SVM expects (n_samples, {self.n_features_in_})")
        if not np.all(np.isfinite(X)):
            raise ValueError("X holds NaN or infinite values")
        return _l2(X)

    def cosine_scores(self, X) -> np.ndarray:
        """Cosine similarity of each sample to each speaker's centroid, shape ``(n_samples, n_classes)``."""
        return self._check(X) @ self.centroids_.T

    def _pairwise(self, Xn: np.ndarray) -> np.ndarray:
        """libsvm's one-vs-one decision values, shape ``(n_samples, n_pairs)``; positive favours the first class."""
        sq = np.sum(Xn**2, axis=1)[:, None] + np.sum(self.support_vectors**2, axis=1)[None, :]
        K = np.exp(-self.gamma * np.maximum(sq - 2 * Xn @ self.support_vectors.T, 0.0))
        start = np.concatenate([[0], np.cumsum(self.n_support)])
        n, out = len(self.classes_), []
        for i in range(n):
            for j in range(i + 1, n):
                si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
                out.append(K[:, si] @ self.dual_coef[j - 1, si] + K[:, sj] @ self.dual_coef[i, sj])
        return np.stack(out, axis=1) + self.intercept

    def _votes(self, dec: np.ndarray) -> np.ndarray:
        n = len(self.classes_)
        votes = np.zeros((len(dec), n))
        for p, (i, j) in enumerate((a, b) for a in range(n) for b in range(a + 1, n)):
            votes[:, i] += dec[:, p] > 0
            votes[:, j] += dec[:, p] <= 0
        return votes

    def decision_function(self, X) -> np.ndarray:
        """SVM margins as scikit-learn gives them (one-vs-rest shape), or the cosine score for one speaker.

        Returns
        -------
        scores : np.ndarray [shape=(n_samples,) for 1-2 classes, else (n_samples, n_classes)]
            For two classes, positive favours ``classes_[1]``.
        """
        Xn = self._check(X)
        n = len(self.classes_)
        if n == 1:
            return (Xn @ self.centroids_.T)[:, 0]
        dec = self._pairwise(Xn)
        if n == 2:
            return -dec[:, 0]
        # sklearn.utils.multiclass._ovr_decision_function, on libsvm's signs
        votes, confidences = self._votes(dec), np.zeros((len(dec), n))
        for p, (i, j) in enumerate((a, b) for a in range(n) for b in range(a + 1, n)):
            confidences[:, i] += dec[:, p]
            confidences[:, j] -= dec[:, p]
        return votes + confidences / (3 * (np.abs(confidences) + 1))

    def predict(self, X) -> np.ndarray:
        """The enrolled speaker of each sample (never unknown; see :meth:`predict_open`)."""
        Xn = self._check(X)
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, len(Xn))
        return self.classes_[np.argmax(self._votes(self._pairwise(Xn)), axis=1)]

    def with_open_set(self, calibration, false_accept_rate: float | None) -> FittedGroup:
        """This group deciding unknown by ``calibration`` at ``false_accept_rate`` (``None``: by cosine)."""
        return dataclasses.replace(
            self,
            calibration=calibration if false_accept_rate is not None else None,
            false_accept_rate=false_accept_rate if calibration is not None else None,
        )

    @property
    def decision_threshold(self) -> float | None:
        """What :meth:`open_scores`' decisions on 5 s of speech are compared with (``None``: never unknown)."""
        if self.calibration is not None:
            return self.calibration.threshold(len(self.classes_), self.false_accept_rate)
        return self.unknown_threshold

    def decision_thresholds(self, X, seconds=None, *, n_members: int | None = None) -> np.ndarray | None:
        """What each sample's decision score is compared with, for ``seconds`` of speech each (``None``: the
        reference length); ``n_members`` (default: the group's size) picks the group size's threshold."""
        if self.calibration is None:
            return None if self.unknown_threshold is None else np.full(len(X), self.unknown_threshold)
        from .openset import REFERENCE_SECONDS

        return self.calibration.decision_thresholds(
            len(self.classes_) if n_members is None else n_members,
            self.false_accept_rate,
            self._check(X),
            REFERENCE_SECONDS if seconds is None else seconds,
        )

    def open_scores(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The SVM's speaker of each sample, its cosine to that speaker's centroid, and the score unknown is decided on.

        Returns
        -------
        nearest : np.ndarray [shape=(n_samples,)]
        cosine : np.ndarray [shape=(n_samples,)]
        decision : np.ndarray [shape=(n_samples,)]
            The AS-normalised cosine with a calibration, else the cosine.
        """
        Xn = self._check(X)
        nearest = self.predict(Xn)
        idx = np.searchsorted(self.classes_, nearest)
        cosine = np.sum(Xn * self.centroids_[idx], axis=1)
        if self.calibration is None:
            return nearest, cosine, cosine
        stats = self.calibration.cohort_stats(self.centroids_)
        decision = self.calibration.normalize(
            cosine, Xn, self.centroids_[idx], centroid_stats=(stats[0][idx], stats[1][idx])
        )
        return nearest, cosine, decision

    def predict_open(self, X, *, seconds=None, return_nearest: bool = False):
        """Speaker or ``unknown_label`` for each sample (of ``seconds`` of speech; see :meth:`decision_thresholds`),
        with its cosine score.

        Returns
        -------
        labels : np.ndarray of object [shape=(n_samples,)]
        scores : np.ndarray [shape=(n_samples,)]
            Cosine similarity to the predicted speaker's centroid.
        nearest : np.ndarray [shape=(n_samples,)]
            Only with ``return_nearest``: the SVM's speaker, before the threshold.
        """
        nearest, scores, decision = self.open_scores(X)
        labels = nearest.astype(object)
        threshold = self.decision_thresholds(X, seconds)
        if threshold is not None:
            labels[decision < threshold] = self.unknown_label
        return (labels, scores, nearest) if return_nearest else (labels, scores)

    def to_bytes(self) -> bytes:
        """The arrays as an uncompressed ``.npz`` (no pickles), as the store keeps them."""
        buf = io.BytesIO()
        np.savez(
            buf,
            format=np.int64(FIT_FORMAT),
            classes=self.classes_.astype(str),
            centroids=self.centroids_,
            support_vectors=self.support_vectors,
            dual_coef=self.dual_coef,
            intercept=self.intercept,
            n_support=self.n_support,
            gamma=np.float64(self.gamma),
            unknown_threshold=np.float64(np.nan if self.unknown_threshold is None else self.unknown_threshold),
            unknown_label=np.str_(self.unknown_label),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = 64 << 20) -> FittedGroup:
        """Inverse of :meth:`to_bytes`; ``ValueError`` for anything else.

        Nothing is trusted: the blob is at most ``max_bytes``, its members are
        stored uncompressed and no array's header claims more than its member
        holds, so nothing is allocated beyond the blob's size; shapes must agree.
        """
        try:
            arrays = read_npz_bytes(data, max_bytes=max_bytes)
            if int(arrays["format"]) != FIT_FORMAT:
                raise ValueError("another format")
            threshold = float(arrays["unknown_threshold"])
            fitted = cls(
                arrays["classes"],
                arrays["centroids"].astype(np.float64),
                arrays["support_vectors"].astype(np.float64),
                arrays["dual_coef"].astype(np.float64),
                arrays["intercept"].astype(np.float64),
                arrays["n_support"].astype(np.int64),
                float(arrays["gamma"]),
                None if np.isnan(threshold) else threshold,
                str(arrays["unknown_label"]),
            )
        except (OSError, KeyError, EOFError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a fitted group: {exc}") from None
        n, dim = fitted.centroids_.shape if fitted.centroids_.ndim == 2 else (-1, -1)
        n_sv = int(fitted.n_support.sum())
        if (
            fitted.classes_.ndim != 1
            or fitted.classes_.dtype.kind != "U"
            or len(fitted.classes_) != n
            or fitted.n_support.shape != (n,)
            or np.any(fitted.n_support < 0)
            or fitted.support_vectors.shape != (n_sv, dim)
            or (n > 1 and fitted.dual_coef.shape != (n - 1, n_sv))
            or fitted.intercept.shape != (n * (n - 1) // 2,)
        ):
            raise ValueError("not a fitted group: inconsistent array shapes")
        return fitted

    def matches(self, X, y, *, centroid_mask, params: dict) -> bool:
        """Whether this is what :func:`fit_group` makes of ``X, y``: the same speakers, centroids and
        settings, every support vector one of the rows, every number finite. What a stored fit could
        still change is only how the SVM weighs the group's own rows."""
        Xn = _l2(X)
        classes, y_idx = np.unique(np.asarray(y).astype(str), return_inverse=True)
        if not (
            np.array_equal(self.classes_, classes)
            and self.n_features_in_ == Xn.shape[1]
            and self.gamma == float(params["gamma"])
            and self.unknown_label == UNKNOWN
            and self.unknown_threshold == params.get("unknown_threshold")
            and len(self.support_vectors) <= len(Xn)
        ):
            return False
        arrays = (self.centroids_, self.support_vectors, self.dual_coef, self.intercept)
        if not all(np.all(np.isfinite(a)) for a in arrays):
            return False
        mask = np.asarray(centroid_mask, bool)
        centroids = _l2(np.stack([Xn[(y_idx == k) & mask].mean(axis=0) for k in range(len(classes))]))
        if not np.allclose(self.centroids_, centroids, rtol=0, atol=1e-9):
            return False
        rows = {r.tobytes() for r in Xn}
        return all(sv.tobytes() in rows for sv in self.support_vectors)
