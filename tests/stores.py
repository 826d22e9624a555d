"""What a store holds, row by row, for tests that check nothing was changed."""

import sqlite3

import numpy as np

TABLES = ("groups", "speakers", "sources", "embeddings")


def snapshot(path, tables=TABLES) -> dict:
    """Every row of ``tables`` of the SQLite store at ``path``, in id order."""
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}
    finally:
        db.close()


def old_store(path, version: int) -> None:
    """A store of schema ``version`` (1: no ``embeddings.copy``; 2: with it) holding group 'home' (extractor 'x')
    with one speaker 'ann' and one 4-d embedding."""
    copy = ", copy INTEGER NOT NULL DEFAULT 0" if version >= 2 else ""
    db = sqlite3.connect(path)
    db.executescript(f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, extractor_id TEXT NOT NULL,
                             revision INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
        CREATE TABLE speakers (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL REFERENCES groups(id)
                               ON DELETE CASCADE, name TEXT NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL,
                               UNIQUE (group_id, name));
        CREATE TABLE sources (id INTEGER PRIMARY KEY, speaker_id INTEGER NOT NULL REFERENCES speakers(id)
                              ON DELETE CASCADE, file_name TEXT NOT NULL, sha256 TEXT NOT NULL,
                              seconds_used REAL NOT NULL, audio BLOB);
        CREATE TABLE embeddings (id INTEGER PRIMARY KEY, speaker_id INTEGER NOT NULL REFERENCES speakers(id)
                                 ON DELETE CASCADE, vector BLOB NOT NULL{copy});
        INSERT INTO meta VALUES ('schema_version', '{version}');
        INSERT INTO groups VALUES (1, 'home', 'x', 1, 0);
        INSERT INTO speakers VALUES (1, 1, 'ann', 15.0, 0);
    """)
    db.execute("INSERT INTO embeddings (speaker_id, vector) VALUES (1, ?)", (np.ones(4, np.float32).tobytes(),))
    db.commit()
    db.close()
