"""How close an exported model is to its Keras model: on dev speech, and on the protocol's accuracy.

Also the int8 calibration set: log-mel inputs of training speech.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import FeatureConfig


def dev_speakers(dev) -> list:
    """The protocol's dev speakers with 15 s of enrollment speech and their 5 s test pieces."""
    from ..eval.protocol import prepare_protocol

    return prepare_protocol(dev, enroll_seconds=(15,))


def embed(extractor, speakers):
    """The protocol's embeddings (enrollment segments, test pieces) by ``extractor``."""
    from ..eval.protocol import embed_protocol

    return embed_protocol(extractor, speakers)


def compare(reference, candidate, dev) -> dict:
    """Cosine parity of two embeddings of the same speech, and their all-speaker accuracy.

    Parameters
    ----------
    reference, candidate : EmbeddedSpeakers
        From the Keras model and from the exported one.
    dev : str or Path
        Where the speech came from (recorded by name).

    Returns
    -------
    dict
        ``embeddings``, ``cosine_min``, ``cosine_median`` over every enrollment
        segment and test piece; ``speakers``, ``acc_all``, ``keras_acc_all``,
        ``eer``, ``keras_eer`` (15 s enrollment); ``speech`` (the tree's name).
    """
    from ..eval.protocol import quick_scores

    a, b = _vectors(reference), _vectors(candidate)
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    ref, cand = (quick_scores(e, T=15.0, group_sizes=("all",)) for e in (reference, candidate))
    return {
        "speech": Path(dev).name,
        "embeddings": int(len(cos)),
        "cosine_min": round(float(cos.min()), 6),
        "cosine_median": round(float(np.median(cos)), 6),
        "speakers": len(reference.names),
        "acc_all": round(cand["acc_all"], 4),
        "keras_acc_all": round(ref["acc_all"], 4),
        "eer": round(cand["eer"], 4),
        "keras_eer": round(ref["eer"], 4),
    }


def _vectors(emb) -> np.ndarray:
    return np.concatenate(list(emb.enroll[15.0]) + list(emb.tests))


def calibration_inputs(train, *, feature_config: FeatureConfig, n: int = 200, seed: int = 0) -> np.ndarray:
    """Log-mel inputs to calibrate int8 activations on: one 3 s segment from each of ``n`` training speakers.

    Speakers, files and segment positions are drawn from a generator seeded
    with ``seed``; the speech goes through :func:`fewshot.audio.vad.load_speech`
    like any input.

    Returns
    -------
    X : np.ndarray [shape=(n_inputs, segment_frames, n_mels), dtype=float32]
    """
    from ..audio.features import log_mel, segment
    from ..audio.vad import load_speech
    from ..datasets import speaker_folders
    from ..errors import AudioError

    rng = np.random.default_rng(seed)
    folders = speaker_folders(train)
    names = sorted(folders)
    frames = feature_config.segment_frames
    out = []
    for i in rng.permutation(len(names))[:n]:
        files = folders[names[i]]
        try:
            y = load_speech(files[rng.integers(len(files))], config=feature_config).samples
        except AudioError:
            continue
        S = segment(log_mel(y, config=feature_config), seg_frames=frames, hop_frames=frames)
        out.append(S[rng.integers(len(S))])
    if not out:
        raise FileNotFoundError(f"{train}: no usable training speech to calibrate the int8 model on")
    return np.stack(out).astype(np.float32)
