"""Long inputs, embedded block by block in flat memory.

An input that fits one block of :func:`fewshot.audio.stream` (60 s) is taken
whole, as it always was (:func:`short_speech`; :func:`short_speeches` for many,
in parallel). A longer one is read, cut and embedded as it comes
(:func:`embed_stream`, :func:`identify_stream`): memory stays flat and time
grows with its length.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from ._native import quiet_stderr
from .audio import SAMPLE_RATE, stream
from .vad import speech
from .errors import AudioError
from .features import l2_normalize
from .svm import UNKNOWN
from .vad import check_speech_seconds, is_silent, normalize_loudness, speech_blocks, stream_speech

#: Longest piece of speech, in seconds, the CNN embeds in one pass (:meth:`Extractor.embed`'s ``max_chunk_s``).
STREAM_CHUNK_S = 20.0


def short_speech(source, *, config, sr_in: int | None = None) -> np.ndarray | None:
    """:func:`~fewshot.vad.load_speech` of ``source`` if it fits one block, else ``None``: it is to be streamed.

    Raises
    ------
    AudioError
        For unusable audio that fits one block, or a file that cannot be read.
    """
    blocks = stream(source, sr=config.sr, sr_in=sr_in)
    try:
        head = [y for _, y in itertools.islice(blocks, 2)]
    finally:
        blocks.close()
    if len(head) > 1:
        return None
    return speech(head[0], config=config, source="<array>" if isinstance(source, np.ndarray) else os.fspath(source))


def short_speeches(sources, *, config, workers: int = 4) -> list:
    """:func:`short_speech` of each of ``sources``, in a thread pool: its speech, ``None``, or its ``AudioError``."""
    from concurrent.futures import ThreadPoolExecutor

    def speech_of(source):
        try:
            return short_speech(source, config=config)
        except AudioError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources)))) as pool:
        return list(pool.map(speech_of, sources))


def speech_prefix(source, *, config, max_s: float, sr_in: int | None = None,
                  clip_level: float = 1.0) -> tuple[np.ndarray, float]:
    """The first ``max_s`` seconds of the speech of ``source``, read block by block only as far as needed.

    The speech is :func:`~fewshot.vad.speech_blocks`' (for input of one block,
    exactly :func:`~fewshot.audio.load_speech`'s), loudness-normalised over
    what is returned. Reading stops once there is enough of it, so a long
    recording costs what it gives.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        At most ``max_s`` seconds.
    clipped : float
        The fraction of the samples read at or above ``clip_level``.

    Raises
    ------
    AudioError
        For a file that cannot be read, non-finite samples, silence, or less than ``min_speech_s`` of speech.
    """
    cfg, name = config, "<array>" if isinstance(source, np.ndarray) else os.fspath(source)
    limit, read, clipped, peak = int(max_s * cfg.sr), 0, 0, 0.0

    def blocks():
        nonlocal read, clipped, peak
        for _, y in stream(source, sr=cfg.sr, sr_in=sr_in):
            read, clipped = read + len(y), clipped + int(np.count_nonzero(np.abs(y) >= clip_level))
            peak = max(peak, float(np.max(np.abs(y))) if len(y) else 0.0)
            yield y

    pieces, kept = [], 0
    found = speech_blocks(blocks(), sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s)
    try:
        for _, y in found:
            pieces.append(y)
            kept += len(y)
            if kept >= limit:
                break
    finally:
        found.close()
    if is_silent(peak):
        raise AudioError(name, "audio is all silence")
    y = np.concatenate(pieces)[:limit] if pieces else np.zeros(0, np.float32)
    check_speech_seconds(len(y) / cfg.sr, config=cfg, source=name)
    return normalize_loudness(y, target_dbfs=cfg.target_dbfs), clipped / max(read, 1)


def identify_stream(extractor, clf, source, *, sr_in: int | None = None, progress=None) -> tuple:
    """Who speaks in ``source`` among ``clf``'s speakers, from :func:`embed_stream`.

    Returns
    -------
    label, score, is_unknown, nearest
        The fields of a :class:`~fewshot.identifier.Prediction`.
    """
    e = embed_stream(extractor, source, sr_in=sr_in, progress=progress)
    labels, scores, nearest = clf.predict_open(e[None], return_nearest=True)
    return str(labels[0]), float(scores[0]), labels[0] == UNKNOWN, str(nearest[0])


def embed_stream(extractor, source, *, sr_in: int | None = None, progress=None) -> np.ndarray:
    """The embedding of the speech of ``source`` (any length), read, cut and embedded block by block.

    The speech (:func:`~fewshot.vad.stream_speech`) is cut as it comes into
    chunks as long as one pass of the CNN takes (:data:`STREAM_CHUNK_S`); what
    is left at the end is one chunk, or two equal ones when longer than a
    chunk. Each chunk is normalised on its own, and the embedding is the mean
    of theirs, as :meth:`~fewshot.extractor.Extractor.embed` averages the
    chunks of a long utterance.

    Parameters
    ----------
    extractor : Extractor
    source : str, os.PathLike or np.ndarray
    sr_in : int, optional
        Sample rate of ``source`` when it is an array.
    progress : callable, optional
        ``progress(name, total_s)`` (``total_s`` is ``None`` when unknown)
        returns a bar with ``update(seconds)`` and ``close()`` (a ``tqdm``) that
        follows the reading.

    Returns
    -------
    e : np.ndarray [shape=(dim,), dtype=float32]
        Unit length.

    Raises
    ------
    AudioError
        As :func:`~fewshot.vad.load_speech`, possibly after the whole input is read.
    """
    cfg = extractor.feature_config
    size = (round(STREAM_CHUNK_S * 1000 / cfg.hop_ms) - 1) * cfg.hop_length
    total = np.zeros(extractor.dim)

    def take(chunks):
        nonlocal total
        speech = [normalize_loudness(c, target_dbfs=cfg.target_dbfs) for c in chunks]
        total = total + extractor.embed(speech, max_chunk_s=STREAM_CHUNK_S).sum(axis=0)

    name = "<array>" if isinstance(source, np.ndarray) else os.path.basename(os.fspath(source))
    seconds = None if progress is None else duration_s(source, sr_in=sr_in)
    bar, read = None if progress is None else progress(name, seconds), 0.0

    def advance(s):  # a header's duration may fall a little short of the samples decoded
        nonlocal read
        bar.update(s if seconds is None else min(s, max(0.0, seconds - read)))
        read += s

    pending, n = [], 0
    try:
        for _, y in stream_speech(source, config=cfg, sr_in=sr_in, on_block=bar and advance):
            pending.append(y)
            n += len(y)
            if n >= 2 * size:
                y = np.concatenate(pending)
                cut = (n // size - 1) * size
                take(y[i:i + size] for i in range(0, cut, size))
                pending, n = [y[cut:]], n - cut
        y = np.concatenate(pending)
        take(np.array_split(y, 2) if len(y) > size else [y])
    finally:
        if bar is not None:
            bar.close()
    return l2_normalize(total).astype(np.float32)


def duration_s(source, *, sr_in: int | None = None) -> float | None:
    """Seconds of ``source`` from its header (libsndfile's, else ffprobe's), not decoded; ``None`` if unknown."""
    import shutil
    import subprocess

    import soundfile as sf

    if isinstance(source, np.ndarray):
        return len(source) / (sr_in or SAMPLE_RATE)
    try:
        with quiet_stderr():
            return float(sf.info(os.fspath(source)).duration)
    except Exception:
        ffprobe = shutil.which("ffprobe")
    cmd = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", os.fspath(source)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip() if ffprobe else ""
    return float(out) if out.replace(".", "", 1).isdigit() else None

