"""The extractors fewshot shipped before, taken from the git history, for training aligners.

Every commit that changed the shipped model directory (``fewshot/models/default``
by default) holds one shipped extractor: its ``meta.json`` and the Keras file
it names. :func:`previous_models` writes each distinct one (by the SHA-256 of
its Keras file, checked against its metadata) into ``DEST/<model id>/``, a
model directory :meth:`fewshot.model.extractor.Extractor.load` reads with the Keras
backend. ``DEST`` belongs outside the package (``models/previous/`` is ignored
by git): old models are not shipped, only the aligners made from them.

A group enrolled with such a model carries one of these ids, all returned: the
id of its Keras file and configuration (:func:`fewshot.model.modeldir.derived_id`
without LiteRT files; it names the model's folder), or, for groups enrolled
before the configuration was part of the id, the first 16 hex digits of the
Keras file's SHA-256, or, for a model that ran from LiteRT files, the id with
their checksums.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..model.modeldir import META_FILE, MODEL_FILE, derived_id
from ..persistence import atomic_write_bytes

logger = logging.getLogger(__name__)

#: Where the shipped default model lives in the repository.
SHIPPED_PATH = "fewshot/models/default"


@dataclass(frozen=True)
class PreviousModel:
    """A shipped extractor of an earlier commit, written out as a model directory.

    ``ids`` are every id a group enrolled with it may carry: the id derived
    today, then the former weights-only id.
    """

    path: Path
    commit: str
    model_id: str
    ids: tuple[str, ...]
    sha256: str


def _git(repo: Path, *args: str) -> bytes:
    """The output of ``git -C repo ARGS...``; a failure is a ``ValueError`` with git's message."""
    try:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = (
            exc.stderr.decode(errors="replace").strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        )
        raise ValueError(
            f"{repo}: cannot read the shipped extractors from git ({reason}); give their model directories instead"
        ) from None


def shipped_commits(repo, *, shipped: str = SHIPPED_PATH) -> list[str]:
    """Commits that wrote the shipped model's ``meta.json`` (not those that removed it), oldest first."""
    out = _git(Path(repo), "log", "--format=%H", "--diff-filter=ACMRT", "--", f"{shipped}/{META_FILE}").decode().split()
    return out[::-1]


def model_ids(meta: dict) -> tuple[str, ...]:
    """Every id a group enrolled with the model of ``meta`` may carry (derived today, then former)."""
    keras_only = derived_id({**meta, "litert": {}})
    return tuple(dict.fromkeys([keras_only, str(meta["sha256"])[:16], derived_id(meta)]))


def previous_models(repo, dest, *, shipped: str = SHIPPED_PATH, exclude_sha256=()) -> list[PreviousModel]:
    """Write every extractor shipped in ``repo``'s history into ``dest/<model id>/``, oldest first.

    Parameters
    ----------
    repo : path
        A git working copy of fewshot (its history is read, never changed).
    dest : path
        Folder of the model directories; one already written is reused.
    shipped : str
        The shipped model directory, relative to the repository root.
    exclude_sha256 : iterable of str
        Keras files to leave out (the model being released).

    Returns
    -------
    list of PreviousModel
        One per distinct Keras file, in the order they were first shipped.

    Raises
    ------
    ValueError
        When ``repo``'s history cannot be read, or a commit's Keras file does not match the
        checksum its metadata records.
    """
    repo, dest = Path(repo), Path(dest)
    seen, out = set(exclude_sha256), []
    for commit in shipped_commits(repo, shipped=shipped):
        meta = json.loads(_git(repo, "show", f"{commit}:{shipped}/{META_FILE}"))
        if meta["sha256"] in seen:
            continue
        seen.add(meta["sha256"])
        ids = model_ids(meta)
        folder = dest / ids[0]
        name = str(meta.get("model_file", MODEL_FILE))
        if not (folder / name).is_file():
            blob = _git(repo, "show", f"{commit}:{shipped}/{name}")
            if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
                raise ValueError(f"{commit[:7]}:{shipped}/{name} does not match the checksum of its meta.json")
            folder.mkdir(parents=True, exist_ok=True)
            meta.pop("litert", None)
            atomic_write_bytes(folder / name, blob)
            atomic_write_bytes(folder / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
            logger.info("wrote the extractor shipped in %s to %s", commit[:7], folder)
        out.append(PreviousModel(folder, commit, ids[0], ids, meta["sha256"]))
    return out


def from_folder(path) -> PreviousModel:
    """An earlier release kept as a model directory (a release folder rather than the git history)."""
    from ..model.modeldir import read_model_meta

    meta = read_model_meta(Path(path))[0]
    ids = model_ids(meta)
    return PreviousModel(Path(path), "", ids[0], ids, meta["sha256"])
