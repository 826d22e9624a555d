"""Make a trained model directory the shipped default, with its operating point.

The unknown threshold is the equal-error-rate point of verification on held-out
speakers (each speaker's 15 s enrollment centroid against every 5 s test piece,
cosine scores); it and the SVM settings are written into the model's
``meta.json`` as its :class:`~fewshot.config.ClassifierConfig`. The released
directory also gets the float LiteRT model the runtime runs without TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ClassifierConfig


def release(model_dir, *, dev, dest=None, C: float = ClassifierConfig.C, gamma: float = ClassifierConfig.gamma,
            multi_condition: bool = False) -> dict:
    """Copy ``model_dir`` to ``dest`` (default: the package's ``models/default``) with its threshold.

    Returns
    -------
    dict
        ``model_id``, ``dest``, ``threshold``, ``eer``, ``speakers``, ``n_target``, ``n_nontarget``,
        and ``litert``: the float LiteRT model written beside it (:func:`fewshot.train.export.export_tflite`).
    """
    from ..eval.protocol import (
        compute_eer,
        embed_protocol,
        prepare_protocol,
        verification_scores,
    )
    from ..extractor import Extractor, default_model_dir
    from .export import export_tflite

    ex = Extractor.load(model_dir, backend="keras")
    speakers = prepare_protocol(dev, enroll_seconds=(15,))
    target, nontarget = verification_scores(embed_protocol(ex, speakers), T=15.0)
    eer, threshold = compute_eer(target, nontarget)
    cc = ClassifierConfig(C=C, gamma=gamma, unknown_threshold=round(threshold, 4), multi_condition=multi_condition,
                          threshold_from=f"verification EER {eer:.4f} on {len(speakers)} speakers of "
                                         f"{Path(dev).name} (15 s enrollment, 5 s tests)")
    ex.meta["classifier"] = cc.to_dict()
    dest = Path(dest) if dest else default_model_dir()
    ex.save(dest)
    exported = export_tflite(dest, dev=dev, speakers=speakers)
    Extractor.load(dest)
    return {"model_id": ex.model_id, "dest": str(dest), "threshold": threshold, "eer": eer,
            "speakers": len(speakers), "n_target": len(target), "n_nontarget": len(nontarget),
            "litert": exported["float"]}
