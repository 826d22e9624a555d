"""A model directory: ``meta.json``, the Keras model it names, and the LiteRT models exported from it.

``meta.json`` names every model file with its SHA-256; a file is used only when
its bytes match. The Keras file (``extractor-<sha12>.keras``, or
``extractor.keras`` for directories whose metadata names none) defines the
model: its checksum and the configuration make the model's id. LiteRT files
(``extractor-<sha12>.tflite``, ``extractor-<sha12>-int8.tflite``) are recorded
under ``"litert"`` with the checksum of the Keras file they were exported from,
so a file left over from another model is refused rather than used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import ClassifierConfig, ExtractorConfig, FeatureConfig
from .errors import CorruptModelError, IncompatibleModelError
from .persistence import check_checksum, read_meta, write_meta

#: The model file of directories whose ``meta.json`` names none (the first shipped models).
MODEL_FILE = "extractor.keras"
META_FILE = "meta.json"
#: The LiteRT models a directory may hold, by precision.
LITERT_PRECISIONS = ("float", "int8")
_ENVELOPE = ("format_version", "kind", "versions")


def model_identity(sha256: str, feature_config: FeatureConfig, extractor_config: ExtractorConfig) -> str:
    """The id of a model: a hash of its Keras file's SHA-256 and of every setting that shapes its embeddings."""
    blob = json.dumps({"sha256": sha256, "feature_config": feature_config.to_dict(),
                       "extractor_config": extractor_config.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_model_meta(path: Path) -> tuple[dict, FeatureConfig, ExtractorConfig]:
    """``meta.json`` of the model directory ``path``, checked, with ``model_id`` derived.

    Raises
    ------
    IncompatibleModelError
        Missing metadata, another format, or a configuration this version does not know.
    CorruptModelError
        Damaged metadata, an id that does not match the model, or nonsense classifier settings.
    """
    meta = read_meta(path / META_FILE, kind="extractor", required=("sha256", "feature_config", "extractor_config"))
    feature_config = FeatureConfig.from_dict(meta["feature_config"])
    extractor_config = ExtractorConfig.from_dict(meta["extractor_config"])
    derived = model_identity(meta["sha256"], feature_config, extractor_config)
    if "model_file" in meta and meta.get("model_id") != derived:
        raise CorruptModelError(f"{path / META_FILE}: model_id {meta.get('model_id')!r} does not match the model "
                                f"file and configuration ({derived}); the metadata was edited or damaged")
    meta["model_id"] = derived
    if "classifier" in meta:
        try:
            ClassifierConfig.from_dict(meta["classifier"]).validate()
        except (TypeError, ValueError) as exc:
            raise CorruptModelError(f"{path / META_FILE}: bad classifier settings ({exc})") from exc
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
        raise IncompatibleModelError(f"{path}: no {precision} LiteRT model; make one with: "
                                     f"fewshot export {path} --format tflite{flag}")
    if entry.get("source_sha256") != meta["sha256"]:
        raise CorruptModelError(f"{path / str(entry['file'])}: exported from another Keras model than "
                                f"{meta.get('model_file', MODEL_FILE)}; export it again")
    return _checked_file(path, entry["file"], entry["sha256"])


def litert_name(sha256: str, precision: str) -> str:
    """The content-addressed file name of a LiteRT model."""
    return f"extractor-{sha256[:12]}{'' if precision == 'float' else '-' + precision}.tflite"


def write_model_meta(path: Path, meta: dict) -> dict:
    """Replace ``meta.json`` of the directory with ``meta`` (library versions renewed), atomically.

    Model files (and cohort files, :mod:`fewshot.openset`) the new metadata no longer names are removed afterwards.
    """
    payload = {k: v for k, v in meta.items() if k not in _ENVELOPE}
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
