"""The tables of the enrollment store: its schema, the migrations of older stores, and opening one.

The tables are :data:`SCHEMA`; a store of an older schema is brought up to
date by :data:`MIGRATIONS` when it is opened, in one transaction. A store that
cannot be written is opened for reading only (:func:`open_store`).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import IncompatibleModelError, NotAStoreError
from .file import connect, read_only_error, result_code, writable, write

#: The version of :data:`SCHEMA`; older stores are brought to it by :data:`MIGRATIONS` when opened.
SCHEMA_VERSION = 4

#: The tables of a store. ``speakers.mapped_from`` is the id of the extractor whose
#: embeddings were mapped into the group's (:mod:`fewshot.model.align`), or NULL for a
#: person embedded by the group's extractor itself; ``embeddings.copy`` marks
#: degraded copies of the enrollment speech (multi-condition enrollment); ``fits`` holds
#: each group's fitted SVM (:mod:`fewshot.groups.fitted`) with the digest of the rows it was fitted on,
#: and is emptied for a group in the same transaction as any change of its members.
_FITS = """
CREATE TABLE IF NOT EXISTS fits (
    group_id INTEGER PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
    revision INTEGER NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS fits_follow_members AFTER UPDATE OF revision, extractor_id ON groups
BEGIN DELETE FROM fits WHERE group_id = NEW.id; END;
"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, extractor_id TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS speakers (
    id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    name TEXT NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL, mapped_from TEXT,
    UNIQUE (group_id, name));
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY, speaker_id INTEGER NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL, sha256 TEXT NOT NULL, seconds_used REAL NOT NULL, audio BLOB);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY, speaker_id INTEGER NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
    vector BLOB NOT NULL, copy INTEGER NOT NULL DEFAULT 0);
{_FITS}
INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
"""

#: Statements that bring a store of the key's schema version to the next one.
MIGRATIONS = {
    1: "ALTER TABLE embeddings ADD COLUMN copy INTEGER NOT NULL DEFAULT 0",
    2: "ALTER TABLE speakers ADD COLUMN mapped_from TEXT",
    3: _FITS,
}


def _migrate(db, path: Path, version: int, schema_version: int) -> None:
    """Bring an older store up to ``schema_version``, one step at a time, in one transaction."""
    if version > schema_version or any(v not in MIGRATIONS for v in range(version, schema_version)):
        raise IncompatibleModelError(f"{path}: store schema {version}, this fewshot reads {schema_version}")

    def work():
        for v in range(version, schema_version):
            for statement in _statements(MIGRATIONS[v]):
                db.execute(statement)
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(schema_version),))

    write(db, work, timeout_s=db.timeout_s)
    if version < 4:
        remove_svm_cache_files()


def _statements(script: str) -> list[str]:
    """The statements of ``script``, each whole (a trigger's body included)."""
    out, current = [], ""
    for line in script.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out + ([current.strip()] if current.strip() else [])


def remove_svm_cache_files() -> None:
    """Delete the fitted SVMs fewshot once kept as files (``$FEWSHOT_HOME/cache/svm/*.npz``, or the
    user's cache folder): they hold voiceprints, and the store keeps the fits now."""
    home = os.environ.get("FEWSHOT_HOME")
    if home:
        folder = Path(home) / "cache" / "svm"
    else:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("fewshot")) / "svm"
    if not folder.is_dir() or folder.is_symlink():
        return
    for file in folder.iterdir():
        if file.name.endswith(".npz") and (file.is_symlink() or file.is_file()):
            file.unlink(missing_ok=True)
    for empty in (folder, folder.parent):
        try:
            empty.rmdir()
        except OSError:
            break


def open_store(path: Path, *, timeout_s: float, schema_version: int) -> sqlite3.Connection:
    """A connection to the fewshot store ``path``, with foreign keys and ``secure_delete`` on.

    Raises
    ------
    NotAStoreError
        When the file is a SQLite file without fewshot's tables.
    IncompatibleModelError
        For a store of another schema version.
    StoreReadOnlyError
        For a read-only store of an older schema, which cannot be brought up to date.

    A store that cannot be written (:func:`writable`) is opened for reading only.
    """
    modes = ("", "exclusive") if writable(path) else ("ro", "immutable")
    for mode in modes:
        db = connect(path, timeout_s=timeout_s, read_only=mode)
        try:
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            break
        except sqlite3.OperationalError as exc:
            db.close()
            retry = (sqlite3.SQLITE_IOERR,) if mode == "" else (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)
            if mode == modes[-1] or result_code(exc) not in retry:
                raise NotAStoreError(
                    f"{path}: not a fewshot store"
                    if mode in ("", "exclusive")
                    else f"{path}: the store is read-only and cannot be opened ({exc})"
                ) from None
        except sqlite3.DatabaseError:
            db.close()
            raise NotAStoreError(f"{path}: not a fewshot store") from None
    try:
        if row is None:
            raise NotAStoreError(f"{path}: not a fewshot store")
        if int(row[0]) != schema_version:
            if db.read_only:
                raise read_only_error(path)
            _migrate(db, path, int(row[0]), schema_version)
        missing = {"groups", "speakers", "sources", "embeddings", "fits"} - {
            n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if missing:
            raise NotAStoreError(f"{path}: not a fewshot store (no {', '.join(sorted(missing))} table)")
    except sqlite3.DatabaseError:
        db.close()
        raise NotAStoreError(f"{path}: not a fewshot store") from None
    except BaseException:
        db.close()
        raise
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA secure_delete = ON")
    return db
