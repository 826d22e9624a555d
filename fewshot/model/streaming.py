"""Long inputs, embedded block by block in flat memory.

An input that fits one block of :func:`fewshot.audio.decode.stream` (60 s) is taken
whole, as it always was (:func:`read_head`; :func:`read_heads` for many, in
parallel). A longer one is read, cut and
embedded as it comes (:func:`embed_stream`, :func:`identify_stream`), going on
from the blocks :func:`read_head` read, so that no part is decoded twice:
memory stays flat and time grows with its length.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from .._native import quiet_stderr
from ..audio.decode import SAMPLE_RATE, stream
from ..audio.features import l2_normalize
from ..audio.vad import (
    Speech,
    check_speech_seconds,
    is_silent,
    normalize_loudness,
    speech,
    speech_blocks,
    stream_speech,
)
from ..config import UNKNOWN
from ..errors import AudioError

#: Longest piece of speech, in seconds, the CNN embeds in one pass (:meth:`Extractor.embed`'s ``max_chunk_s``).
STREAM_CHUNK_S = 20.0


class Blocks:
    """The blocks of :func:`fewshot.audio.decode.stream` of an input, from its start: those already read, then the rest
    as it is decoded. :meth:`close` ends the decoding."""

    def __init__(self, head: list, rest):
        self.head, self.rest = head, rest

    def __iter__(self):
        head, self.head = self.head, []
        yield from head
        yield from self.rest

    def close(self) -> None:
        self.head = []
        self.rest.close()


def read_head(source, *, config, sr_in: int | None = None) -> np.ndarray | Blocks:
    """The samples of ``source`` if it fits one block, else its :class:`Blocks` (two read): it is to be streamed.

    Raises
    ------
    AudioError
        For a file that cannot be read.
    """
    blocks = stream(source, sr=config.sr, sr_in=sr_in)
    head = list(itertools.islice(blocks, 2))
    if len(head) > 1:
        return Blocks(head, blocks)
    blocks.close()
    return head[0][1]


def read_heads(sources, *, config, sr_in: int | None = None, workers: int = 4, keep_samples: bool = False) -> list:
    """:func:`read_head` of each of ``sources`` (arrays at ``sr_in`` Hz), in a thread pool, the speech found in those
    of one block.

    Returns
    -------
    list
        Per source: its :class:`~fewshot.audio.vad.Speech` (with ``keep_samples``, the pair of it and the decoded
        samples), its :class:`Blocks` (to be streamed, two blocks held), or the ``AudioError`` that makes it
        unusable.
    """
    from concurrent.futures import ThreadPoolExecutor

    def speech_of(source):
        try:
            got = read_head(source, config=config, sr_in=sr_in)
            if isinstance(got, Blocks):
                return got
            found = speech(got, config=config, source=_name(source))
            return (found, got) if keep_samples else found
        except AudioError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources)))) as pool:
        return list(pool.map(speech_of, sources))


class Tee:
    """The blocks of ``blocks`` as the caller reads them, read by ``side(blocks)`` in a thread at the same time.

    ``side`` is at most ``depth`` blocks behind, so two readers share one
    decoding in flat memory. :meth:`result` waits for ``side`` and returns
    what it returned, or raises what it raised.
    """

    def __init__(self, blocks, side, *, depth: int = 2):
        import queue
        import threading

        self.blocks, self.queue, self.out, self.error = blocks, queue.Queue(maxsize=depth), None, None
        self.thread = threading.Thread(target=self._side, args=(side,), daemon=True)
        self.thread.start()

    def _side(self, side) -> None:
        def read():
            while (block := self.queue.get()) is not None:
                yield block

        try:
            self.out = side(read())
        except BaseException as exc:
            self.error = exc

    def _put(self, item) -> None:
        import queue

        while self.thread.is_alive():
            try:
                return self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue

    def __iter__(self):
        try:
            for block in self.blocks:
                self._put(block)
                yield block
        finally:
            self._put(None)

    def close(self) -> None:
        """End ``side``'s reading here (it sees the end of the blocks), whether or not the caller read them all."""
        self._put(None)

    def result(self):
        self.close()
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.out


def _name(source) -> str:
    return "<array>" if isinstance(source, np.ndarray) else os.fspath(source)


def speech_prefix(
    source, *, config, max_s: float, sr_in: int | None = None, clip_level: float = 1.0, sha256=None
) -> tuple[Speech, float]:
    """The first ``max_s`` seconds of the speech of ``source``, read block by block only as far as needed.

    The speech is :func:`~fewshot.audio.vad.speech_blocks`' (for input of one block,
    exactly :func:`~fewshot.audio.vad.load_speech`'s), loudness-normalised over
    what is returned. Reading stops once there is enough of it, so a long
    recording costs what it gives; ``sha256`` is fed the file's bytes
    (:func:`fewshot.audio.decode.stream`).

    Returns
    -------
    speech : Speech
        At most ``max_s`` seconds.
    clipped : float
        The fraction of the samples read at or above ``clip_level``.

    Raises
    ------
    AudioError
        For a file that cannot be read, non-finite samples, silence, or less than ``min_speech_s`` of speech.
    """
    cfg, name = config, _name(source)
    limit, read, clipped, peak = int(max_s * cfg.sr), 0, 0, 0.0

    def blocks(decoded):
        nonlocal read, clipped, peak
        for _, y in decoded:
            read, clipped = read + len(y), clipped + int(np.count_nonzero(np.abs(y) >= clip_level))
            peak = max(peak, float(np.max(np.abs(y))) if len(y) else 0.0)
            yield y

    pieces, intervals, kept = [], [], 0
    decoded = stream(source, sr=cfg.sr, sr_in=sr_in, sha256=sha256)
    found = speech_blocks(blocks(decoded), sr=cfg.sr, top_db=cfg.top_db, max_silence_s=cfg.max_silence_s)
    try:
        for start_s, y in found:
            y = y[: limit - kept]
            start = round(start_s * cfg.sr)
            if intervals and intervals[-1][1] == start:
                intervals[-1][1] += len(y)
            else:
                intervals.append([start, start + len(y)])
            pieces.append(y)
            kept += len(y)
            if kept >= limit:
                break
    finally:
        found.close()
        decoded.close()  # the rest of the file is hashed now, not decoded
    if is_silent(peak):
        raise AudioError(name, "audio is all silence")
    y = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    check_speech_seconds(len(y) / cfg.sr, config=cfg, source=name)
    intervals = np.asarray(intervals, dtype=np.int64).reshape(-1, 2)
    return Speech(normalize_loudness(y, target_dbfs=cfg.target_dbfs), intervals, cfg.sr, name), clipped / max(read, 1)


def identify_stream(extractor, clf, source, *, sr_in: int | None = None, progress=None, blocks=None) -> tuple:
    """Who speaks in ``source`` among ``clf``'s speakers, from :func:`embed_stream` (of ``blocks`` when given).

    Returns
    -------
    label, score, is_unknown, nearest
        The fields of a :class:`~fewshot.identifier.Prediction`.
    """
    e = embed_stream(extractor, source, sr_in=sr_in, progress=progress, blocks=blocks)
    labels, scores, nearest = clf.predict_open(e[None], return_nearest=True)
    return str(labels[0]), float(scores[0]), labels[0] == UNKNOWN, str(nearest[0])


def embed_stream(extractor, source, *, sr_in: int | None = None, progress=None, blocks=None) -> np.ndarray:
    """The embedding of the speech of ``source`` (any length), read, cut and embedded block by block.

    The speech (:func:`~fewshot.audio.vad.stream_speech`) is cut as it comes into
    chunks as long as one pass of the CNN takes (:data:`STREAM_CHUNK_S`); what
    is left at the end is one chunk, or two equal ones when longer than a
    chunk. Each chunk is normalised on its own, and the embedding is the mean
    of theirs, as :meth:`~fewshot.model.extractor.Extractor.embed` averages the
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
    blocks : iterable, optional
        The ``(start_s, y)`` blocks of ``source`` (:class:`Blocks`), when it is already being read.

    Returns
    -------
    e : np.ndarray [shape=(dim,), dtype=float32]
        Unit length.

    Raises
    ------
    AudioError
        As :func:`~fewshot.audio.vad.load_speech`, possibly after the whole input is read.
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
        for piece in stream_speech(source, config=cfg, sr_in=sr_in, on_block=bar and advance, blocks=blocks):
            y = piece.samples
            pending.append(y)
            n += len(y)
            if n >= 2 * size:
                y = np.concatenate(pending)
                cut = (n // size - 1) * size
                take(y[i : i + size] for i in range(0, cut, size))
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
