"""A model directory: ``meta.json``, the Keras model it names, and the LiteRT models exported from it.

``meta.json`` names every model file with its SHA-256; a file is used only when
its bytes match. The Keras file (``extractor-<sha12>.keras``, or
``extractor.keras`` for directories whose metadata names none) defines the
model. LiteRT files (``extractor-<sha12>.tflite``,
``extractor-<sha12>-int8.tflite``) are recorded under ``"litert"`` with the
checksum of the Keras file they were exported from, so a file left over from
another model is refused rather than used. The model's id is derived from the
checksums of every weight file it may run (Keras and LiteRT) and the
configuration, so no file can be swapped under the same id.

``meta.json`` is read as hostile: at most :data:`MAX_META_BYTES`, and every
block the runtime uses is checked for types, ranges and sizes by
:func:`check_meta` before anything is built from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..config import ClassifierConfig, ExtractorConfig, FeatureConfig
from ..errors import CorruptModelError, IncompatibleModelError
from ..persistence import check_checksum, read_meta, write_meta

#: The model file of directories whose ``meta.json`` names none (the first shipped models).
MODEL_FILE = "extractor.keras"
META_FILE = "meta.json"
#: The LiteRT models a directory may hold, by precision.
LITERT_PRECISIONS = ("float", "int8")
_ENVELOPE = ("format_version", "kind", "versions")
#: The largest ``meta.json`` read.
MAX_META_BYTES = 4 << 20


def model_identity(
    sha256: str, feature_config: FeatureConfig, extractor_config: ExtractorConfig, *, litert: dict | None = None
) -> str:
    """The id of a model: a hash of its weight files' SHA-256 and of every setting that shapes its embeddings.

    ``litert`` maps each LiteRT precision the directory has to its file's SHA-256
    (:func:`litert_checksums`); without any, the id is that of the Keras file alone.
    """
    fields = {
        "sha256": sha256,
        "feature_config": feature_config.to_dict(),
        "extractor_config": extractor_config.to_dict(),
    }
    if litert:
        fields["litert"] = dict(sorted(litert.items()))
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def litert_checksums(meta: dict) -> dict[str, str]:
    """``{precision: sha256}`` of the LiteRT files ``meta`` names."""
    return {p: str(e["sha256"]) for p in LITERT_PRECISIONS if (e := litert_entry(meta, p))}


def derived_id(meta: dict) -> str:
    """The id of the model ``meta`` describes (:func:`model_identity` of every weight file it names)."""
    return model_identity(
        meta["sha256"],
        FeatureConfig.from_dict(meta["feature_config"]),
        ExtractorConfig.from_dict(meta["extractor_config"]),
        litert=litert_checksums(meta),
    )


def former_ids(meta: dict) -> tuple[str, ...]:
    """Ids that groups enrolled with the same weights carried before: the id of the Keras file and configuration
    alone (before the LiteRT files were part of it), and the checksum of the Keras file alone (before that)."""
    keras_only = model_identity(
        meta["sha256"],
        FeatureConfig.from_dict(meta["feature_config"]),
        ExtractorConfig.from_dict(meta["extractor_config"]),
    )
    return tuple(i for i in dict.fromkeys([keras_only, str(meta["sha256"])[:16]]) if i != meta.get("model_id"))


def _hex(value, n: int = 64) -> bool:
    return isinstance(value, str) and len(value) == n and all(c in "0123456789abcdef" for c in value)


def _file_name(value) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 255
        and "/" not in value
        and "\\" not in value
        and value not in (".", "..")
    )


def check_meta(meta: dict) -> None:
    """Raise ``ValueError`` for the first block of a model's ``meta.json`` that is not what fewshot writes.

    Each block the runtime reads is checked here, one entry per block in
    ``checks``: the weight files' names and checksums, the feature, extractor
    and classifier settings (types and ranges, :mod:`fewshot.config`), the
    LiteRT entries and the open-set block (:func:`fewshot.groups.openset.check_block`).
    """
    from ..groups.openset import check_block

    def weights():
        if not _hex(meta["sha256"]) or not _file_name(meta.get("model_file", MODEL_FILE)):
            raise ValueError("sha256 must be 64 hex digits and model_file a file name of the directory")

    def litert():
        block = meta.get("litert", {})
        if not isinstance(block, dict) or not set(block) <= set(LITERT_PRECISIONS):
            raise ValueError(f"litert must map {' or '.join(LITERT_PRECISIONS)} to its file")
        for precision, entry in block.items():
            if not (
                isinstance(entry, dict)
                and _file_name(entry.get("file"))
                and _hex(entry.get("sha256"))
                and _hex(entry.get("source_sha256"))
            ):
                raise ValueError(f"litert {precision}: needs a file name, its sha256 and the Keras file's")

    checks = {
        "weights": weights,
        "feature_config": lambda: FeatureConfig.from_dict(meta["feature_config"]).validate(),
        "extractor_config": lambda: ExtractorConfig.from_dict(meta["extractor_config"]).validate(),
        "classifier": lambda: "classifier" not in meta or ClassifierConfig.from_dict(meta["classifier"]).validate(),
        "litert": litert,
        "open_set": lambda: "open_set" not in meta or check_block(meta["open_set"]),
    }
    for block in ("feature_config", "extractor_config", "classifier", "open_set"):
        if block in meta and not isinstance(meta[block], dict):
            raise ValueError(f"{block} must be an object, given {type(meta[block]).__name__}")
    for block, check in checks.items():
        try:
            check()
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"bad {block} ({exc})") from None


def read_model_meta(path: Path) -> tuple[dict, FeatureConfig, ExtractorConfig]:
    """``meta.json`` of the model directory ``path``, checked, with ``model_id`` derived.

    Raises
    ------
    IncompatibleModelError
        Missing metadata, another format, or a configuration this version does not know.
    CorruptModelError
        Damaged metadata, an id that does not match the model, or nonsense classifier settings.
    """
    meta = read_meta(
        path / META_FILE,
        kind="extractor",
        required=("sha256", "feature_config", "extractor_config"),
        max_bytes=MAX_META_BYTES,
    )
    try:
        check_meta(meta)
    except ValueError as exc:
        raise CorruptModelError(f"{path / META_FILE}: {exc}; copy or train the model again") from None
    feature_config = FeatureConfig.from_dict(meta["feature_config"])
    extractor_config = ExtractorConfig.from_dict(meta["extractor_config"])
    derived = derived_id(meta)
    if "model_file" in meta and meta.get("model_id") != derived:
        raise CorruptModelError(
            f"{path / META_FILE}: model_id {meta.get('model_id')!r} does not match the model "
            f"files and configuration ({derived}); the metadata was edited or damaged"
        )
    meta["model_id"] = derived
    return meta, feature_config, extractor_config


def _checked_file(path: Path, name, sha256: str) -> Path:
    """``path / name`` when it is a file of this directory whose bytes match ``sha256``."""
    file = path / str(name)
    if file.parent != path or not file.is_file():
        raise IncompatibleModelError(f"{file}: model file not found")
    check_checksum(file, sha256)
    return file


def keras_file(path: Path, meta: dict) -> Path:
    """The checked Keras model file of the directory."""
    return _checked_file(path, meta.get("model_file", MODEL_FILE), meta["sha256"])


def litert_entry(meta: dict, precision: str) -> dict | None:
    """What ``meta.json`` records about the LiteRT model of ``precision``, or ``None``."""
    entry = meta.get("litert", {}).get(precision) if isinstance(meta.get("litert"), dict) else None
    return entry if isinstance(entry, dict) and {"file", "sha256"} <= set(entry) else None


def litert_file(path: Path, meta: dict, precision: str) -> Path:
    """The checked LiteRT model file of ``precision`` (``"float"`` or ``"int8"``).

    Raises
    ------
    IncompatibleModelError
        The directory has no such model (the message says how to export one).
    CorruptModelError
        The file was exported from another Keras file, or its bytes do not match.
    """
    entry = litert_entry(meta, precision)
    if entry is None:
        flag = " --int8" if precision == "int8" else ""
        raise IncompatibleModelError(
            f"{path}: no {precision} LiteRT model; make one with: fewshot export {path} --format tflite{flag}"
        )
    if entry.get("source_sha256") != meta["sha256"]:
        raise CorruptModelError(
            f"{path / str(entry['file'])}: exported from another Keras model than "
            f"{meta.get('model_file', MODEL_FILE)}; export it again"
        )
    return _checked_file(path, entry["file"], entry["sha256"])


def litert_name(sha256: str, precision: str) -> str:
    """The content-addressed file name of a LiteRT model."""
    return f"extractor-{sha256[:12]}{'' if precision == 'float' else '-' + precision}.tflite"


def write_model_meta(path: Path, meta: dict) -> dict:
    """Replace ``meta.json`` of the directory with ``meta`` (library versions renewed), atomically.

    Its ``model_id`` is derived again (:func:`derived_id`), so adding a LiteRT file gives the directory a new
    id. Model files (and cohort files, :mod:`fewshot.groups.openset`) the new metadata no longer names are removed
    afterwards.
    """
    payload = {k: v for k, v in meta.items() if k not in _ENVELOPE}
    payload["model_id"] = derived_id(payload)
    written = write_meta(path / META_FILE, kind="extractor", payload=payload)
    named = {str(written.get("model_file", MODEL_FILE))}
    named |= {str(e["file"]) for p in LITERT_PRECISIONS if (e := litert_entry(written, p))}
    if isinstance(written.get("open_set"), dict):
        named.add(str(written["open_set"].get("cohort_file")))
    for pattern in ("extractor*.keras", "extractor*.tflite", "cohort*.npy"):
        for old in path.glob(pattern):
            if old.name not in named:
                old.unlink(missing_ok=True)
    return written
