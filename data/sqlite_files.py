"""What every SQLite file of the engine needs first: its path from a URL, and WAL mode.

A leaf module (it imports nothing of the engine), so the stores below the event log (the privacy key store)
and the log itself share it without importing each other.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///relative/path or sqlite:////abs/path)")
    rest = url[len("sqlite:///") :]
    if not rest:
        raise ValueError(f"the SQLite URL {url!r} names no file")
    return Path(rest)  # "sqlite:////abs" leaves "/abs", "sqlite:///rel" leaves "rel"


def enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switch a new file to WAL mode. Two processes opening the same new file race for the exclusive lock this
    needs, and SQLite answers the loser "database is locked" at once (no busy wait), so retry, bounded."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            conn.execute("pragma journal_mode = wal")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
