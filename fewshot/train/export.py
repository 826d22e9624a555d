"""``fewshot export``: write an extractor's LiteRT models beside its Keras model.

The float model is the Keras graph converted as it is (any batch size and
number of frames). The int8 model is quantised after training: weights and
activations in 8 bits, their ranges calibrated on log-mel inputs of training
speech, with float input and output. Each file is named by its checksum
(``extractor-<sha12>.tflite``, ``extractor-<sha12>-int8.tflite``) and recorded
under ``"litert"`` in ``meta.json`` (:mod:`fewshot.model.modeldir`) with its parity
with the Keras model (:mod:`fewshot.train.parity`), so the runtime can run it
without TensorFlow. The model id stays the Keras model's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np

from .._native import silenced
from ..model.modeldir import litert_name, write_model_meta
from ..persistence import atomic_write_bytes, file_digest

logger = logging.getLogger(__name__)

#: What an exported model must reach: float parity, and int8 accuracy and size.
FLOAT_MIN_COSINE = 0.9999
INT8_MAX_ACC_DROP = 0.005
INT8_MAX_BYTES = 1_500_000


#: Ops the int8 model keeps in float: the mean normalisation of the input and the
#: statistics pooling (means, variances, square roots) and unit normalisation.
#: In 8 bits they cost 0.5 points of dev accuracy; in float, nothing measurable,
#: at the same size and speed (the convolutions and dense layers are int8).
FLOAT_OPS = ("MEAN", "SQUARED_DIFFERENCE", "SQUARE", "SQRT", "RSQRT", "SUM", "MUL", "MINIMUM", "CONCATENATION")


def convert(keras_model, *, calibration: np.ndarray | None = None) -> bytes:
    """A ``.tflite`` flatbuffer of ``keras_model``: float, or int8 calibrated on ``calibration``.

    Parameters
    ----------
    keras_model : keras.Model
        Input ``(batch, frames, n_mels)``; dynamic dimensions stay dynamic.
    calibration : np.ndarray [shape=(n, frames, n_mels)], optional
        Log-mel inputs whose activation ranges set the int8 scales; the ops
        of :data:`FLOAT_OPS` stay float.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    with silenced(1, 2), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter's notes on statistics it does not need
        if calibration is None:
            return converter.convert()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        selective = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=lambda: ([x[None]] for x in calibration[:8]),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS)),
        )
        return selective.get_nondebug_quantized_model()


def write_litert(path: Path, data: bytes, precision: str) -> dict:
    """Write a converted model into the directory ``path`` under its content-addressed name.

    Returns
    -------
    dict
        ``file``, ``sha256`` and ``bytes``: the start of its ``meta.json`` entry.
    """
    digest = hashlib.sha256(data).hexdigest()
    name = litert_name(digest, precision)
    atomic_write_bytes(path / name, data)
    if file_digest(path / name) != digest:
        raise OSError(f"{path / name}: written bytes do not match; disk full or failing?")
    return {"file": name, "sha256": digest, "bytes": len(data)}


def export_tflite(model_dir, *, int8: bool = False, dev=None, train=None, speakers=None) -> dict:
    """Export the float LiteRT model of ``model_dir`` (and the int8 one) and record them in ``meta.json``.

    Parameters
    ----------
    model_dir : str or Path
        A model directory with a Keras model.
    int8 : bool
        Also the int8 model; needs ``train`` for its calibration.
    dev : str or Path, optional
        Held-out speaker-per-folder tree for the parity check; skipped when
        missing (the report says so).
    train : str or Path, optional
        Training speech to calibrate the int8 model on.
    speakers : list of ProtocolSpeaker, optional
        ``dev`` already prepared (:func:`fewshot.eval.protocol.prepare_protocol`, 15 s).

    Returns
    -------
    dict
        ``model_id``, ``dir``, ``dev`` and ``dev_speakers`` (how many it gave;
        0 when it is missing), and per exported precision its ``meta.json``
        entry (``file``, ``bytes``, ``parity``...).
    """
    from ..model.extractor import Extractor
    from . import parity

    path = Path(model_dir)
    keras_ex = Extractor.load(path, backend="keras")
    if int8 and not (train and Path(train).is_dir()):
        raise FileNotFoundError(f"the int8 model is calibrated on training speech: {train} not found (--train DIR)")
    if speakers is None and dev and Path(dev).is_dir():
        speakers = parity.dev_speakers(dev)
    reference = parity.embed(keras_ex, speakers) if speakers else None
    litert = {
        p: e for p, e in keras_ex.meta.get("litert", {}).items() if e.get("source_sha256") == keras_ex.meta["sha256"]
    }  # entries of an earlier Keras model go
    litert["float"] = _exported(path, keras_ex, convert(keras_ex.model), "float", speakers, reference, dev)
    if int8:
        calibration = parity.calibration_inputs(train, feature_config=keras_ex.feature_config)
        litert["int8"] = _exported(
            path, keras_ex, convert(keras_ex.model, calibration=calibration), "int8", speakers, reference, dev
        )
        litert["int8"]["calibration"] = {
            "inputs": len(calibration),
            "frames": int(calibration.shape[1]),
            "source": Path(train).name,
        }
    write_model_meta(path, {**keras_ex.meta, "litert": litert})
    model_id = Extractor.load(path, backend="litert").model_id  # the id now covers the LiteRT files too
    return {
        "model_id": model_id,
        "dir": str(path),
        "dev": str(dev),
        "dev_speakers": len(speakers or []),
        **{p: litert[p] for p in (("float", "int8") if int8 else ("float",))},
    }


def _exported(path: Path, keras_ex, data: bytes, precision: str, speakers, reference, dev) -> dict:
    """Write one converted model and return its ``meta.json`` entry, with its parity on ``speakers`` (if any)."""
    from ..model.backend import LiteRTBackend
    from ..model.extractor import Extractor
    from . import parity

    entry = {**write_litert(path, data, precision), "source_sha256": keras_ex.meta["sha256"]}
    lite_ex = Extractor(
        LiteRTBackend(path / entry["file"], precision=precision),
        feature_config=keras_ex.feature_config,
        extractor_config=keras_ex.extractor_config,
        meta=keras_ex.meta,
    )
    entry["parity"] = parity.compare(reference, parity.embed(lite_ex, speakers), dev) if speakers else {}
    return entry


def describe(report: dict) -> list[str]:
    """The lines ``fewshot export`` prints: files, sizes, parity, and whether each target is met."""
    lines = [f"model {report['model_id']} in {report['dir']}"]
    if not report["dev_speakers"]:
        lines.append(
            f"no dev speech in {report['dev']} (missing, or no speaker with 45 s of speech): "
            "the parity check on real speech is skipped (pass --dev DIR)"
        )
    for precision in ("float", "int8"):
        entry = report.get(precision)
        if entry is None:
            continue
        lines.append(f"wrote {entry['file']} ({precision}, {entry['bytes'] / 1e6:.2f} MB)")
        p = entry["parity"]
        if p:
            lines.append(
                f"  cosine to the Keras embeddings over {p['embeddings']} dev embeddings: "
                f"min {p['cosine_min']:.6f}, median {p['cosine_median']:.6f}"
            )
        if precision == "float" and p:
            lines.append(f"  target cosine >= {FLOAT_MIN_COSINE}: {_yes(p['cosine_min'] >= FLOAT_MIN_COSINE)}")
        if precision == "int8":
            lines += _int8_lines(entry)
    return lines


def _int8_lines(entry: dict) -> list[str]:
    p, cal = entry["parity"], entry["calibration"]
    out = [
        f"  calibrated on {cal['inputs']} log-mel inputs of {cal['frames']} frames from {cal['source']}",
        f"  size <= {INT8_MAX_BYTES / 1e6:.1f} MB: {_yes(entry['bytes'] <= INT8_MAX_BYTES)}",
    ]
    if p:
        drop = p["keras_acc_all"] - p["acc_all"]
        out.append(
            f"  dev all-{p['speakers']} accuracy (15 s): {100 * p['acc_all']:.1f}% against Keras "
            f"{100 * p['keras_acc_all']:.1f}%; within {100 * INT8_MAX_ACC_DROP:.1f} points: "
            f"{_yes(drop <= INT8_MAX_ACC_DROP + 1e-9)}"
        )
    return out


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def add_export_parser(sub) -> None:
    """The ``fewshot export`` subcommand."""
    p = sub.add_parser("export", help="write the LiteRT model(s) of a Keras extractor, with a parity check")
    p.add_argument("model", nargs="?", help="model directory (default: the model shipped with fewshot)")
    p.add_argument("--format", choices=["tflite"], default="tflite", help="tflite (LiteRT), the only format")
    p.add_argument(
        "--int8",
        action="store_true",
        help="also the int8 model, quantised after training and calibrated on --train speech",
    )
    p.add_argument("--dev", default="../shared/data/dev", help="held-out speakers for the parity check")
    p.add_argument("--train", default="../shared/data/train", help="training speech for the int8 calibration")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        metavar="DIR",
        help="export into DIR, a new copy of the model directory (the model itself is left as it is)",
    )
    where.add_argument(
        "--replace",
        action="store_true",
        help="write over the LiteRT models the model directory "
        "already has (without --out or --replace, a model that has them is refused)",
    )
    p.set_defaults(handler=run_export)


def export_target(model_dir, *, out=None, replace: bool = False) -> Path:
    """Where ``fewshot export`` writes: ``model_dir`` itself, or its copy ``out``.

    A model directory that already records LiteRT models of its Keras model
    (a shipped one) is refused unless ``replace``: an export is not
    byte-for-byte reproducible, so it would change files a release recorded.

    Raises
    ------
    FileExistsError
        For ``out`` that exists, or LiteRT models that are there and not to be replaced.
    """
    import shutil

    from ..persistence import read_json

    source = Path(model_dir)
    if out is not None:
        if Path(out).exists():
            raise FileExistsError(f"{out}: already exists (--out takes a new folder)")
        shutil.copytree(source, out)
        return Path(out)
    meta = read_json(source / "meta.json")  # checked in full when the model loads; here only what is exported
    litert = meta.get("litert") if isinstance(meta, dict) else None
    done = [
        e.get("file")
        for e in (litert.values() if isinstance(litert, dict) else [])
        if isinstance(e, dict) and e.get("source_sha256") == meta.get("sha256")
    ]
    if done and not replace:
        raise FileExistsError(
            f"{source}: already has LiteRT models exported from its Keras model "
            f"({', '.join(map(str, done))}); --out DIR exports into a copy of the model, "
            "--replace writes over them"
        )
    return source


def run_export(args) -> int:
    """``fewshot export``: export, then print :func:`describe`'s lines."""
    from ..commands import require
    from ..model.extractor import default_model_dir

    require("tensorflow")
    target = export_target(args.model or default_model_dir(), out=args.out, replace=args.replace)
    report = export_tflite(target, int8=args.int8, dev=args.dev, train=args.train)
    print("\n".join(describe(report)))
    return 0
