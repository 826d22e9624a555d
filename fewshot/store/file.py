"""The SQLite file under the enrollment store: checked before use, created private, shared safely.

- A path is used only when it is missing (a new store) or a SQLite file;
  anything else (a folder, a text file) is :class:`~fewshot.errors.NotAStoreError`
  and is left exactly as it was, mode included.
- A new store is written in full under a temporary name with mode 0600 and then
  linked into place, so no process ever sees a half-made store and no file
  fewshot did not create has its mode changed.
- The journal is WAL: readers go on while a writer works (an enrollment, the
  VACUUM after a deletion). A writer waits up to ``timeout_s`` for another,
  retrying its transaction (never the work that prepared it); past that, the
  wait ends in :class:`~fewshot.errors.StoreBusyError`.
- :func:`purge` leaves nothing deleted in the file or its WAL: ``secure_delete``
  zeroes freed content, VACUUM rewrites the file, and a TRUNCATE checkpoint
  copies the result into the file and empties the WAL.
- The tables, their migrations and opening a store are in :mod:`fewshot.store.schema`.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NotAStoreError, StoreBusyError, StoreFullError, StoreReadOnlyError

#: How long a command waits for another process's write before it gives up (seconds).
BUSY_TIMEOUT_S = 60.0
_MAGIC = b"SQLite format 3\x00"


class _Connection(sqlite3.Connection):
    """A connection that reports a lock, a full disk and a read-only file as the store's own errors."""

    store_path = ""
    timeout_s = BUSY_TIMEOUT_S
    #: Opened read-only, because the file, its folder or its disk cannot be written.
    read_only = False

    def execute(self, *args):
        with _store_errors(self):
            return super().execute(*args)

    def executemany(self, *args):
        with _store_errors(self):
            return super().executemany(*args)


@contextmanager
def _store_errors(db: _Connection):
    try:
        yield
    except sqlite3.OperationalError as exc:
        code = result_code(exc)
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise StoreBusyError(
                f"{db.store_path}: busy: another process has been using the store for over "
                f"{db.timeout_s:g} s; try again"
            ) from exc
        if code == sqlite3.SQLITE_FULL:
            raise StoreFullError(
                f"{db.store_path}: the disk is full ({exc}); nothing was changed: free some space and try again"
            ) from exc
        if code == sqlite3.SQLITE_READONLY:
            raise read_only_error(db.store_path) from exc
        raise


def read_only_error(path) -> StoreReadOnlyError:
    return StoreReadOnlyError(
        f"{path}: the store is read-only (its file, folder or disk cannot be written): it can "
        "be read (identify, groups list and show), not changed"
    )


def result_code(exc: sqlite3.OperationalError) -> int | None:
    """The primary SQLite result code of ``exc``."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    text = str(exc)
    for prefix, code in (
        ("database is locked", sqlite3.SQLITE_BUSY),
        ("database table is locked", sqlite3.SQLITE_LOCKED),
        ("database or disk is full", sqlite3.SQLITE_FULL),
        ("attempt to write a readonly database", sqlite3.SQLITE_READONLY),
    ):
        if text.startswith(prefix):
            return code
    return None


def exists(path: Path) -> bool:
    """Whether ``path`` holds a SQLite file (``False`` for a missing path).

    Raises
    ------
    NotAStoreError
        When ``path`` exists but is not a SQLite file.
    """
    if not os.path.lexists(path):
        return False
    try:
        with open(path, "rb") as f:
            header = f.read(len(_MAGIC))
    except IsADirectoryError:
        raise NotAStoreError(f"{path}: not a fewshot store") from None
    except OSError as exc:
        raise NotAStoreError(f"{path}: cannot read the store ({exc.strerror})") from None
    if header != _MAGIC:
        raise NotAStoreError(f"{path}: not a fewshot store")
    return True


def connect(path: Path, *, timeout_s: float, read_only: str = "") -> sqlite3.Connection:
    """A connection to the existing SQLite file ``path`` that waits up to ``timeout_s`` for locks.

    ``read_only``: ``"ro"`` opens it for reading only; ``"immutable"`` also without the WAL's shared-memory
    file, for a file on a read-only disk or in a read-only folder (nobody can write it there);
    ``"exclusive"`` opens it for this process alone, with the WAL's index in memory rather than in a
    shared-memory file (for a full disk, which has no room for that file).
    """
    if read_only in ("ro", "immutable"):
        from urllib.parse import quote

        query = "mode=ro" if read_only == "ro" else "mode=ro&immutable=1"
        db = sqlite3.connect(
            f"file:{quote(os.path.abspath(path))}?{query}",
            uri=True,
            timeout=timeout_s,
            isolation_level=None,
            factory=_Connection,
        )
        db.read_only = True
    else:
        db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, factory=_Connection)
        if read_only == "exclusive":
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.store_path, db.timeout_s = str(path), timeout_s
    add_collations(db)
    return db


def add_collations(db: sqlite3.Connection) -> None:
    """``COLLATE NAME``: names compared as :func:`fewshot.names.name_key` compares them."""
    from ..names import compare

    db.create_collation("NAME", compare)


def writable(path: Path) -> bool:
    """Whether ``path`` and its folder can be written (``False`` on a read-only disk, even for root)."""
    return os.access(path, os.W_OK) and os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


@dataclass(frozen=True)
class Source:
    """Where enrollment speech came from. ``audio`` is kept only on request (16 kHz float32)."""

    file_name: str
    sha256: str
    seconds_used: float
    audio: np.ndarray | None = None


@dataclass(frozen=True)
class SpeakerInfo:
    """A member of a group; ``mapped_from`` is the extractor their voiceprints were mapped from, if any."""

    name: str
    seconds: float
    n_segments: int
    sources: tuple[str, ...]
    audio_kept: bool
    mapped_from: str | None = None


def default_store_path() -> Path:
    """``$FEWSHOT_HOME/enrollments.sqlite``, or the user's data directory."""
    import os

    home = os.environ.get("FEWSHOT_HOME")
    if not home:
        from platformdirs import user_data_dir

        home = user_data_dir("fewshot")
    return Path(home) / "enrollments.sqlite"


def create(path: Path, schema: str) -> None:
    """Make ``path`` a new SQLite file (mode 0600, WAL) holding ``schema``, unless it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o600)
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(schema)
        finally:
            db.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made the store first: use theirs
        except OSError:  # a file system without hard links
            if not os.path.lexists(path):
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
            if os.path.lexists(leftover):
                os.unlink(leftover)


def write(db: sqlite3.Connection, work, *, timeout_s: float, journal: str = "WAL"):
    """Run ``work()`` in one ``BEGIN IMMEDIATE`` transaction and return its result.

    A transaction that meets a lock is rolled back and run again until
    ``timeout_s`` has passed; any other error rolls it back and is raised.
    ``journal``: the journal mode to write in (``"MEMORY"``: in place, for a full disk).

    Raises
    ------
    StoreReadOnlyError
        For a store opened read-only, before ``work`` runs.
    StoreFullError
        When the disk is full (the transaction is rolled back).
    """
    if getattr(db, "read_only", False):
        raise read_only_error(db.store_path)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute(f"PRAGMA journal_mode = {journal}")
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result
        except StoreBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def delete(db: sqlite3.Connection, work, *, timeout_s: float) -> None:
    """Run the deletion ``work()`` in one transaction, then :func:`purge`; on a full disk too.

    When the disk is too full for the WAL to grow, the WAL is emptied into the
    file and the deletion made in place (an in-memory journal: a crash during it
    could damage the store, the price of freeing space on a full disk), with
    ``secure_delete`` zeroing what it frees; the file is vacuumed only if there
    is room for it.

    Raises
    ------
    StoreFullError
        When even that cannot be written (nothing is deleted then).
    """
    try:
        write(db, work, timeout_s=timeout_s)
    except StoreFullError:
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            write(db, work, timeout_s=timeout_s, journal="MEMORY")
        except StoreFullError as exc:
            raise StoreFullError(
                f"{db.store_path}: the disk is full, and even deleting in place could not be "
                "written; nothing was deleted: free some space and try again"
            ) from exc
        try:
            purge(db)
        except StoreFullError:
            pass  # deleted and zeroed in place; the file is compacted by the next deletion with room for it
        return
    purge(db)


def purge(db: sqlite3.Connection) -> None:
    """After a deletion: rewrite the file and empty the WAL, so no deleted byte remains in either.

    Raises
    ------
    StoreBusyError
        When readers kept the WAL in use for longer than the busy timeout.
    """
    db.execute("VACUUM")
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:
        raise StoreBusyError(
            f"{db.store_path}: busy: the deletion is done, but other processes kept reading for "
            f"over {db.timeout_s:g} s, so {db.store_path}-wal still holds old pages; they are "
            "cleared when the last process using the store exits"
        )
