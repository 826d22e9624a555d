"""Voiceprints of an earlier extractor, mapped into the space of the extractor in use.

A released model directory may hold one aligner per extractor shipped before
it, trained at release time on pairs of embeddings of the same training speech
under both models (:mod:`fewshot.train.align`). An aligner is the map

    x -> normalize(x A + a + relu(... relu(x W_1 + b_1) ...) W_k + b_k)

of unit-length embeddings: linear when it has no hidden layers (the identity
when two extractors share one space), a residual MLP otherwise. It runs in NumPy. ``meta.json`` lists the aligners under
``"aligners"``, keyed by the earlier model's id, each with every id a group
enrolled with that model may carry (``from_ids``), its file
(``aligner-<from id>-<sha12>.npz``) and the file's SHA-256, checked before
use as model files are (:mod:`fewshot.model.modeldir`).

A group enrolled with an extractor the model has an aligner from is mapped
once, by :func:`map_group`: its stored embeddings are replaced by their mapped
images under the current model's id, in one store transaction, and every member
is marked ``mapped_from`` the old id, so later identifications are ordinary ones
and ``fewshot groups show`` can say that re-enrolling (or ``fewshot groups
upgrade``, when the speech is kept) would do better.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.features import l2_normalize
from ..errors import CorruptModelError
from ..persistence import atomic_write_bytes, check_checksum

#: The key of ``meta.json`` that lists a model's aligners.
ALIGNERS = "aligners"


@dataclass(frozen=True)
class Aligner:
    """A map from one extractor's embeddings to another's.

    Parameters
    ----------
    A : np.ndarray [shape=(d_in, d_out)]
    a : np.ndarray [shape=(d_out,)]
        The linear part, ``x A + a``.
    hidden : tuple of (W, b)
        The residual MLP's layers (ReLU after all but the last), added to the
        linear part; empty for a linear aligner.
    """

    A: np.ndarray
    a: np.ndarray
    hidden: tuple = ()

    @property
    def shape(self) -> str:
        """``"identity"`` (the old space as it is), ``"linear"``, or ``"mlp<k>"`` (``k`` hidden layers)."""
        if self.hidden:
            return f"mlp{len(self.hidden) - 1}"
        square = self.A.shape[0] == self.A.shape[1]
        return "identity" if square and np.array_equal(self.A, np.eye(len(self.A))) and not self.a.any() else "linear"

    @classmethod
    def identity(cls, dim: int) -> Aligner:
        """The aligner that keeps embeddings as they are (for two extractors of one space)."""
        return cls(np.eye(dim, dtype=np.float32), np.zeros(dim, np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Map embeddings ``X`` [shape=(n, d_in)] to unit-length rows [shape=(n, d_out), dtype=float32]."""
        X = np.asarray(X, np.float32)
        if X.ndim != 2 or X.shape[1] != self.A.shape[0]:
            raise ValueError(f"expected embeddings of shape (n, {self.A.shape[0]}), given X.shape={X.shape}")
        out = X @ self.A + self.a
        h = X
        for k, (W, b) in enumerate(self.hidden):
            h = h @ W + b
            if k < len(self.hidden) - 1:
                h = np.maximum(h, 0.0)
        if self.hidden:
            out = out + h
        return l2_normalize(out).astype(np.float32)

    def to_bytes(self) -> bytes:
        """The aligner as an ``.npz`` file's bytes (float32 arrays, no pickles)."""
        arrays = {"A": self.A, "a": self.a}
        for k, (W, b) in enumerate(self.hidden):
            arrays[f"W{k}"], arrays[f"b{k}"] = W, b
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Aligner:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("W"))
            return cls(z["A"], z["a"], tuple((z[f"W{k}"], z[f"b{k}"]) for k in range(n)))


def write_aligner(model_dir, aligner: Aligner, *, from_ids, **details) -> dict:
    """Write ``aligner`` into ``model_dir`` as ``aligner-<from id>-<sha12>.npz``.

    Returns
    -------
    dict
        Its ``meta.json`` entry: ``from_ids``, ``file``, ``sha256``, ``bytes``, ``shape`` and ``details``.
    """
    data = aligner.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = f"aligner-{from_ids[0]}-{digest[:12]}.npz"
    atomic_write_bytes(Path(model_dir) / name, data)
    return {
        "from_ids": list(from_ids),
        "file": name,
        "sha256": digest,
        "bytes": len(data),
        "shape": aligner.shape,
        **details,
    }


def aligner_entry(meta: dict, stored_id: str) -> dict | None:
    """The entry of ``meta``'s aligners that maps embeddings of the extractor ``stored_id``, or ``None``."""
    entries = meta.get(ALIGNERS)
    if not isinstance(entries, dict):
        return None
    for entry in entries.values():
        if isinstance(entry, dict) and stored_id in entry.get("from_ids", ()) and {"file", "sha256"} <= set(entry):
            return entry
    return None


def read_aligner(model_dir, entry: dict) -> Aligner:
    """The checked aligner file ``entry`` names in ``model_dir``.

    Raises
    ------
    CorruptModelError
        A missing or damaged file, or one whose bytes do not match ``entry``'s SHA-256.
    """
    model_dir = Path(model_dir)
    file = model_dir / str(entry["file"])
    if file.parent != model_dir or not file.is_file():
        raise CorruptModelError(f"{file}: aligner file not found; copy the model directory again")
    check_checksum(file, entry["sha256"])
    try:
        return Aligner.from_bytes(file.read_bytes())
    except (ValueError, KeyError, OSError) as exc:
        raise CorruptModelError(f"{file}: not an aligner ({exc})") from exc


def find_aligner(extractor, stored_id: str) -> Aligner | None:
    """The aligner shipped with ``extractor`` from the extractor ``stored_id``, or ``None``."""
    entry = aligner_entry(extractor.meta, stored_id)
    path = getattr(extractor, "path", None)
    if entry is None or path is None:
        return None
    return read_aligner(path, entry)


def map_group(store, group: str, stored_id: str, extractor, aligner: Aligner) -> bool:
    """Replace ``group``'s embeddings of the extractor ``stored_id`` by their images under ``aligner``.

    One store transaction: the group moves to ``extractor``'s id and every
    member is recorded as ``mapped_from`` ``stored_id``. Degraded enrollment
    copies are mapped as well.

    Returns
    -------
    bool
        ``False`` when nothing was written because another process changed the group first.
    """
    expect = store.group_revision(group)
    if expect[0] != stored_id:
        return False
    X, y, is_copy = store.embeddings(group, extractor_id=stored_id, copies=True)
    M = aligner.transform(X)
    per = {n: (M[(y == n) & ~is_copy], M[(y == n) & is_copy]) for n in np.unique(y)}
    return store.rewrite_group(
        group, extractor_id=extractor.model_id, embeddings=per, mapped_from=stored_id, expect=expect
    )
