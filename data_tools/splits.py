"""Speaker-disjoint train/val/test splits.

Contract
--------
Input: manifest rows (or speaker ids), a seed and the val/test fractions.
Output: every speaker in exactly one split. Speakers are ordered by a seeded
hash of their id, the first ones go to ``test``, the next to ``val`` and the
rest to ``train``; the result depends only on the set of speakers and the
seed, and adding a speaker moves few others. Speakers listed in an exclude
file (one ``reader_id`` per line, ``#`` comments allowed) are dropped.

Run ``python -m data_tools.splits MANIFEST`` to re-split a manifest in place.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

from fewshot.datasets import ManifestRow, read_manifest, write_manifest


def read_speaker_list(path) -> set[str]:
    """Speaker ids from a text file: one per line, blank lines and ``#`` comments ignored."""
    ids = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            ids.add(text)
    return ids


def _order_key(seed: int, speaker: str) -> str:
    return hashlib.sha256(f"{seed}:{speaker}".encode()).hexdigest()


def _count(n: int, fraction: float) -> int:
    if fraction <= 0 or n == 0:
        return 0
    return max(1, int(round(n * fraction)))


def assign_splits(
    speakers: Iterable[str],
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    exclude: Iterable[str] = (),
) -> dict[str, str]:
    """Map each speaker to ``train``, ``val`` or ``test``.

    Parameters
    ----------
    speakers : iterable of str
        Speaker ids (duplicates are fine).
    seed : int
        Seed of the ordering.
    val_fraction, test_fraction : float
        Shares of speakers for validation and test. A positive share gets at
        least one speaker as long as one speaker is left for training.
    exclude : iterable of str
        Speakers to leave out.

    Returns
    -------
    dict
        ``{speaker_id: split}``.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError("fractions must be >= 0 and leave room for training")
    dropped = set(exclude)
    ordered = sorted({s for s in speakers if s not in dropped}, key=lambda s: _order_key(seed, s))
    n = len(ordered)
    n_test = _count(n, test_fraction)
    n_val = _count(n, val_fraction)
    while n_test + n_val >= n and (n_test or n_val):
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    splits = {}
    for i, speaker in enumerate(ordered):
        splits[speaker] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return splits


def apply_splits(
    rows: Iterable[ManifestRow],
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    exclude: Iterable[str] = (),
) -> list[ManifestRow]:
    """Rows with ``split`` set by :func:`assign_splits`; excluded speakers are dropped."""
    rows = list(rows)
    splits = assign_splits((r.speaker_id for r in rows), seed, val_fraction, test_fraction, exclude)
    return [dataclasses.replace(r, split=splits[r.speaker_id]) for r in rows if r.speaker_id in splits]


def main(argv=None) -> int:
    """Re-split a manifest in place."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--exclude-speakers", type=Path, help="file with one reader_id per line")
    args = parser.parse_args(argv)
    exclude = read_speaker_list(args.exclude_speakers) if args.exclude_speakers else set()
    rows = apply_splits(read_manifest(args.manifest), args.seed, args.val_fraction, args.test_fraction, exclude)
    write_manifest(args.manifest, rows)
    counts = {s: len({r.speaker_id for r in rows if r.split == s}) for s in ("train", "val", "test")}
    print(f"{args.manifest}: {len(rows)} segments; speakers {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
