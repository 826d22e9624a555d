"""Versioned metadata written next to every artifact, and checked on load."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import CorruptModelError, IncompatibleModelError

FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """Versions of fewshot and the libraries whose files it writes (LiteRT's when installed)."""
    from importlib import metadata

    import keras
    import sklearn
    import tensorflow as tf

    from . import __version__

    out = {
        "fewshot": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "sklearn": sklearn.__version__,
    }
    try:
        out["ai_edge_litert"] = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        pass
    return out


def file_digest(path, *, algorithm: str = "sha256", chunk_bytes: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, read in blocks (``algorithm``: any of :mod:`hashlib`'s)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(source) -> str:
    """SHA-256 of a file, or of an array's bytes."""
    import numpy as np

    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()
    return file_digest(source)


def atomic_write_bytes(path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str, *, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path, value: Any) -> None:
    """Write ``value`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def read_json(path) -> Any | None:
    """A JSON file's value, or ``None`` when it is missing or unreadable (a cache miss)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def atomic_save_npz(path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically (its folder made if need be)."""
    import io

    import numpy as np

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_npz_cache(path, *, keys=()) -> dict | None:
    """The arrays of an ``.npz`` cache file, or ``None`` when it is missing, unreadable, holds objects or lacks
    one of ``keys`` (a cache miss: the caller computes it again and writes it over)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return arrays if all(k in arrays for k in keys) else None


def read_npz_bytes(data: bytes, *, max_bytes: int) -> dict:
    """The arrays of an uncompressed ``.npz`` in ``data`` (from a file or a store: hostile until checked).

    ``data`` is at most ``max_bytes``, each member is a stored (not compressed)
    ``.npy`` without objects whose header claims no more than the member holds,
    so nothing is allocated beyond ``data``'s size.

    Raises
    ------
    ValueError, zipfile.BadZipFile
        For anything else.
    """
    import io
    import zipfile

    import numpy as np

    if len(data) > max_bytes:
        raise ValueError(f"{len(data)} bytes, more than {max_bytes}")
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        if len(infos) > 16:
            raise ValueError(f"{len(infos)} members")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename!r} is not a stored .npy")
            with z.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"member {info.filename!r}: .npy version {version}")
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(f)
                if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                    raise ValueError(f"member {info.filename!r} claims more than it holds")
            with z.open(info) as f:
                out[info.filename[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
    return out


def write_meta(path, *, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Write ``meta.json``: format version, library versions and ``payload``."""
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "versions": versions(), **payload}
    atomic_write_bytes(path, json.dumps(meta, indent=2, sort_keys=True).encode())
    return meta


def read_meta(path, *, kind: str, required=(), max_bytes: int = 4 << 20) -> dict[str, Any]:
    """Read and check a ``meta.json`` written by :func:`write_meta`.

    Raises
    ------
    IncompatibleModelError
        Missing file, another kind of artifact, or a format this version cannot read.
    CorruptModelError
        The file is not valid JSON, or larger than ``max_bytes``.
    """
    path = Path(path)
    if not path.is_file():
        raise IncompatibleModelError(f"{path}: metadata file not found; not a fewshot {kind} directory")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise CorruptModelError(f"{path}: metadata is over {max_bytes} bytes; not a fewshot {kind} directory")
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptModelError(f"{path}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise CorruptModelError(f"{path}: metadata is a JSON {type(meta).__name__}, not an object")
    if meta.get("kind") != kind:
        raise IncompatibleModelError(f"{path}: holds a {meta.get('kind')!r}, expected a {kind!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise IncompatibleModelError(
            f"{path}: format_version {meta.get('format_version')!r}, this fewshot reads "
            f"{FORMAT_VERSION}; upgrade fewshot or retrain the model"
        )
    missing = [k for k in required if not isinstance(meta.get(k), (dict, str))]
    if missing:
        raise CorruptModelError(f"{path}: metadata lacks {', '.join(missing)}; copy or train the model again")
    saved = meta.get("versions", {})
    if not isinstance(saved, dict):
        raise CorruptModelError(f"{path}: metadata field 'versions' is not an object")
    keras_major = str(saved.get("keras", "3")).split(".")[0]
    if keras_major != "3":
        raise IncompatibleModelError(f"{path}: written by Keras {saved.get('keras')}, need Keras 3")
    return meta


def check_checksum(path, expected: str) -> None:
    """Raise :class:`CorruptModelError` when the file's SHA-256 is not ``expected``."""
    actual = file_digest(path)
    if actual != expected:
        raise CorruptModelError(
            f"{path}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...); "
            "the file is damaged or was replaced: copy or train it again"
        )
