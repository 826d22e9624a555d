import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fewshot.groups.fitted import FittedGroup
from fewshot.groups.svc import GroupSVC


@parametrize_with_checks([GroupSVC()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def clusters(rng, n_speakers=3, per=8, dim=16, spread=0.15):
    centres = rng.standard_normal((n_speakers, dim))
    X = np.concatenate([c + spread * rng.standard_normal((per, dim)) for c in centres])
    y = np.repeat([f"spk{i}" for i in range(n_speakers)], per)
    return X, y, centres


def test_separates_speakers_and_reports_margins(rng):
    X, y, centres = clusters(rng)
    clf = GroupSVC().fit(X, y)
    assert list(clf.classes_) == ["spk0", "spk1", "spk2"]
    assert (clf.predict(centres) == clf.classes_).all()
    assert clf.decision_function(centres).shape == (3, 3)


def test_unknown_below_threshold(rng):
    X, y, centres = clusters(rng)
    clf = GroupSVC(unknown_threshold=0.6).fit(X, y)
    stranger = rng.standard_normal((1, 16))
    stranger -= (stranger @ clf.centroids_.T) @ clf.centroids_  # orthogonal-ish to every centroid
    labels, scores = clf.predict_open(np.r_[centres, stranger])
    assert list(labels[:3]) == ["spk0", "spk1", "spk2"]
    assert labels[3] == "unknown" and scores[3] < 0.6 < scores[:3].min()


def test_group_of_one_is_a_verifier(rng):
    X, y, centres = clusters(rng, n_speakers=2)
    clf = GroupSVC(unknown_threshold=0.5).fit(X[y == "spk0"], y[y == "spk0"])
    labels, scores = clf.predict_open(centres)
    assert labels[0] == "spk0"
    assert clf.decision_function(centres).shape == (2,)
    assert scores[0] > scores[1]


def test_invalid_parameters_are_rejected(rng):
    X, y, _ = clusters(rng)
    with pytest.raises(ValueError, match="gamma"):
        GroupSVC(gamma=-1).fit(X, y)


@pytest.mark.parametrize("n_speakers", [2, 3, 6])
def test_numpy_predictions_equal_scikit_learns(rng, n_speakers):
    X, y, centres = clusters(rng, n_speakers=n_speakers, spread=0.8)
    clf = GroupSVC().fit(X, y)
    queries = np.r_[centres, rng.standard_normal((200, 16))]  # many near the boundaries
    Xn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    assert (clf.predict(queries) == clf.classes_[clf.svc_.predict(Xn)]).all()
    np.testing.assert_allclose(clf.decision_function(queries), clf.svc_.decision_function(Xn), atol=1e-9)


def test_fitted_group_round_trips_through_bytes_and_refuses_others(rng):
    X, y, centres = clusters(rng)
    fitted = GroupSVC(unknown_threshold=0.4).fit(X, y).fitted_
    again = FittedGroup.from_bytes(fitted.to_bytes())
    assert again.unknown_threshold == 0.4 and list(again.classes_) == list(fitted.classes_)
    np.testing.assert_array_equal(again.decision_function(centres), fitted.decision_function(centres))
    for junk in (b"", b"PK\x03\x04 not a zip", fitted.to_bytes()[:-20]):
        with pytest.raises(ValueError, match="not a fitted group"):
            FittedGroup.from_bytes(junk)
