"""The enrollment store: groups, speakers and their segment embeddings, in SQLite.

Every change is one transaction, so an error half-way through an enrollment
leaves the store as it was. Voiceprints are personal data: the file is created
readable by its owner only, deletions overwrite the freed pages
(``PRAGMA secure_delete``) and the file is vacuumed, so a removed speaker's
embeddings are gone from the file, not just flagged. Reading never creates the
file (sharing: :mod:`fewshot.store.file`; tables: :mod:`fewshot.store.schema`). Names
go through :func:`fewshot.names.normalize_name` and are looked up by key
(``COLLATE NAME``, :func:`fewshot.names.name_key`): the first spelling is kept.
"""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import numpy as np

from ..errors import DuplicateAudioError, IncompatibleModelError, NotEnrolledError
from ..names import normalize_name
from . import file
from .file import Source, SpeakerInfo, default_store_path
from .schema import SCHEMA, SCHEMA_VERSION, open_store


class EnrollmentStore:
    """Groups of enrolled speakers in one SQLite file.

    Parameters
    ----------
    path : path, optional
        The database file (default :func:`default_store_path`). Created, with
        mode 0600, by the first enrollment; until then the store reads as empty.
    busy_timeout_s : float, optional
        How long to wait for another process's write (default
        :data:`fewshot.store.file.BUSY_TIMEOUT_S`).

    Raises
    ------
    NotAStoreError
        When ``path`` exists but is not a fewshot store; it is left untouched.
    """

    def __init__(self, path=None, *, busy_timeout_s: float | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        self.busy_timeout_s = file.BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self._db = self._empty = None
        if file.exists(self.path):
            self._open()

    def _open(self) -> None:
        self._db = open_store(self.path, timeout_s=self.busy_timeout_s, schema_version=SCHEMA_VERSION)

    def _read(self) -> sqlite3.Connection:
        """The file's connection, or an empty in-memory store while there is no file."""
        if self._db is None and file.exists(self.path):
            self._open()
        if self._db is not None:
            return self._db
        if self._empty is None:
            self._empty = sqlite3.connect(":memory:")
            file.add_collations(self._empty)
            self._empty.executescript(SCHEMA)
        return self._empty

    def _write(self, work):
        """``work()`` in one write transaction, creating the file first when there is none."""
        if self._read() is self._empty:
            file.create(self.path, SCHEMA)
            self._open()
        return file.write(self._db, work, timeout_s=self.busy_timeout_s)

    def close(self) -> None:
        for db in (self._db, self._empty):
            if db is not None:
                db.close()
        self._db = self._empty = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ reading
    def groups(self) -> list[dict]:
        """Every group: name, extractor id, revision and its speakers' names."""
        db = self._read()
        rows = db.execute("SELECT id, name, extractor_id, revision FROM groups ORDER BY name").fetchall()
        return [
            {
                "name": n,
                "extractor_id": e,
                "revision": r,
                "speakers": [
                    s for (s,) in db.execute("SELECT name FROM speakers WHERE group_id=? ORDER BY name", (i,))
                ],
            }
            for i, n, e, r in rows
        ]

    def _group(self, group: str):
        """``(id, extractor_id, revision)`` of ``group`` (a normalised name)."""
        row = (
            self._read()
            .execute(
                "SELECT id, extractor_id, revision FROM groups WHERE name=? COLLATE NAME ORDER BY name=? DESC",
                (group, group),
            )
            .fetchone()
        )  # an exact spelling first
        if row is None:
            known = ", ".join(g["name"] for g in self.groups()) or "none yet"
            raise NotEnrolledError(f"no group named {group!r} (groups: {known})")
        return row

    def group_revision(self, group: str) -> tuple[str, int]:
        """``(extractor_id, revision)``; the revision changes whenever members change."""
        _, extractor_id, revision = self._group(normalize_name(group, kind="group"))
        return extractor_id, revision

    def speakers(self, group: str) -> list[SpeakerInfo]:
        db, gid = self._read(), self._group(normalize_name(group, kind="group"))[0]
        out = []
        rows = db.execute(
            "SELECT id, name, seconds, mapped_from FROM speakers WHERE group_id=? ORDER BY name", (gid,)
        ).fetchall()
        for sid, name, seconds, mapped_from in rows:
            n = db.execute("SELECT COUNT(*) FROM embeddings WHERE speaker_id=? AND copy=0", (sid,)).fetchone()[0]
            src = db.execute("SELECT file_name, audio IS NOT NULL FROM sources WHERE speaker_id=?", (sid,)).fetchall()
            out.append(
                SpeakerInfo(
                    name, seconds, n, tuple(s for s, _ in src), bool(src) and all(k for _, k in src), mapped_from
                )
            )
        return out

    def embeddings(self, group: str, *, extractor_id: str, copies: bool = False):
        """Segment embeddings of every speaker of ``group``.

        Returns
        -------
        X : np.ndarray [shape=(n_segments, dim)]
        y : np.ndarray of str [shape=(n_segments,)]
        is_copy : np.ndarray of bool [shape=(n_segments,)]
            Only with ``copies``: rows from degraded copies of the enrollment
            speech (multi-condition enrollment), which are otherwise left out.

        Raises
        ------
        IncompatibleModelError
            When the group was enrolled with another extractor.
        """
        group = normalize_name(group, kind="group")
        gid, group_extractor, _ = self._group(group)
        _check_extractor(group, group_extractor, extractor_id)
        rows = (
            self._read()
            .execute(
                "SELECT s.name, e.vector, e.copy FROM embeddings e JOIN speakers s ON s.id=e.speaker_id "
                "WHERE s.group_id=? AND (? OR e.copy=0) ORDER BY s.name, e.id",
                (gid, copies),
            )
            .fetchall()
        )
        if not rows:
            raise NotEnrolledError(f"group {group!r} has no enrolled speakers")
        X, y = np.stack([np.frombuffer(v, np.float32) for _, v, _ in rows]), np.array([n for n, _, _ in rows])
        return (X, y, np.array([bool(c) for _, _, c in rows])) if copies else (X, y)

    def kept_audio(self, group: str, speaker: str) -> list[np.ndarray]:
        """Enrollment audio kept with ``keep_audio`` (16 kHz float32), for re-embedding."""
        gid = self._group(normalize_name(group, kind="group"))[0]
        rows = (
            self._read()
            .execute(
                "SELECT so.audio FROM sources so JOIN speakers s ON s.id=so.speaker_id "
                "WHERE s.group_id=? AND s.name=? COLLATE NAME AND so.audio IS NOT NULL",
                (gid, normalize_name(speaker, kind="person")),
            )
            .fetchall()
        )
        return [np.load(io.BytesIO(a)) for (a,) in rows]

    # ------------------------------------------------------------------ writing
    def enroll(
        self,
        group: str,
        speaker: str,
        embeddings: np.ndarray,
        *,
        extractor_id: str,
        sources: list[Source],
        replace: bool = False,
        copies: np.ndarray | None = None,
    ) -> tuple[bool, float]:
        """Store ``speaker``'s segment embeddings in ``group`` (created if new), in one transaction.

        With ``replace``, the speaker's earlier enrollment is dropped; otherwise
        the new segments are added to it. ``copies`` are the embeddings of
        degraded copies of the same speech (multi-condition enrollment).

        Returns
        -------
        added : bool
            Whether the segments were added to an earlier enrollment of ``speaker``.
        seconds : float
            The speaker's seconds of enrollment speech, now.

        Raises
        ------
        DuplicateAudioError
            For a source whose SHA-256 is already enrolled for ``speaker`` (or given twice).
        """
        E = np.ascontiguousarray(embeddings, dtype=np.float32)
        C = np.zeros((0, E.shape[-1]), np.float32) if copies is None else np.ascontiguousarray(copies, np.float32)
        for A in (E, C):
            if A.ndim != 2 or not np.all(np.isfinite(A)) or A.shape[1] != E.shape[1]:
                raise ValueError(f"embeddings must be finite (n, dim) arrays, given shape {A.shape}")
        if len(E) == 0:
            raise ValueError("no embeddings to enroll")
        group, speaker = normalize_name(group, kind="group"), normalize_name(speaker, kind="person")
        return self._write(lambda: self._enroll(group, speaker, E, C, extractor_id, sources, replace))

    def _enroll(self, group, speaker, E, C, extractor_id, sources, replace) -> tuple[bool, float]:
        db = self._db
        row = db.execute(
            "SELECT id, extractor_id FROM groups WHERE name=? COLLATE NAME ORDER BY name=? DESC", (group, group)
        ).fetchone()
        if row is None:
            gid = db.execute(
                "INSERT INTO groups (name, extractor_id, created) VALUES (?, ?, ?)", (group, extractor_id, time.time())
            ).lastrowid
        else:
            gid = row[0]
            _check_extractor(group, row[1], extractor_id)
        srow = db.execute(
            "SELECT id FROM speakers WHERE group_id=? AND name=? COLLATE NAME ORDER BY name=? DESC",
            (gid, speaker, speaker),
        ).fetchone()
        if srow is not None and replace:
            db.execute("DELETE FROM speakers WHERE id=?", (srow[0],))
            srow = None
        self._check_new_audio(None if srow is None else srow[0], sources, group=group, speaker=speaker)
        seconds = sum(s.seconds_used for s in sources)
        if srow is None:
            sid = db.execute(
                "INSERT INTO speakers (group_id, name, seconds, created) VALUES (?,?,?,?)",
                (gid, speaker, seconds, time.time()),
            ).lastrowid
        else:
            sid = srow[0]
            db.execute("UPDATE speakers SET seconds = seconds + ? WHERE id=?", (seconds, sid))
        for s in sources:
            blob = None
            if s.audio is not None:
                buf = io.BytesIO()
                np.save(buf, np.asarray(s.audio, np.float32))
                blob = buf.getvalue()
            db.execute(
                "INSERT INTO sources (speaker_id, file_name, sha256, seconds_used, audio) VALUES (?,?,?,?,?)",
                (sid, s.file_name, s.sha256, s.seconds_used, blob),
            )
        db.executemany(
            "INSERT INTO embeddings (speaker_id, vector, copy) VALUES (?, ?, ?)",
            [(sid, e.tobytes(), 0) for e in E] + [(sid, c.tobytes(), 1) for c in C],
        )
        db.execute("UPDATE groups SET revision = revision + 1 WHERE id=?", (gid,))
        total = db.execute("SELECT seconds FROM speakers WHERE id=?", (sid,)).fetchone()[0]
        return srow is not None, float(total)

    def _check_new_audio(self, speaker_id, sources, *, group: str, speaker: str) -> None:
        """Refuse a source whose audio the speaker already has, or that is given twice."""
        enrolled = {h for (h,) in self._db.execute("SELECT sha256 FROM sources WHERE speaker_id=?", (speaker_id,))}
        given = set()
        for s in sources:
            if s.sha256 in enrolled:
                raise DuplicateAudioError(
                    s.file_name, f"already enrolled for {speaker!r} in group {group!r}; use --replace to start over"
                )
            if s.sha256 in given:
                raise DuplicateAudioError(s.file_name, "the same audio is given twice")
            given.add(s.sha256)

    def rewrite_group(
        self,
        group: str,
        *,
        extractor_id: str,
        embeddings: dict,
        mapped_from: str | None = None,
        expect: tuple[str, int] | None = None,
    ) -> bool:
        """Replace every member's embeddings and the group's extractor, in one transaction.

        ``embeddings`` maps each member's name to ``(E, copies)`` (``copies`` may be ``None``); every
        member must be there, so a group never mixes two extractors. Kept audio and sources stay.
        ``mapped_from`` is recorded for every member: the extractor whose embeddings were mapped into
        ``extractor_id``'s space, or ``None`` when ``extractor_id`` made them. With ``expect``, an
        ``(extractor_id, revision)`` of :meth:`group_revision`, nothing is written (and ``False`` is
        returned) when another process changed the group since.
        """
        group = normalize_name(group, kind="group")
        gid = self._group(group)[0]

        def work():
            if expect is not None and self._db.execute(
                "SELECT extractor_id, revision FROM groups WHERE id=?", (gid,)
            ).fetchone() != tuple(expect):
                return False
            names = {n for (n,) in self._db.execute("SELECT name FROM speakers WHERE group_id=?", (gid,))}
            if names != set(embeddings):
                raise ValueError(f"group {group!r}: embeddings for {sorted(embeddings)}, members {sorted(names)}")
            for name, (E, C) in embeddings.items():
                sid = self._db.execute("SELECT id FROM speakers WHERE group_id=? AND name=?", (gid, name)).fetchone()[0]
                self._db.execute("DELETE FROM embeddings WHERE speaker_id=?", (sid,))
                rows = [(sid, e.tobytes(), 0) for e in np.asarray(E, np.float32)]
                rows += [(sid, c.tobytes(), 1) for c in np.asarray(C if C is not None else [], np.float32)]
                self._db.executemany("INSERT INTO embeddings (speaker_id, vector, copy) VALUES (?, ?, ?)", rows)
            self._db.execute(
                "UPDATE groups SET extractor_id=?, revision = revision + 1 WHERE id=?", (extractor_id, gid)
            )
            self._db.execute("UPDATE speakers SET mapped_from=? WHERE group_id=?", (mapped_from, gid))
            return True

        if self._write(work):
            file.purge(self._db)
            return True
        return False

    def remove_speaker(self, group: str, speaker: str) -> None:
        """Delete ``speaker`` and every embedding and kept audio of theirs from ``group``."""
        group, speaker = normalize_name(group, kind="group"), normalize_name(speaker, kind="person")
        gid = self._group(group)[0]

        def work():
            n = self._db.execute(
                "DELETE FROM speakers WHERE id = (SELECT id FROM speakers WHERE group_id=? AND "
                "name=? COLLATE NAME ORDER BY name=? DESC LIMIT 1)",
                (gid, speaker, speaker),
            ).rowcount
            if n == 0:
                raise NotEnrolledError(f"group {group!r} has no speaker named {speaker!r}")
            self._db.execute("UPDATE groups SET revision = revision + 1 WHERE id=?", (gid,))

        file.delete(self._db, work, timeout_s=self.busy_timeout_s)

    def delete_group(self, group: str) -> None:
        """Delete ``group`` with all its speakers, embeddings and kept audio."""
        gid = self._group(normalize_name(group, kind="group"))[0]
        file.delete(
            self._db, lambda: self._db.execute("DELETE FROM groups WHERE id=?", (gid,)), timeout_s=self.busy_timeout_s
        )


def _check_extractor(group: str, stored: str, given: str) -> None:
    if stored != given:  # SpeakerIdentifier says what to do about it (see fewshot.store.upgrade)
        raise IncompatibleModelError(f"group {group!r} was enrolled with extractor {stored}, not {given}")
