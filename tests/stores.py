"""What a store holds, row by row, for tests that check nothing was changed."""

import sqlite3

TABLES = ("groups", "speakers", "sources", "embeddings")


def snapshot(path, tables=TABLES) -> dict:
    """Every row of ``tables`` of the SQLite store at ``path``, in id order."""
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}
    finally:
        db.close()
