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
- a **threshold table**: for each group size and each false-accept rate, the
  normalised score above which that fraction of outsiders' pieces is accepted
  (measured on held-out speakers). Sizes between those measured are
  interpolated in log size; beyond them the nearest is used.

The unknown decision of a group of N people at a target false-accept rate is
then ``normalised score < threshold(N, rate)``: an "unknown" that means the
same at every group size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorruptModelError
from .persistence import check_checksum

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
    sizes, rates = _numbers(block.get("group_sizes"), "group_sizes"), _numbers(block.get("false_accept_rates"),
                                                                                "false_accept_rates")
    table = _numbers(block.get("thresholds"), "thresholds", ndim=2)
    if (len(sizes) < 1 or len(rates) < 2 or np.any(np.diff(sizes) <= 0) or np.any(np.diff(rates) <= 0)
            or sizes[0] < 1 or sizes[-1] > 1e6 or rates[0] <= 0 or rates[-1] >= 1):
        raise ValueError("group_sizes and false_accept_rates must increase, sizes from 1, rates between 0 and 1")
    if table.shape != (len(sizes), len(rates)):
        raise ValueError(f"thresholds are {table.shape}, need one row per group size and one column per rate")
    low, high = THRESHOLD_RANGE
    if np.any(table < low) or np.any(table > high) or np.any(np.diff(table, axis=1) > 0):
        raise ValueError(f"thresholds must lie from {low:g} to {high:g} and fall as the rate rises")
    if block.get("enrollment_check") is not None:
        check = _numbers(block["enrollment_check"], "enrollment_check", ndim=2)
        if (check.shape[1:] != (2,) or len(check) < 1 or np.any(np.diff(check[:, 0]) <= 0)
                or np.any(check[:, 0] <= 0) or np.any(np.abs(check[:, 1]) > 2)):
            raise ValueError("enrollment_check must be rows of (seconds, coherence from -2 to 2), seconds increasing")
    if not isinstance(block.get("source", ""), str):
        raise ValueError("source must be text")
    return block


def _numbers(value, name: str, *, ndim: int = 1) -> np.ndarray:
    """``value`` as a finite float array of ``ndim`` dimensions, at most :data:`MAX_TABLE` long in each."""
    if not isinstance(value, list) or len(value) > MAX_TABLE or (
            ndim == 2 and not all(isinstance(r, list) and len(r) <= MAX_TABLE for r in value)):
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
        (:mod:`fewshot.selfcheck`).
    """

    cohort: np.ndarray
    top_k: int
    group_sizes: np.ndarray
    false_accept_rates: np.ndarray
    thresholds: np.ndarray
    source: str = ""
    enrollment_check: np.ndarray | None = None

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

    def threshold(self, n_members: int, false_accept_rate: float) -> float:
        """The normalised-score threshold for a group of ``n_members`` at ``false_accept_rate``.

        Raises
        ------
        ValueError
            For a rate outside the table's range.
        """
        rates = self.false_accept_rates
        if not rates[0] <= false_accept_rate <= rates[-1]:
            raise ValueError(f"false-accept rate {false_accept_rate:g} is outside this model's calibrated range "
                             f"{rates[0]:g}-{rates[-1]:g}")
        per_size = np.array([np.interp(np.log(false_accept_rate), np.log(rates), row) for row in self.thresholds])
        return float(np.interp(np.log(max(n_members, 1)), np.log(self.group_sizes), per_size))

    def to_meta(self, cohort_file: str, cohort_sha256: str) -> dict:
        """The ``open_set`` block of ``meta.json``."""
        return {"cohort_file": cohort_file, "cohort_sha256": cohort_sha256, "top_k": int(self.top_k),
                "group_sizes": [int(n) for n in self.group_sizes],
                "false_accept_rates": [float(r) for r in self.false_accept_rates],
                "thresholds": np.round(self.thresholds, 4).tolist(), "source": self.source,
                **({} if self.enrollment_check is None else
                   {"enrollment_check": np.round(self.enrollment_check, 4).tolist()})}

    @classmethod
    def from_meta(cls, model_dir, block: dict) -> "Calibration":
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
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise CorruptModelError(f"{model_dir / 'meta.json'}: bad open_set block ({exc})") from None
        if (cohort.ndim != 2 or not np.all(np.isfinite(cohort)) or table.shape != (len(sizes), len(rates))
                or len(sizes) < 1 or len(rates) < 2 or np.any(np.diff(sizes) <= 0) or np.any(np.diff(rates) <= 0)
                or sizes[0] < 1 or rates[0] <= 0 or rates[-1] >= 1 or top_k < 1 or not np.all(np.isfinite(table))):
            raise CorruptModelError(f"{model_dir / 'meta.json'}: inconsistent open_set block")
        if check is not None and (check.ndim != 2 or check.shape[1] != 2 or len(check) < 1
                                  or not np.all(np.isfinite(check)) or np.any(np.diff(check[:, 0]) <= 0)):
            raise CorruptModelError(f"{model_dir / 'meta.json'}: bad enrollment_check table")
        return cls(cohort.astype(np.float64), top_k, sizes, rates, table, str(block.get("source", "")), check)


def load_calibration(extractor) -> Calibration | None:
    """The calibration shipped with ``extractor``'s model directory, or ``None`` when it has none."""
    block = extractor.meta.get("open_set")
    if not block or getattr(extractor, "path", None) is None:
        return None
    return Calibration.from_meta(extractor.path, block)


def add_false_accept_arguments(parser) -> None:
    """``--strict`` and ``--false-accept-rate R`` (one of them) on a command's ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--false-accept-rate", type=_rate, metavar="R",
                       help="fraction of outsiders' speech that may be named as a member, at every group size "
                            "(default: the model's, see `fewshot groups show`)")
    group.add_argument("--strict", action="store_true",
                       help=f"fewer outsiders taken for members: --false-accept-rate {STRICT_FALSE_ACCEPT_RATE:g}")


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
        raise argparse.ArgumentTypeError(f"a false-accept rate is a fraction between 0 and 1 (e.g. 0.02), given {text!r}")
    return rate
