"""Where audio comes in: decode, mix to mono, resample, check.

Every function takes the signal first and everything else keyword-only, with
librosa's names (``y``, ``sr``). Decoding and resampling happen here alone:
:func:`stream` reads any input in blocks (libsndfile's blockwise reads, or
ffmpeg's output read from its pipe as it decodes) through one stateful
resampler, and :func:`load` is its blocks joined. The VAD, silence cutting and
loudness live in :mod:`fewshot.audio.vad`, which reads its input through this module.
Nothing here imports librosa: NumPy and soxr compute what it would.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .._native import quiet_stderr
from ..config import FeatureConfig
from ..errors import AudioError

__all__ = ["BLOCK_S", "SAMPLE_RATE", "check_samples", "downmix", "load", "resample", "resampler", "stream"]

logger = logging.getLogger(__name__)

#: The rate every input is resampled to (the default :class:`FeatureConfig`'s).
SAMPLE_RATE = FeatureConfig.sr
#: Seconds of audio :func:`stream` reads at a time; inputs no longer than this are read in one block.
BLOCK_S = 60.0
#: soxr's quality setting (librosa's ``res_type="soxr_hq"``).
_SOXR_QUALITY = "soxr_hq"
#: Frames mixed to mono at a time, so that a block's temporaries stay small.
_MIX_FRAMES = 1 << 16


def load(source, *, sr: int = SAMPLE_RATE, sr_in: int | None = None, max_seconds: float | None = None) -> np.ndarray:
    """Decode a file (or take an array) as mono float32 at ``sr`` Hz: the blocks of :func:`stream`, joined.

    Parameters are those of :func:`stream`; ``max_seconds`` decodes at most
    that many seconds from the start.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioError
        When the file is missing, unreadable, empty or holds non-finite samples.
    """
    blocks = [y for _, y in stream(source, sr=sr, sr_in=sr_in, max_seconds=max_seconds)]
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def stream(
    source,
    *,
    sr: int = SAMPLE_RATE,
    sr_in: int | None = None,
    block_s: float = BLOCK_S,
    max_seconds: float | None = None,
    sha256=None,
):
    """Decode a file (or take an array) block by block, as mono float32 at ``sr`` Hz.

    What libsndfile reads (wav, flac, ogg, mp3, ...) is read ``block_s``
    seconds at a time at the file's rate, mixed to mono (:func:`downmix`'s
    rule, judged block by block; a channel once chosen stays chosen) and
    resampled by one stateful soxr resampler, which gives the samples
    :func:`resample` gives for the whole input. Other formats (m4a, webm, ...)
    come from ffmpeg, mixed to stereo at ``sr`` by it and then to mono, read
    from its pipe as it decodes. Input no longer than ``block_s`` comes in one
    block: the samples :func:`load` always gave.

    Parameters
    ----------
    source : str, os.PathLike or np.ndarray
        A file in any format libsndfile or ffmpeg reads, or samples of shape
        ``(n,)`` or ``(n, channels)``.
    sr : int
        Target sample rate in Hz.
    sr_in : int, optional
        Sample rate of ``source`` when it is an array (default: ``sr``).
    block_s : float
        Seconds of input per block.
    max_seconds : float, optional
        Decode at most this many seconds from the start.
    sha256 : hashlib object, optional
        Fed the file's bytes (an array's: its bytes) by the time the stream
        ends or is closed, as libsndfile reads them where it can: the file's
        checksum (:func:`fewshot.persistence.sha256_of`) with no second pass
        over what was decoded. What is not decoded (the rest of a file read
        only in part, or one ffmpeg decodes) is read for it at the end.

    Yields
    ------
    start_s : float
        Where the block starts, in seconds of the input.
    y : np.ndarray [shape=(n,), dtype=float32]
        The block (about ``block_s * sr`` samples; never empty).

    Raises
    ------
    AudioError
        When the file is missing, unreadable, empty or holds non-finite
        samples; a fault found after some blocks is raised there.

    Examples
    --------
    >>> [(t, len(y)) for t, y in stream(np.zeros(150 * 16000, np.float32), sr=16000)]
    [(0.0, 960000), (60.0, 960000), (120.0, 480000)]
    """
    name = "<array>" if isinstance(source, np.ndarray) else os.fspath(source)
    if isinstance(source, np.ndarray):
        if sha256 is not None:
            sha256.update(np.ascontiguousarray(source).tobytes())
        native = _array_blocks(source, sr_in=sr_in or sr, block_s=block_s, max_seconds=max_seconds)
    else:
        native = _file_blocks(Path(name), sr=sr, block_s=block_s, max_seconds=max_seconds, sha256=sha256)
    start = 0
    for y in _resampled(native, sr=sr, source=name):
        yield start / sr, y
        start += len(y)
    if start == 0:
        raise AudioError(name, "no audio samples (empty)")


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """soxr's high-quality resampler, fitted to ``ceil(n * target_sr / orig_sr)`` samples.

    The same samples as ``librosa.resample(..., res_type="soxr_hq")``: the tail
    is cut, or padded with zeros, to that length.
    """
    import soxr

    n = int(np.ceil(len(y) * target_sr / orig_sr))
    y_hat = soxr.resample(np.asarray(y, dtype=np.float32), orig_sr, target_sr, quality=_SOXR_QUALITY)
    return np.pad(y_hat[:n], (0, max(0, n - len(y_hat)))).astype(np.float32, copy=False)


def resampler(orig_sr: int, target_sr: int):
    """A stateful soxr resampler of mono float32 chunks (``resample_chunk(y, last=False)``), at :func:`resample`'s
    quality: the one every stream (a file's blocks, the live microphone) is resampled by."""
    import soxr

    return soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality=_SOXR_QUALITY)


def _resampled(blocks, *, sr: int, source):
    """Blocks ``(mono parts, sr_native)``, checked, joined and resampled to ``sr`` by one soxr stream.

    The output is fitted at the end as :func:`resample` fits it, so one block is held back.
    """
    stateful, n_in, n_out, held, sr_native = None, 0, 0, None, sr
    for parts, sr_native in blocks:
        out = []
        for y in parts:
            y = np.ascontiguousarray(check_samples(y, source=source), dtype=np.float32)
            if sr_native != sr:
                stateful = stateful or resampler(sr_native, sr)
                n_in += len(y)
                y = stateful.resample_chunk(y, last=False)
            out.append(y)
        out = out[0] if len(out) == 1 else np.concatenate(out) if out else np.zeros(0, np.float32)
        if stateful is None:
            yield from [out] if len(out) else []
            continue
        if held is not None and len(held):
            n_out += len(held)
            yield held
        held = out
    if stateful is not None:
        tail = np.concatenate([held, stateful.resample_chunk(np.zeros(0, np.float32), last=True)])
        n = int(np.ceil(n_in * sr / sr_native)) - n_out
        tail = np.pad(tail[: max(n, 0)], (0, max(0, n - len(tail)))).astype(np.float32, copy=False)
        yield from [tail] if len(tail) else []


def _array_blocks(y, *, sr_in: int, block_s: float, max_seconds: float | None):
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = downmix(y if y.shape[1] < y.shape[0] else y.T)
    y = y if max_seconds is None else y[: int(max_seconds * sr_in)]
    step = max(1, int(block_s * sr_in))
    for i in range(0, len(y) if y.ndim == 1 else 0, step):
        yield [y[i : i + step]], sr_in
    if y.ndim != 1 or y.size == 0:
        yield [y], sr_in  # for the checks to refuse


def _parts(y: np.ndarray) -> list:
    """A block of ``(n, channels)`` samples as views of ``_MIX_FRAMES`` rows, the pieces it is mixed in."""
    return [y[i : i + _MIX_FRAMES] for i in range(0, max(len(y), 1), _MIX_FRAMES)]


def _file_blocks(path: Path, *, sr: int, block_s: float, max_seconds: float | None, sha256=None):
    """libsndfile's blocks of what it reads (at the file's rate), else ffmpeg's (at ``sr``); ``sha256`` is fed
    the file's bytes by the end (:func:`stream`)."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    raw = _HashingFile(path, sha256)
    try:
        yield from _sndfile_blocks(path, raw, sr=sr, block_s=block_s, max_seconds=max_seconds)
    finally:
        raw.finish()


def _sndfile_blocks(path: Path, raw, *, sr: int, block_s: float, max_seconds: float | None):
    import soundfile as sf

    try:
        with quiet_stderr():
            f = _open_sndfile(sf, path, raw)
    except Exception as exc:  # libsndfile does not know the format: try ffmpeg
        yield from _ffmpeg_blocks(path, sr=sr, block_s=block_s, max_seconds=max_seconds, first_error=exc)
        return
    with f:
        left = None if max_seconds is None else int(max_seconds * f.samplerate)
        size, first, mixer = max(1, int(block_s * f.samplerate)), True, _Downmixer()
        while left is None or left > 0:
            want = size if left is None else min(size, left)
            try:
                with quiet_stderr():
                    y = f.read(want, dtype="float32", always_2d=True)
            except Exception as exc:
                if not first:
                    raise AudioError(path, f"unreadable or corrupt audio ({type(exc).__name__}: {exc})") from None
                yield from _ffmpeg_blocks(path, sr=sr, block_s=block_s, max_seconds=max_seconds, first_error=exc)
                return
            got = len(y)
            if got == 0 and not first:
                break
            first = False
            yield mixer(_parts(y), channels=f.channels), int(f.samplerate)
            del y  # before the next block is read
            left = None if left is None else left - got
            if got < want:
                break


def _open_sndfile(sf, path: Path, raw):
    """libsndfile on ``raw`` (so that the bytes it reads are hashed as it reads them), else on ``path``."""
    if raw.sha256 is None:
        return sf.SoundFile(str(path))
    try:
        return sf.SoundFile(raw)
    except Exception:  # a format libsndfile knows only by the file's name
        raw.seek(0)
        return sf.SoundFile(str(path))


class _HashingFile:
    """A file as libsndfile reads it through Python, its bytes fed to ``sha256`` in order as reads pass them.

    :meth:`finish` reads what no read passed (a tail libsndfile skipped, the
    rest of a file read in part) and closes it; without ``sha256`` nothing is opened.
    """

    def __init__(self, path: Path, sha256):
        self.path, self.sha256, self.done = path, sha256, 0
        self.f = None if sha256 is None else open(path, "rb")  # noqa: SIM115 - closed by finish()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def read(self, n: int = -1) -> bytes:
        at, data = self.f.tell(), self.f.read(n)
        self._passed(at, data)
        return data

    def readinto(self, buf) -> int:
        at, n = self.f.tell(), self.f.readinto(buf)
        self._passed(at, memoryview(buf).cast("B")[:n])
        return n

    def _passed(self, at: int, data) -> None:
        if at <= self.done < at + len(data):
            self.sha256.update(data[self.done - at :])
            self.done = at + len(data)

    def finish(self) -> None:
        if self.f is None:
            return
        try:
            self.f.seek(self.done)
            while chunk := self.f.read(1 << 20):
                self.sha256.update(chunk)
        finally:
            self.f.close()
            self.f = None


def _ffmpeg_blocks(path: Path, *, sr: int, block_s: float, max_seconds: float | None, first_error):
    """ffmpeg's decoding of ``path`` (stereo at ``sr``, then mono), read from its pipe block by block."""
    import shutil
    import subprocess
    import tempfile

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(path, "cannot decode: ffmpeg is not installed")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path)]
    if max_seconds is not None:
        cmd += ["-t", f"{max(0.0, float(max_seconds)):.6f}"]
    cmd += ["-vn", "-ac", "2", "-ar", str(int(sr)), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    size, got, mixer = max(1, int(block_s * sr)) * 8, 0, _Downmixer()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            while raw := proc.stdout.read(size):
                raw = raw[: len(raw) - len(raw) % 8]
                got += len(raw)
                if raw:
                    yield mixer(_parts(np.frombuffer(raw, dtype="<f4").reshape(-1, 2)), channels=2), sr
                del raw  # before the next block is read
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if returncode != 0 or not got:
            err.seek(0)
            said = err.read().decode(errors="replace").strip().splitlines()  # ffmpeg's last line names the file
            why = said[-1].removeprefix(f"{path}:").strip() if said else f"{type(first_error).__name__}: {first_error}"
            raise AudioError(path, f"unreadable or corrupt audio: neither libsndfile nor ffmpeg decodes it ({why})")


def downmix(y: np.ndarray) -> np.ndarray:
    """Mono from ``(n, channels)`` samples: their mean, or the loudest channel when they cancel.

    A stereo file with one channel phase-inverted (a wiring mistake) averages to
    near silence; when the mean is over 20 dB quieter than the loudest channel,
    that channel alone is used.
    """
    return np.concatenate(list(_Downmixer()(_parts(y), channels=y.shape[1])))


class _Downmixer:
    """:func:`downmix` of a stream: each block (given in ``parts``) is judged whole, and mixed part by part.

    Once one channel is chosen it stays chosen, so that the sign of the signal
    never flips between blocks.
    """

    def __init__(self):
        self.channel = None

    def __call__(self, parts, *, channels: int):
        if channels == 1:
            return [p[:, 0] for p in parts]
        if self.channel is None:
            n = max(1, sum(len(p) for p in parts))
            rms = np.sqrt(sum(np.sum(np.square(p, dtype=np.float64), axis=0) for p in parts) / n)
            mean_rms = np.sqrt(sum(np.sum(np.square(p.mean(axis=1), dtype=np.float64)) for p in parts) / n)
            if rms.max() > 0 and mean_rms < 0.1 * rms.max():
                self.channel = int(rms.argmax())
                logger.warning("channels cancel when mixed (one is phase-inverted?); using channel %d", self.channel)
        if self.channel is None:
            return (p.mean(axis=1) for p in parts)
        return (np.ascontiguousarray(p[:, self.channel]) for p in parts)


def check_samples(y: np.ndarray, *, source) -> np.ndarray:
    """``y`` if it is mono, not empty and finite; else :class:`AudioError` naming ``source``."""
    if y.ndim != 1:
        raise AudioError(source, f"expected mono audio of shape (n,) or (n, channels), given y.shape={y.shape}")
    if y.size == 0:
        raise AudioError(source, "no audio samples (empty)")
    if not np.all(np.isfinite(y)):
        raise AudioError(source, "audio contains NaN or infinite samples")
    return y
