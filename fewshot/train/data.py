"""Training data: speakers' speech cached as waveforms, and balanced degraded crops.

The data side is plain NumPy with one seeded generator per batch, so that two
runs with the same seed see the same batches, and a resumed run picks up at
the very batch where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..audio.decode import load
from ..audio.features import log_mel
from ..audio.vad import normalize_loudness, trim_silence
from ..config import FeatureConfig
from ..persistence import atomic_save_npz, read_npz_cache
from .augment import AugmentConfig, degrade_crop, spec_augment, speed_perturb

logger = logging.getLogger(__name__)

#: Classes with less speech than this (seconds) are left out of training.
MIN_CLASS_S = 0.5


def list_training_speakers(source) -> dict[str, list[Path]]:
    """``{speaker: [files]}`` from a speaker-per-folder tree or a ``manifest.csv``.

    A manifest's ``split`` column is honoured: only rows of split ``train``
    (or rows without a split) are used.
    """
    from ..datasets import read_manifest_speakers, speaker_folders

    source = Path(source)
    if source.is_file() or (source / "manifest.csv").is_file():
        return read_manifest_speakers(source if source.is_file() else source / "manifest.csv")
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such training folder or manifest")
    out = speaker_folders(source)
    if not out:
        raise FileNotFoundError(f"{source}: no speaker folders with audio files")
    return out


def _file_speech(args):
    path, cfg_dict, speeds, cache_dir = args
    cfg = FeatureConfig.from_dict(cfg_dict)
    st = os.stat(path)
    key = hashlib.sha1(
        json.dumps(["wave", str(Path(path).resolve()), st.st_size, int(st.st_mtime), cfg_dict, list(speeds)]).encode()
    ).hexdigest()
    cached = Path(cache_dir) / f"{key}.npz"
    z = read_npz_cache(cached, keys=[f"s{i}" for i in range(len(speeds))])
    if z is not None:
        return [z[f"s{i}"] for i in range(len(speeds))]
    y = trim_silence(load(path, sr=cfg.sr), sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s)
    out = []
    for f in speeds:
        ys = normalize_loudness(speed_perturb(y, sr=cfg.sr, factor=f), target_dbfs=cfg.target_dbfs) if y.size else y
        out.append(np.round(np.clip(ys, -1, 1) * 32767).astype(np.int16))
    atomic_save_npz(cached, **{f"s{i}": a for i, a in enumerate(out)})
    return out


def int16_to_float(y) -> np.ndarray:
    """Cached int16 speech (as :func:`corpus_speech` keeps it) as float32 in [-1, 1]; float input is passed as float32."""
    y = np.asarray(y)
    return y.astype(np.float32) / 32767.0 if y.dtype == np.int16 else y.astype(np.float32)


def corpus_speech(
    speakers: dict[str, list[Path]], *, config: FeatureConfig, speeds=(1.0,), cache_dir, workers: int = 1, progress=None
):
    """Every speaker's speech (pauses cut, loudness normalised), one class per (speaker, speed).

    Returns
    -------
    waves : list of np.ndarray [shape=(n,), dtype=int16]
        Each class's speech at ``config.sr``, files concatenated.
    classes : list of str
        ``"<speaker>"`` or ``"<speaker>@<speed>"``.
    """
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(str(p), config.to_dict(), tuple(speeds), str(cache_dir)) for ps in speakers.values() for p in ps]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_file_speech, jobs, chunksize=8)
            results = list(progress(results, total=len(jobs)) if progress else results)
    else:
        it = progress(jobs, total=len(jobs)) if progress else jobs
        results = [_file_speech(j) for j in it]
    waves, classes, k = [], [], 0
    for spk, paths in speakers.items():
        per_file = results[k : k + len(paths)]
        k += len(paths)
        for i, f in enumerate(speeds):
            arr = np.concatenate([r[i] for r in per_file])
            if len(arr) >= MIN_CLASS_S * config.sr:
                waves.append(arr)
                classes.append(spk if f == 1.0 else f"{spk}@{f:g}")
    return waves, classes


class CropSampler:
    """Balanced random crops: a class uniformly, then a random window of its speech.

    Each crop is degraded (:func:`fewshot.train.augment.degrade_crop`), its
    loudness normalised as the runtime does, and turned into a log-mel crop of
    ``crop_frames`` frames. Batch ``n`` is drawn from
    ``np.random.default_rng([seed, n])``, so any batch can be reproduced from
    its index alone.
    """

    #: Speech before the crop that is convolved with it, so the crop starts inside a room.
    PRE_ROLL_S = 0.5

    def __init__(
        self,
        waves,
        *,
        feature_config: FeatureConfig,
        crop_frames: int,
        batch_size: int,
        seed: int = 0,
        augment: AugmentConfig | None = AugmentConfig(),
        targets=None,
        target_hop: int | None = None,
    ):
        self.waves = waves
        #: Per class, the teacher's embeddings of its grid windows (``None``: no target for that class).
        self.targets = targets
        self.target_hop = target_hop
        self.cfg = feature_config
        self.crop_frames = crop_frames
        self.crop_samples = (crop_frames - 1) * feature_config.hop_length
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment

    def _crop(self, rng, c: int, n: int) -> np.ndarray:
        y = self.waves[c]
        if len(y) < n:
            y = np.tile(y, -(-n // len(y)))
        t0 = int(rng.integers(0, len(y) - n + 1))
        return int16_to_float(y[t0 : t0 + n])

    def _grid_crop(self, rng, c: int, pre: int) -> tuple[np.ndarray, int]:
        """A crop starting on the teacher's grid (zero pre-roll before the first window), and its window."""
        y = self.waves[c]
        if len(y) < self.crop_samples:
            y = np.tile(y, -(-self.crop_samples // len(y)))
        k = int(rng.integers(0, len(self.targets[c])))
        t0 = k * self.target_hop
        seg = int16_to_float(y[max(0, t0 - pre) : t0 + self.crop_samples])
        return np.pad(seg, (pre + self.crop_samples - len(seg), 0)), k

    def batch(self, n: int):
        """Batch ``n``: log-mel crops and labels; with teacher targets, labels are
        ``(labels, targets)`` where ``targets`` is ``(batch, dim + 1)``: the
        teacher's embedding of the clean crop and a last column of 1 (0 where
        the class has no target)."""
        rng = np.random.default_rng([self.seed, n])
        labels = rng.integers(0, len(self.waves), self.batch_size)
        pre = int(self.PRE_ROLL_S * self.cfg.sr) if self.augment else 0
        if self.targets is None:
            crops = [self._crop(rng, int(c), self.crop_samples + pre) for c in labels]
        else:
            dim = next(t.shape[1] for t in self.targets if t is not None)
            T = np.zeros((self.batch_size, dim + 1), np.float32)
            crops = []
            for i, c in enumerate(labels):
                if self.targets[c] is None:
                    crops.append(self._crop(rng, int(c), self.crop_samples + pre))
                    continue
                crop, k = self._grid_crop(rng, int(c), pre)
                crops.append(crop)
                T[i, :dim], T[i, dim] = self.targets[c][k], 1.0
        Y = np.empty((self.batch_size, self.crop_samples), np.float32)
        for i, y in enumerate(crops):
            if self.augment:
                others = [crops[j] for j in range(len(crops)) if labels[j] != labels[i]][:8]
                y = degrade_crop(y, sr=self.cfg.sr, rng=rng, others=others, config=self.augment)
            Y[i] = normalize_loudness(y[pre:], target_dbfs=self.cfg.target_dbfs)
        X = log_mel(Y, config=self.cfg)
        if self.augment:
            for i in range(len(X)):
                if rng.random() < self.augment.p_mask:
                    X[i] = spec_augment(X[i], rng=rng)
        if self.targets is not None:
            return X, (labels.astype(np.int32), T)
        return X, labels.astype(np.int32)

    def dataset(self, *, start_batch: int = 0):
        """An endless ``tf.data.Dataset`` of ``(X, labels)`` from batch ``start_batch`` on."""
        import tensorflow as tf

        def gen():
            n = start_batch
            while True:
                yield self.batch(n)
                n += 1

        spec = (
            tf.TensorSpec((self.batch_size, self.crop_frames, self.cfg.n_mels), tf.float32),
            tf.TensorSpec((self.batch_size,), tf.int32),
        )
        if self.targets is not None:
            dim = next(t.shape[1] for t in self.targets if t is not None)
            spec = (spec[0], (spec[1], tf.TensorSpec((self.batch_size, dim + 1), tf.float32)))
        ds = tf.data.Dataset.from_generator(gen, output_signature=spec).prefetch(4)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options)
