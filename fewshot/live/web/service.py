"""What the web app asks of the pipeline: the CLI's operations on one :class:`SpeakerIdentifier`.

The identifier (its store's SQLite connection and its cache of fitted groups)
lives on one worker thread: every operation that reads or writes the store runs
there, one at a time, so requests arriving together keep the store's guarantees
(and other processes, such as ``fewshot enroll``, are kept in step by the store
itself). Uploads are written into a temporary folder that is removed when the
request ends, checked for length before they are decoded, and decoded by the
same code as the CLI's files; errors name the file as it was uploaded.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from ...errors import AudioError, FewshotError

#: An uploaded file's name as kept: letters, digits and ``._-`` (the rest becomes ``_``), at most this long.
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class Limits:
    """What one request may send: bytes in all, files, and minutes of audio per file."""

    max_upload_mb: float = 50.0
    max_files: int = 8
    max_minutes: float = 20.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1e6)


def upload_name(filename: str | None) -> str:
    """A safe file name for an upload (its folder dropped; odd characters replaced), keeping its extension."""
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^\w.\-]+", "_", name, flags=re.ASCII).lstrip(".")[-MAX_NAME_CHARS:]
    return name or "upload"


def check_length(path: Path, name: str, limits: Limits) -> None:
    """Refuse a file longer than the server takes (from its header; else by decoding up to the limit)."""
    from ...audio.decode import SAMPLE_RATE, load
    from ...model.streaming import duration_s

    limit = limits.max_minutes * 60
    seconds = duration_s(path)
    if seconds is None:
        seconds = len(load(path, max_seconds=limit + 1)) / SAMPLE_RATE
    if seconds > limit:
        raise AudioError(
            name,
            f"{seconds / 60:.1f} minutes long; this server takes files of up to "
            f"{limits.max_minutes:g} minutes (fewshot serve --max-minutes)",
        )


def renamed(exc: Exception, names: dict) -> Exception:
    """``exc`` with each temporary path in its message replaced by the name the file was uploaded as."""
    text = str(exc)
    for path, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, name)
    if text != str(exc):
        exc.args = (text,)
        if isinstance(exc, AudioError):
            exc.source = names.get(exc.source, exc.source)
    return exc


def turn_dict(t) -> dict:
    return {"start": t.start_s, "end": t.end_s, "speaker": t.speaker, "score": round(float(t.score), 4)}


class Service:
    """The CLI's operations, run one at a time on the identifier's own thread (``await service.call(...)``)."""

    def __init__(self, *, model=None, store=None, limits: Limits = Limits(), report=None):
        from concurrent.futures import ThreadPoolExecutor

        self.limits, self.report = limits, report
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fewshot-store")
        self.sid = self._pool.submit(self._load, model, store).result()

    @staticmethod
    def _load(model, store):
        from ..app import load_identifier

        return load_identifier(SimpleNamespace(model=model, store=store))

    async def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the identifier's thread."""
        import asyncio  # here: the fewshot command builds its parser from this module's Limits

        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.submit(self.sid.store.close).result()
        self._pool.shutdown()

    # ------------------------------------------------------------ groups
    def groups(self) -> list[dict]:
        return [
            {"name": g["name"], "members": g["speakers"], "extractor": g["extractor_id"]}
            for g in self.sid.store.groups()
        ]

    def group(self, group: str) -> dict:
        from ...store.upgrade import mapped_note

        store, model = self.sid.store, self.sid.extractor.model_id
        members = store.speakers(group)
        extractor = store.group_revision(group)[0]
        mapped = any(m.mapped_from for m in members)
        return {
            "name": group,
            "extractor": extractor,
            "model": model,
            "upgradable": extractor != model or (mapped and all(m.audio_kept for m in members)),
            "note": mapped_note(group, members) or None,
            "members": [
                {
                    "name": m.name,
                    "seconds": round(m.seconds, 1),
                    "segments": m.n_segments,
                    "sources": list(m.sources),
                    "audio_kept": m.audio_kept,
                    "mapped_from": m.mapped_from,
                }
                for m in members
            ],
        }

    def delete_group(self, group: str) -> dict:
        self.sid.store.delete_group(group)
        return {"deleted": group}

    def remove(self, group: str, name: str) -> dict:
        self.sid.store.remove_speaker(group, name)
        return {"removed": name, "group": group}

    def upgrade(self, group: str) -> dict:
        r = self.sid.upgrade(group)
        return {
            "group": group,
            "from": r["from"],
            "to": r["to"],
            "members": list(r["speakers"]),
            "seconds": round(r["seconds"], 1),
        }

    def classifier(self, group: str):
        return self.sid.classifier(group)

    # ------------------------------------------------------------ audio
    def enroll(
        self,
        group: str,
        name: str,
        sources,
        *,
        names: dict | None = None,
        replace: bool = False,
        force: bool = False,
        keep_audio: bool = False,
        warnings=(),
    ) -> dict:
        """Enroll from uploaded files (``names``: their temporary paths' upload names) or a recording (an array)."""
        names = names or {}
        try:
            for path in sources if names else []:  # uploads; a recording is as long as its socket allowed
                check_length(Path(path), names[str(path)], self.limits)
            res = self.sid.enroll(
                group,
                name,
                sources,
                replace=replace,
                force=force,
                keep_audio=keep_audio,
                sr_in=None if names else self.sid.extractor.feature_config.sr,
            )
        except (FewshotError, ValueError, OSError) as exc:
            raise renamed(exc, names) from None
        return {
            "group": group,
            "name": res.speaker,
            "seconds_used": round(res.seconds_used, 1),
            "seconds_available": round(res.seconds_available, 1),
            "segments": res.n_segments,
            "added": res.added,
            "total_seconds": round(res.total_seconds, 1),
            "warnings": [renamed(ValueError(w), names).args[0] for w in [*warnings, *res.warnings]],
        }

    def identify(self, group: str, path: Path, name: str) -> dict:
        """Who speaks in an uploaded file, and when: the CLI's ``identify --segments --json``, with its RTTM."""
        from ...turns.decoder import rttm_lines

        names = {str(path): name}
        try:
            self.sid.classifier(group)  # an unknown or empty group fails before the file is read
            check_length(path, name, self.limits)
            p = self.sid.identify(group, path, segments=True)
        except (FewshotError, ValueError, OSError) as exc:
            raise renamed(exc, names) from None
        return {
            "file": name,
            "speaker": p.label,
            "score": round(p.score, 4),
            "unknown": p.is_unknown,
            "nearest": p.nearest,
            "turns": [turn_dict(t) for t in p.segments],
            "rttm": "".join(f"{line}\n" for line in rttm_lines(p.segments, file_id=Path(name).stem)),
        }
