"""Training the extractor: cached features, balanced crops, angular-margin loss, fit loop.

The data side is plain NumPy with one seeded generator per batch, so that two
runs with the same seed see the same batches, and a resumed run picks up at
the very batch where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from .augment import augment_batch, speed_perturb
from .audio import load, trim_silence
from .config import FeatureConfig
from .evaluation import speaker_folders
from .features import log_mel

logger = logging.getLogger(__name__)


def list_training_speakers(source) -> dict[str, list[Path]]:
    """``{speaker: [files]}`` from a speaker-per-folder tree or a ``manifest.csv``.

    A manifest's ``split`` column is honoured: only rows of split ``train``
    (or rows without a split) are used.
    """
    source = Path(source)
    if source.is_file() or (source / "manifest.csv").is_file():
        from data_tools.manifest import read_manifest

        rows = read_manifest(source if source.is_file() else source / "manifest.csv")
        out: dict[str, list[Path]] = {}
        for r in rows:
            if r.split in ("", "train"):
                out.setdefault(str(r.speaker_id), []).append(Path(r.path))
        return {k: sorted(v) for k, v in sorted(out.items())}
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such training folder or manifest")
    out = speaker_folders(source)
    if not out:
        raise FileNotFoundError(f"{source}: no speaker folders with audio files")
    return out


def _file_features(args):
    path, cfg_dict, speeds, cache_dir = args
    cfg = FeatureConfig.from_dict(cfg_dict)
    st = os.stat(path)
    key = hashlib.sha1(json.dumps([str(Path(path).resolve()), st.st_size, int(st.st_mtime), cfg_dict,
                                   list(speeds)]).encode()).hexdigest()
    cached = Path(cache_dir) / f"{key}.npz"
    if cached.is_file():
        with np.load(cached) as z:
            return [z[f"s{i}"] for i in range(len(speeds))]
    y = trim_silence(load(path, sr=cfg.sr), sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s)
    feats = []
    for f in speeds:
        ys = speed_perturb(y, sr=cfg.sr, factor=f)
        feats.append(log_mel(ys, config=cfg).astype(np.float16) if ys.size else np.zeros((0, cfg.n_mels), np.float16))
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **{f"s{i}": a for i, a in enumerate(feats)})
    os.replace(tmp, cached)
    return feats


def corpus_features(speakers: dict[str, list[Path]], *, config: FeatureConfig, speeds=(1.0,),
                    cache_dir, workers: int = 1, progress=None):
    """Log-mel features of every speaker, one class per (speaker, speed).

    Returns
    -------
    feats : list of np.ndarray [shape=(n_frames, n_mels), dtype=float16]
        Each class's speech, files concatenated.
    classes : list of str
        ``"<speaker>"`` or ``"<speaker>@<speed>"``.
    """
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(str(p), config.to_dict(), tuple(speeds), str(cache_dir)) for ps in speakers.values() for p in ps]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_file_features, jobs, chunksize=8)
            results = list(progress(results, total=len(jobs)) if progress else results)
    else:
        it = progress(jobs, total=len(jobs)) if progress else jobs
        results = [_file_features(j) for j in it]
    feats, classes, k = [], [], 0
    for spk, paths in speakers.items():
        per_file = results[k:k + len(paths)]
        k += len(paths)
        for i, f in enumerate(speeds):
            arr = np.concatenate([r[i] for r in per_file])
            if len(arr) >= 50:
                feats.append(arr)
                classes.append(spk if f == 1.0 else f"{spk}@{f:g}")
    return feats, classes


class CropSampler:
    """Balanced random crops: a class uniformly, then a random window of its speech.

    Batch ``n`` is drawn from ``np.random.default_rng([seed, n])``, so any batch
    can be reproduced from its index alone.
    """

    def __init__(self, feats, *, crop_frames: int, batch_size: int, seed: int = 0,
                 hop_s: float = 0.01, augment: bool = True):
        self.feats = feats
        self.crop_frames = crop_frames
        self.batch_size = batch_size
        self.seed = seed
        self.hop_s = hop_s
        self.augment = augment

    def batch(self, n: int):
        rng = np.random.default_rng([self.seed, n])
        labels = rng.integers(0, len(self.feats), self.batch_size)
        X = np.empty((self.batch_size, self.crop_frames, self.feats[0].shape[1]), np.float32)
        for i, c in enumerate(labels):
            S = self.feats[c]
            if len(S) < self.crop_frames:
                S = np.tile(S, (math.ceil(self.crop_frames / len(S)), 1))
            t0 = int(rng.integers(0, len(S) - self.crop_frames + 1))
            X[i] = S[t0:t0 + self.crop_frames]
        if self.augment:
            augment_batch(X, rng=rng, hop_s=self.hop_s)
        return X, labels.astype(np.int32)

    def dataset(self, *, start_batch: int = 0):
        """An endless ``tf.data.Dataset`` of ``(X, labels)`` from batch ``start_batch`` on."""
        import tensorflow as tf

        def gen():
            n = start_batch
            while True:
                yield self.batch(n)
                n += 1

        spec = (tf.TensorSpec((self.batch_size, self.crop_frames, self.feats[0].shape[1]), tf.float32),
                tf.TensorSpec((self.batch_size,), tf.int32))
        ds = tf.data.Dataset.from_generator(gen, output_signature=spec).prefetch(4)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options)
