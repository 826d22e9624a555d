"""What "unknown" means: normalised scores and a threshold for the group's size.

An outsider is matched against the best of a group's N members, so a fixed
cosine threshold accepts more outsiders as groups grow. A model calibrated for
open-set use (``scripts/calibrate_unknown.py``) ships instead:

- a **cohort**: the mean embeddings of a few hundred training speakers, against
  which scores are normalised by adaptive symmetric normalisation (AS-norm,
  Matejka et al. 2017): the cosine ``s`` of a sample ``x`` and a centroid ``c``
  becomes ``((s - m_x) / d_x + (s - m_c) / d_c) / 2``, where ``m`` and ``d``
  are the mean and standard deviation of the ``top_k`` highest cosines of ``x``
  (or ``c``) to the cohort;
- a **threshold model**: for each of a few false-accept rates, the normalised
  score above which that fraction of outsiders' speech is accepted, as a
  smooth function of the group's size N, the seconds of test speech s and the
  test speech's own cohort mean ``m_x`` (a quality measure: speech in a room or
  in noise resembles the cohort differently), ``b0 + b1 log N + b2 log s + b3
  m_x``, fitted by quantile regression on outsiders' speech against random
  groups of a calibration population, in several conditions
  (``fewshot/train/calibration.py``). Sizes and seconds outside those fitted on
  are taken at the nearest end; rates between are interpolated in log rate.
  Models calibrated before it carry a **threshold table** instead (one
  threshold per group size and rate, interpolated in log size).

The unknown decision of a group of N people at a target false-accept rate is
then ``normalised score < threshold(N, rate, s, m_x)``: an "unknown" that means
the same at every group size, length and condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CorruptModelError
from ..persistence import check_checksum

#: Seconds of test speech a threshold is quoted at when none are given (the protocol's test pieces).
REFERENCE_SECONDS = 5.0
#: The target false-accept rate of ``--strict``.
STRICT_FALSE_ACCEPT_RATE = 0.01
#: Where a threshold of normalised scores can lie (the shipped tables hold -0.6 to 3.1).
THRESHOLD_RANGE = (-5.0, 10.0)
#: The most group sizes, rates and self-check rows a table may have.
MAX_TABLE = 64


def check_block(block: dict) -> dict:
    """Raise ``ValueError`` unless ``block`` (``meta.json``'s ``open_set``) is a table fewshot could have
    written: names and checksum of the cohort file, ``top_k``, increasing group sizes and rates within
    bounds, finite thresholds in :data:`THRESHOLD_RANGE` that fall as the rate rises, and the self-check's
    ``(seconds, coherence)`` rows. The cohort file itself is checked when it is read (:meth:`Calibration.from_meta`)."""
    if not isinstance(block, dict):
        raise ValueError(f"open_set must be an object, given {type(block).__name__}")
    file, digest, top_k = block.get("cohort_file"), block.get("cohort_sha256"), block.get("top_k")
    if not (isinstance(file, str) and 0 < len(file) <= 255 and "/" not in file and file not in (".", "..")):
        raise ValueError(f"cohort_file must be a file name of the model directory, given {file!r}")
    if not (isinstance(digest, str) and len(digest) == 64):
        raise ValueError("cohort_sha256 must be a SHA-256")
    if not (isinstance(top_k, int) and not isinstance(top_k, bool) and 1 <= top_k <= 10000):
        raise ValueError(f"top_k must be a whole number from 1 to 10000, given {top_k!r}")
    sizes, rates = (
        _numbers(block.get("group_sizes"), "group_sizes"),
        _numbers(block.get("false_accept_rates"), "false_accept_rates"),
    )
    table = _numbers(block.get("thresholds"), "thresholds", ndim=2)
    if (
        len(sizes) < 1
        or len(rates) < 2
        or np.any(np.diff(sizes) <= 0)
        or np.any(np.diff(rates) <= 0)
        or sizes[0] < 1
        or sizes[-1] > 1e6
        or rates[0] <= 0
        or rates[-1] >= 1
    ):
        raise ValueError("group_sizes and false_accept_rates must increase, sizes from 1, rates between 0 and 1")
    if table.shape != (len(sizes), len(rates)):
        raise ValueError(f"thresholds are {table.shape}, need one row per group size and one column per rate")
    low, high = THRESHOLD_RANGE
    if np.any(table < low) or np.any(table > high) or np.any(np.diff(table, axis=1) > 0):
        raise ValueError(f"thresholds must lie from {low:g} to {high:g} and fall as the rate rises")
    if block.get("enrollment_check") is not None:
        check = _numbers(block["enrollment_check"], "enrollment_check", ndim=2)
        if (
            check.shape[1:] != (2,)
            or len(check) < 1
            or np.any(np.diff(check[:, 0]) <= 0)
            or np.any(check[:, 0] <= 0)
            or np.any(np.abs(check[:, 1]) > 2)
        ):
            raise ValueError("enrollment_check must be rows of (seconds, coherence from -2 to 2), seconds increasing")
    if not isinstance(block.get("source", ""), str):
        raise ValueError("source must be text")
    return block


def _numbers(value, name: str, *, ndim: int = 1) -> np.ndarray:
    """``value`` as a finite float array of ``ndim`` dimensions, at most :data:`MAX_TABLE` long in each."""
    if (
        not isinstance(value, list)
        or len(value) > MAX_TABLE
        or (ndim == 2 and not all(isinstance(r, list) and len(r) <= MAX_TABLE for r in value))
    ):
        raise ValueError(f"{name} must be a list of at most {MAX_TABLE} {'lists' if ndim == 2 else 'numbers'}")
    flat = [v for r in value for v in r] if ndim == 2 else value
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise ValueError(f"{name} must hold numbers only")
    try:
        out = np.asarray(value, np.float64)
    except ValueError:
        raise ValueError(f"{name} must be a rectangular table") from None
    if out.ndim != ndim or not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be a finite {ndim}-d table")
    return out


@dataclass(frozen=True, eq=False)
class Calibration:
    """A model's cohort and threshold table.

    Parameters
    ----------
    cohort : np.ndarray [shape=(n_cohort, dim)]
        Unit-length embeddings of cohort speakers.
    top_k : int
        Cohort scores averaged per side.
    group_sizes : np.ndarray [shape=(n_sizes,)]
        Increasing group sizes the table was measured at.
    false_accept_rates : np.ndarray [shape=(n_rates,)]
        Increasing target rates.
    thresholds : np.ndarray [shape=(n_sizes, n_rates)]
        Normalised-score thresholds.
    source : str
        Where the table was measured.
    enrollment_check : np.ndarray [shape=(n, 2)], optional
        ``(seconds of speech, coherence threshold)`` pairs of the enrollment self-check
        (:mod:`fewshot.groups.selfcheck`).
    """

    cohort: np.ndarray
    top_k: int
    group_sizes: np.ndarray
    false_accept_rates: np.ndarray
    thresholds: np.ndarray
    source: str = ""
    enrollment_check: np.ndarray | None = None
    model: ThresholdModel | None = None

    def cohort_stats(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each unit row's ``top_k`` cosines to the cohort."""
        S = np.asarray(E, np.float64) @ self.cohort.T
        k = min(self.top_k, S.shape[1])
        top = np.partition(S, S.shape[1] - k, axis=1)[:, -k:]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)

    def normalize(self, scores, X, C, *, centroid_stats=None) -> np.ndarray:
        """AS-norm of the cosines ``scores`` between unit rows ``X`` and the centroids ``C`` they were scored against."""
        mx, dx = self.cohort_stats(X)
        mc, dc = centroid_stats if centroid_stats is not None else self.cohort_stats(C)
        s = np.asarray(scores, np.float64)
        return 0.5 * ((s - mx) / dx + (s - mc) / dc)

    def threshold(
        self,
        n_members: int,
        false_accept_rate: float,
        *,
        seconds: float = REFERENCE_SECONDS,
        quality: float | None = None,
    ) -> float:
        """The normalised-score threshold for a group of ``n_members`` at ``false_accept_rate``, for ``seconds``
        of test speech of cohort mean ``quality`` (``None``: clean speech's typical one).

        Raises
        ------
        ValueError
            For a rate outside the calibrated range.
        """
        q = None if quality is None else np.array([quality])
        return float(self.thresholds_for(n_members, false_accept_rate, np.array([seconds]), q)[0])

    def thresholds_for(self, n_members: int, false_accept_rate: float, seconds, quality=None) -> np.ndarray:
        """:meth:`threshold` for arrays of ``seconds`` and ``quality`` (cohort means of the test speech)."""
        rates = self.model.false_accept_rates if self.model is not None else self.false_accept_rates
        if not rates[0] <= false_accept_rate <= rates[-1]:
            raise ValueError(
                f"false-accept rate {false_accept_rate:g} is outside this model's calibrated range "
                f"{rates[0]:g}-{rates[-1]:g}"
            )
        seconds = np.asarray(seconds, np.float64)
        if self.model is not None:
            return self.model.thresholds(n_members, false_accept_rate, seconds, quality)
        per_size = np.array([np.interp(np.log(false_accept_rate), np.log(rates), row) for row in self.thresholds])
        return np.full(seconds.shape, np.interp(np.log(max(n_members, 1)), np.log(self.group_sizes), per_size))

    def decision_thresholds(self, n_members: int, false_accept_rate: float, X, seconds) -> np.ndarray:
        """The threshold for each unit row of ``X`` (test speech of ``seconds``), its quality measured here."""
        quality = self.cohort_stats(X)[0] if self.model is not None and self.model.uses_quality else None
        return self.thresholds_for(n_members, false_accept_rate, np.broadcast_to(seconds, (len(X),)), quality)

    def to_meta(self, cohort_file: str, cohort_sha256: str) -> dict:
        """The ``open_set`` block of ``meta.json``."""
        return {
            "cohort_file": cohort_file,
            "cohort_sha256": cohort_sha256,
            "top_k": int(self.top_k),
            "group_sizes": [int(n) for n in self.group_sizes],
            "false_accept_rates": [float(r) for r in self.false_accept_rates],
            "thresholds": np.round(self.thresholds, 4).tolist(),
            "source": self.source,
            **(
                {}
                if self.enrollment_check is None
                else {"enrollment_check": np.round(self.enrollment_check, 4).tolist()}
            ),
            **({} if self.model is None else {"threshold_model": self.model.to_meta()}),
        }

    @classmethod
    def from_meta(cls, model_dir, block: dict) -> Calibration:
        """The calibration a model directory's ``meta.json`` block ``open_set`` describes, checked.

        Raises
        ------
        CorruptModelError
            A cohort file that is missing, altered or not a matrix, or a table of the wrong shape.
        """
        model_dir = Path(model_dir)
        try:
            check_block(block)
            file = model_dir / str(block["cohort_file"])
            if file.parent != model_dir or not file.is_file():
                raise CorruptModelError(f"{file}: the model's cohort file is missing")
            check_checksum(file, str(block["cohort_sha256"]))
            cohort = np.load(file, allow_pickle=False, mmap_mode="r")
            if cohort.dtype.kind != "f" or cohort.ndim != 2 or cohort.shape[0] > 100_000 or cohort.shape[1] > 4096:
                raise ValueError(f"the cohort is a {cohort.dtype} array of shape {cohort.shape}")
            cohort = np.array(cohort)
            sizes = np.asarray(block["group_sizes"], np.float64)
            rates = np.asarray(block["false_accept_rates"], np.float64)
            table = np.asarray(block["thresholds"], np.float64)
            top_k = int(block["top_k"])
            check = block.get("enrollment_check")
            check = None if check is None else np.asarray(check, np.float64)
            model = None if block.get("threshold_model") is None else ThresholdModel.from_meta(block["threshold_model"])
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise CorruptModelError(f"{model_dir / 'meta.json'}: bad open_set block ({exc})") from None
        if (
            cohort.ndim != 2
            or not np.all(np.isfinite(cohort))
            or table.shape != (len(sizes), len(rates))
            or len(sizes) < 1
            or len(rates) < 2
            or np.any(np.diff(sizes) <= 0)
            or np.any(np.diff(rates) <= 0)
            or sizes[0] < 1
            or rates[0] <= 0
            or rates[-1] >= 1
            or top_k < 1
            or not np.all(np.isfinite(table))
        ):
            raise CorruptModelError(f"{model_dir / 'meta.json'}: inconsistent open_set block")
        if check is not None and (
            check.ndim != 2
            or check.shape[1] != 2
            or len(check) < 1
            or not np.all(np.isfinite(check))
            or np.any(np.diff(check[:, 0]) <= 0)
        ):
            raise CorruptModelError(f"{model_dir / 'meta.json'}: bad enrollment_check table")
        return cls(cohort.astype(np.float64), top_k, sizes, rates, table, str(block.get("source", "")), check, model)


#: The terms a threshold model may use besides its intercept.
MODEL_TERMS = ("log_group_size", "log_seconds", "cohort_mean")


@dataclass(frozen=True, eq=False)
class ThresholdModel:
    """Thresholds as a smooth function of group size, seconds of test speech and its quality.

    Parameters
    ----------
    terms : tuple of str
        Of :data:`MODEL_TERMS`, after the intercept.
    false_accept_rates : np.ndarray [shape=(n_rates,)]
        Increasing.
    coefficients : np.ndarray [shape=(n_rates, 1 + len(terms))]
        Intercept first.
    group_sizes, seconds : tuple of float
        The ranges fitted on (values outside are clamped to them).
    reference_quality : float
        The cohort mean of clean speech at its median, used when none is measured.
    """

    terms: tuple
    false_accept_rates: np.ndarray
    coefficients: np.ndarray
    group_sizes: tuple = (1.0, 20.0)
    seconds: tuple = (2.0, 5.0)
    reference_quality: float = 0.0

    @property
    def uses_quality(self) -> bool:
        return "cohort_mean" in self.terms

    def design(self, n_members, seconds, quality=None) -> np.ndarray:
        """The model's inputs: one row per test, intercept first."""
        seconds = np.asarray(seconds, np.float64)
        n = np.clip(np.broadcast_to(np.asarray(n_members, np.float64), seconds.shape), *self.group_sizes)
        q = np.full(seconds.shape, self.reference_quality) if quality is None else np.asarray(quality, np.float64)
        cols = {"log_group_size": np.log(n), "log_seconds": np.log(np.clip(seconds, *self.seconds)), "cohort_mean": q}
        return np.stack([np.ones(seconds.shape)] + [cols[t] for t in self.terms], axis=-1)

    def thresholds(self, n_members, false_accept_rate: float, seconds, quality=None) -> np.ndarray:
        """The threshold at ``false_accept_rate`` (interpolated in log rate) for each test."""
        per_rate = self.design(n_members, seconds, quality) @ self.coefficients.T
        lr = np.log(self.false_accept_rates)
        rows = np.minimum.accumulate(per_rate.reshape(-1, len(lr)), axis=1)  # a higher rate never has a higher one
        return np.array([np.interp(np.log(false_accept_rate), lr, row) for row in rows]).reshape(np.shape(seconds))

    def to_meta(self) -> dict:
        return {
            "terms": list(self.terms),
            "false_accept_rates": [float(r) for r in self.false_accept_rates],
            "coefficients": np.round(self.coefficients, 5).tolist(),
            "group_sizes": [float(v) for v in self.group_sizes],
            "seconds": [float(v) for v in self.seconds],
            "reference_quality": round(float(self.reference_quality), 5),
        }

    @classmethod
    def from_meta(cls, block: dict) -> ThresholdModel:
        """The model a ``threshold_model`` block describes; ``ValueError`` for anything inconsistent."""
        terms = tuple(str(t) for t in block["terms"])
        rates = np.asarray(block["false_accept_rates"], np.float64)
        coef = np.asarray(block["coefficients"], np.float64)
        sizes = tuple(float(v) for v in block["group_sizes"])
        seconds = tuple(float(v) for v in block["seconds"])
        ref = float(block["reference_quality"])
        if (
            any(t not in MODEL_TERMS for t in terms)
            or len(set(terms)) != len(terms)
            or rates.ndim != 1
            or len(rates) < 2
            or np.any(np.diff(rates) <= 0)
            or rates[0] <= 0
            or rates[-1] >= 1
            or coef.shape != (len(rates), 1 + len(terms))
            or not np.all(np.isfinite(coef))
            or len(sizes) != 2
            or not 1 <= sizes[0] <= sizes[1]
            or len(seconds) != 2
            or not 0 < seconds[0] <= seconds[1]
            or not np.isfinite(ref)
        ):
            raise ValueError("inconsistent threshold_model")
        return cls(terms, rates, coef, sizes, seconds, ref)


def load_calibration(extractor) -> Calibration | None:
    """The calibration shipped with ``extractor``'s model directory, or ``None`` when it has none."""
    block = extractor.meta.get("open_set")
    if not block or getattr(extractor, "path", None) is None:
        return None
    return Calibration.from_meta(extractor.path, block)


def add_false_accept_arguments(parser) -> None:
    """``--strict`` and ``--false-accept-rate R`` (one of them) on a command's ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--false-accept-rate",
        type=_rate,
        metavar="R",
        help="fraction of outsiders' speech that may be named as a member, at every group size "
        "(default: the model's, see `fewshot groups show`)",
    )
    group.add_argument(
        "--strict",
        action="store_true",
        help=f"fewer outsiders taken for members: --false-accept-rate {STRICT_FALSE_ACCEPT_RATE:g}",
    )


def chosen_false_accept_rate(args) -> float | None:
    """The rate ``--strict`` or ``--false-accept-rate`` asked for, or ``None`` for the model's."""
    if getattr(args, "strict", False):
        return STRICT_FALSE_ACCEPT_RATE
    return getattr(args, "false_accept_rate", None)


def _rate(text: str) -> float:
    import argparse

    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0 < rate < 1:
        raise argparse.ArgumentTypeError(
            f"a false-accept rate is a fraction between 0 and 1 (e.g. 0.02), given {text!r}"
        )
    return rate
