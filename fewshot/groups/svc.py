"""Where the SVMs live: one RBF SVM per group, on L2-normalised embeddings.

:class:`GroupSVC` fits with scikit-learn; its predictions come from the
:class:`~fewshot.groups.fitted.FittedGroup` it learned (NumPy alone), the same code that
answers ``fewshot identify`` without importing scikit-learn.

Measured on real embeddings (see README): L2 normalisation followed by an RBF
SVC with ``gamma=1`` and ``C=10`` and balanced class weights. A per-group
``StandardScaler`` fitted on a dozen segments is *not* used: it inflates noise
in dimensions the few enrollment segments happen not to vary in.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..audio.features import l2_normalize
from ..config import UNKNOWN, ClassifierConfig
from .fitted import FittedGroup


def _l2(X):
    return l2_normalize(np.asarray(X, dtype=np.float64))


class GroupSVC(ClassifierMixin, BaseEstimator):
    """RBF SVM over the speakers of one group, with an "unknown" answer.

    Parameters
    ----------
    C : float, default=10.0
        SVM regularisation.
    gamma : float, default=1.0
        RBF width, on unit-length embeddings (squared distances lie in [0, 4]).
    unknown_threshold : float or None, default=None
        Cosine similarity between a sample and the predicted speaker's centroid
        below which :meth:`predict_open` answers ``unknown_label``. ``None``
        never answers unknown.
    unknown_label : str, default="unknown"

    Attributes
    ----------
    classes_ : np.ndarray [shape=(n_classes,)]
        Enrolled speakers.
    centroids_ : np.ndarray [shape=(n_classes, n_features)]
        Unit-length mean embedding of each speaker.
    svc_ : sklearn.svm.SVC or None
        The fitted SVM; ``None`` for a group of one speaker, which is then a
        verifier: cosine to the centroid, against ``unknown_threshold``.
    fitted_ : FittedGroup
        What was learned, as arrays; it makes every prediction.
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(1, .1, (5, 4)), rng.normal(-1, .1, (5, 4))]
    >>> GroupSVC().fit(X, ["ann"] * 5 + ["bob"] * 5).predict(X[:1]).tolist()
    ['ann']
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "unknown_threshold": [Interval(Real, -1, 1, closed="both"), None],
        "unknown_label": [str],
    }

    def __init__(
        self, C=ClassifierConfig.C, gamma=ClassifierConfig.gamma, unknown_threshold=None, unknown_label=UNKNOWN
    ):
        self.C = C
        self.gamma = gamma
        self.unknown_threshold = unknown_threshold
        self.unknown_label = unknown_label

    def fit(self, X, y, centroid_mask=None):
        """Fit the group's SVM on segment embeddings ``X`` of speakers ``y``.

        ``centroid_mask`` (boolean, one per row) picks the rows the speakers'
        centroids, and so the cosine scores, are computed from (default: all).
        Multi-condition enrollment trains the SVM on degraded copies of the
        enrollment speech as well, but keeps the centroids on the speech as
        recorded, so the unknown threshold means what it was chosen to mean.
        """
        self._validate_params()
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        Xn = _l2(X)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        mask = np.ones(len(y_idx), bool) if centroid_mask is None else np.asarray(centroid_mask, bool)
        if mask.shape != y_idx.shape or any(not np.any(mask[y_idx == k]) for k in range(len(self.classes_))):
            raise ValueError("centroid_mask must have one entry per row and keep at least one row per speaker")
        self.centroids_ = _l2(np.stack([Xn[(y_idx == k) & mask].mean(axis=0) for k in range(len(self.classes_))]))
        if len(self.classes_) == 1:
            self.svc_ = None
        else:
            self.svc_ = SVC(
                kernel="rbf", C=self.C, gamma=self.gamma, class_weight="balanced", decision_function_shape="ovr"
            ).fit(Xn, y_idx)
        self.fitted_ = FittedGroup.from_svc(
            self.svc_,
            classes=self.classes_,
            centroids=self.centroids_,
            unknown_threshold=self.unknown_threshold,
            unknown_label=self.unknown_label,
        )
        return self

    def cosine_scores(self, X):
        """Cosine similarity of each sample to each speaker's centroid, shape ``(n_samples, n_classes)``."""
        X = self._checked(X)
        return self.fitted_.cosine_scores(X)

    def decision_function(self, X):
        """SVM margins (one-vs-rest shape), or the cosine score for one speaker.

        Returns
        -------
        scores : np.ndarray [shape=(n_samples,) for 1-2 classes, else (n_samples, n_classes)]
            For two classes, positive favours ``classes_[1]`` (scikit-learn's convention).
        """
        X = self._checked(X)
        return self.fitted_.decision_function(X)

    def predict(self, X):
        """The enrolled speaker of each sample (never unknown; see :meth:`predict_open`)."""
        X = self._checked(X)
        return self.fitted_.predict(X)

    def predict_open(self, X, *, seconds=None, return_nearest: bool = False):
        """Speaker or ``unknown_label`` for each sample, with its cosine score (:meth:`FittedGroup.predict_open`)."""
        X = self._checked(X)
        return self.fitted_.predict_open(X, seconds=seconds, return_nearest=return_nearest)

    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
