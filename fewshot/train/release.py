"""Make a trained model directory the shipped default, with its operating point.

The unknown threshold is the equal-error-rate point of verification on held-out
speakers (each speaker's 15 s enrollment centroid against every 5 s test piece,
cosine scores); it and the SVM settings are written into the model's
``meta.json`` as its :class:`~fewshot.config.ClassifierConfig`. The released
directory also gets the float LiteRT model the runtime runs without TensorFlow,
and, given training speech, an aligner from each extractor shipped before it
(:func:`add_aligners`), so that groups enrolled with those keep working.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ClassifierConfig


def release(
    model_dir,
    *,
    dev,
    dest=None,
    C: float = ClassifierConfig.C,
    gamma: float = ClassifierConfig.gamma,
    multi_condition: bool = False,
    train=None,
    previous=(),
    cache_dir=None,
) -> dict:
    """Copy ``model_dir`` to ``dest`` (default: the package's ``models/default``) with its threshold.

    With ``train`` (training speech) and ``previous`` (the extractors shipped
    before, :class:`~fewshot.train.previous.PreviousModel`), aligners from each
    of them are added (:func:`add_aligners`).

    Returns
    -------
    dict
        ``model_id``, ``dest``, ``threshold``, ``eer``, ``speakers``, ``n_target``, ``n_nontarget``,
        ``litert``: the float LiteRT model written beside it (:func:`fewshot.train.export.export_tflite`),
        and ``aligners`` (:func:`add_aligners`; empty without ``train``).
    """
    from ..eval.protocol import (
        compute_eer,
        embed_protocol,
        prepare_protocol,
        verification_scores,
    )
    from ..model.extractor import Extractor, default_model_dir
    from .export import export_tflite

    ex = Extractor.load(model_dir, backend="keras")
    speakers = prepare_protocol(dev, enroll_seconds=(15,))
    target, nontarget = verification_scores(embed_protocol(ex, speakers), T=15.0)
    eer, threshold = compute_eer(target, nontarget)
    cc = ClassifierConfig(
        C=C,
        gamma=gamma,
        unknown_threshold=round(threshold, 4),
        multi_condition=multi_condition,
        threshold_from=f"verification EER {eer:.4f} on {len(speakers)} speakers of "
        f"{Path(dev).name} (15 s enrollment, 5 s tests)",
    )
    ex.meta["classifier"] = cc.to_dict()
    dest = Path(dest) if dest else default_model_dir()
    ex.save(dest)
    exported = export_tflite(dest, dev=dev, speakers=speakers)
    aligners = []
    if train is not None and previous:
        aligners = add_aligners(dest, previous, train=train, dev=dev, speakers=speakers, cache_dir=cache_dir)
    else:
        write_aligners(dest, {})
    model_id = Extractor.load(dest).model_id
    return {
        "model_id": model_id,
        "dest": str(dest),
        "threshold": threshold,
        "eer": eer,
        "speakers": len(speakers),
        "n_target": len(target),
        "n_nontarget": len(nontarget),
        "litert": exported["float"],
        "aligners": aligners,
    }


def add_aligners(model_dir, previous, *, train, dev, speakers=None, cache_dir=None, progress=None) -> list[dict]:
    """Ship, in the released ``model_dir``, an aligner from each extractor of ``previous``.

    For each one, every shape of :data:`fewshot.train.align.SHAPES` is fitted (the identity only
    between embeddings of one dimension)
    on pairs of embeddings of ``train``'s speech, measured on ``dev``'s
    speakers (enrollment by the old model, mapped; test pieces by the new one)
    and the shape :func:`~fewshot.train.align.choose_shape` picks is written
    beside the model and listed in its ``meta.json`` (:mod:`fewshot.model.align`),
    replacing any aligners it had.

    Returns
    -------
    list of dict
        Per previous model: ``from`` (its ids), ``commit``, ``entry`` (the ``meta.json`` entry),
        ``table`` (:func:`~fewshot.train.align.mapped_figures`, every row, with the shape shipped),
        ``candidates`` (the mapped row of each shape) and ``map_ms`` (mapping the enrollment
        segments of 10 speakers, median of 20 runs).
    """
    from ..eval.protocol import embed_protocol, prepare_protocol
    from ..model.align import write_aligner
    from ..model.extractor import Extractor
    from .align import ROWS, SHAPES, choose_shape, fit_aligner, mapped_figures, paired_embeddings

    model_dir = Path(model_dir)
    new = Extractor.load(model_dir)
    olds = [Extractor.load(p.path, backend="keras") for p in previous]
    pairs, labels = paired_embeddings([*olds, new], train, cache_dir=cache_dir, progress=progress)
    speakers = speakers if speakers is not None else prepare_protocol(dev, enroll_seconds=(15,))
    if not speakers:
        raise ValueError(f"{dev}: no speaker has the 45 s of speech the protocol needs, so aligners cannot be measured")
    new_dev = embed_protocol(new, speakers)
    cc = ClassifierConfig.of_model(new)
    entries, out = {}, []
    for p, old in zip(previous, olds):
        old_dev = embed_protocol(old, speakers)
        X, Y = pairs[old.model_id], pairs[new.model_id]
        fitted = {s: fit_aligner(X, Y, shape=s) for s in SHAPES if s != "identity" or X.shape[1] == Y.shape[1]}
        mapped = {
            s: mapped_figures(old_dev, new_dev, al, rows=ROWS[1:2], C=cc.C, gamma=cc.gamma)[ROWS[1]]
            for s, al in fitted.items()
        }
        candidates = {s: {k: round(v, 4) for k, v in f.items()} for s, f in mapped.items()}
        shape = choose_shape(candidates)
        table = mapped_figures(old_dev, new_dev, fitted[shape], C=cc.C, gamma=cc.gamma)
        group = np.concatenate(old_dev.enroll[15.0][:10])
        entries[p.model_id] = write_aligner(
            model_dir,
            fitted[shape],
            from_ids=p.ids,
            commit=p.commit,
            pairs=len(labels),
            speakers=len(np.unique(labels)),
            measured_on=f"{len(speakers)} speakers of {Path(dev).name}",
            candidates=candidates,
        )
        out.append(
            {
                "from": p.ids,
                "commit": p.commit,
                "entry": entries[p.model_id],
                "table": table,
                "candidates": candidates,
                "map_ms": _median_ms(fitted[shape].transform, group),
                "rows": len(group),
            }
        )
    write_aligners(model_dir, entries)
    return out


def _median_ms(f, *args, repeats: int = 20) -> float:
    """The median wall time of ``f(*args)``, in milliseconds."""
    import time

    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(*args)
        runs.append(time.perf_counter() - t)
    return 1000 * float(np.median(runs))


def write_aligners(model_dir, entries: dict) -> None:
    """List ``entries`` as the aligners of ``model_dir``'s ``meta.json``; aligner files it no longer names go."""
    from ..model.align import ALIGNERS
    from ..model.modeldir import META_FILE, write_model_meta
    from ..persistence import read_meta

    model_dir = Path(model_dir)
    meta = read_meta(model_dir / META_FILE, kind="extractor")
    if entries or ALIGNERS in meta:
        meta[ALIGNERS] = entries
        write_model_meta(model_dir, meta)
    named = {e["file"] for e in entries.values()}
    for old in model_dir.glob("aligner-*.npz"):
        if old.name not in named:
            old.unlink(missing_ok=True)
