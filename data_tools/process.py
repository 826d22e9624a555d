"""Per-narrator processing: chapters in, WAV segments out.

Contract
--------
Input: a :class:`NarratorJob` (the narrator's downloaded chapter MP3s grouped
by book, in reading order, and the processing settings).
Output: ``<audio_root>/<reader_id>/`` holding
``<reader_id>-<book_id>-<nnnn>.wav`` segments (16 kHz mono 16-bit), optional
``.png`` spectrograms, and ``segments.json`` listing the segments and the
settings that made them. The folder is built under a temporary name of its
own (one per attempt, so a job that is run again after a lost node never
shares it) and renamed at the end, so it either exists complete or not at
all; running a job twice gives the same files.

The chapters of all books are joined and trimmed to ``max_seconds`` (books in
order), then each book's audio loses its silences longer than
``max_silence_s`` and is cut into ``segment_seconds`` segments.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fewshot.audio.decode import SAMPLE_RATE
from fewshot.audio.features import save_spectrogram_png
from fewshot.audio.vad import trim_silence
from fewshot.config import FeatureConfig
from fewshot.persistence import atomic_write_json, read_json

from .paths import safe_join
from .segment import fixed_segments, join_and_trim, write_wav

SEGMENTS_FILE = "segments.json"


@dataclass(frozen=True)
class ProcessSettings:
    """Settings that shape the segments; a change rebuilds a narrator."""

    max_seconds: float
    segment_seconds: float = 5.0
    top_db: float = FeatureConfig.top_db
    max_silence_s: float = FeatureConfig.max_silence_s
    sample_rate: int = SAMPLE_RATE
    spectrograms: bool = False


@dataclass
class NarratorJob:
    """Everything needed to build one narrator's folder."""

    reader_id: str
    books: list[tuple[str, list[Path]]]
    audio_root: Path
    settings: ProcessSettings


@dataclass
class NarratorResult:
    """What :func:`process_narrator` built."""

    reader_id: str
    segments: list[dict] = field(default_factory=list)
    input_seconds: float = 0.0
    speech_seconds: float = 0.0
    elapsed_s: float = 0.0


def narrator_dir(audio_root: Path, reader_id: str) -> Path:
    """Final folder of a narrator, checked to lie inside ``audio_root``.

    Raises
    ------
    UnsafePathError
        When ``reader_id`` is not a usable folder name (``.``, ``..``, a path).
    """
    return safe_join(audio_root, reader_id)


def load_done(audio_root: Path, reader_id: str, settings: ProcessSettings) -> dict | None:
    """The narrator's ``segments.json`` when it was built with ``settings``, else ``None``."""
    data = read_json(narrator_dir(audio_root, reader_id) / SEGMENTS_FILE)
    if isinstance(data, dict) and data.get("settings") == asdict(settings):
        return data
    return None


def process_narrator(job: NarratorJob) -> NarratorResult:
    """Build one narrator's segment folder (see the module contract)."""
    started = time.perf_counter()
    s = job.settings
    final = narrator_dir(job.audio_root, job.reader_id)
    tmp = final.with_name(f".{job.reader_id}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.mkdir(parents=True)
    result = NarratorResult(job.reader_id)
    remaining = s.max_seconds
    for book_id, paths in job.books:
        if remaining <= 0:
            break
        samples = join_and_trim(paths, remaining, s.sample_rate)
        remaining -= len(samples) / s.sample_rate
        result.input_seconds += len(samples) / s.sample_rate
        speech = trim_silence(samples, sr=s.sample_rate, top_db=s.top_db, max_silence_s=s.max_silence_s)
        result.speech_seconds += len(speech) / s.sample_rate
        for n, seg in enumerate(fixed_segments(speech, s.sample_rate, s.segment_seconds)):
            name = f"{job.reader_id}-{book_id}-{n:04d}"
            write_wav(tmp / f"{name}.wav", seg, s.sample_rate)
            if s.spectrograms:
                save_spectrogram_png(seg, tmp / f"{name}.png", config=FeatureConfig(sr=s.sample_rate))
            result.segments.append(
                {"file": f"{name}.wav", "book_id": book_id, "duration_s": round(len(seg) / s.sample_rate, 3)}
            )
    atomic_write_json(
        tmp / SEGMENTS_FILE,
        {
            "reader_id": job.reader_id,
            "settings": asdict(s),
            "input_seconds": round(result.input_seconds, 3),
            "speech_seconds": round(result.speech_seconds, 3),
            "segments": result.segments,
        },
    )
    if final.exists():
        old = final.with_name(f".{job.reader_id}.{uuid.uuid4().hex[:12]}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        shutil.rmtree(old)
    tmp.rename(final)
    result.elapsed_s = time.perf_counter() - started
    return result
