"""Where consumers keep what they derive: tracking records (committed positions) and snapshots.

A consumer writes its derived state and its new position in one transaction of this store, so a crash
followed by a replay never applies an event twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from data.log.sqlite import connect, sqlite_path, write_transaction
from data.settings import get_settings

_SCHEMA = """
create table if not exists tracking (
    consumer        text primary key,
    position        integer not null,
    updated_at_us   integer not null
);
create table if not exists snapshots (
    consumer        text    not null,
    position        integer not null,
    state           blob    not null,
    state_hash      text    not null,
    created_at_us   integer not null,
    primary key (consumer, position)
)
"""


@dataclass(frozen=True, slots=True)
class Snapshot:
    consumer: str
    position: int
    state: bytes
    state_hash: str


@dataclass(frozen=True, slots=True)
class ConsumerPosition:
    consumer: str
    position: int
    updated_at_us: int


class SqliteStateStore:
    """The embedded state store (``sqlite:///path``), shared by the projections of one deployment."""

    def __init__(self, url: str, busy_timeout_ms: int = 60_000) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._conn = connect(self.path, busy_timeout_ms)
        self._lock = threading.RLock()
        with self.transaction() as conn:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction: everything done on the connection commits together, or not at all."""
        return write_transaction(self._conn, self._lock, f"the state store {self.path}")

    def read(self) -> sqlite3.Connection:
        """The connection, for reads outside a transaction (call under no other thread's transaction)."""
        return self._conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads, held by this thread alone until the block ends (no other thread's
        transaction or read interleaves)."""
        with self._lock:
            yield self._conn

    # -- consumer groups --------------------------------------------------------------------------------

    def position(self, consumer: str) -> int:
        with self._lock:
            row = self._conn.execute("select position from tracking where consumer = ?", (consumer,)).fetchone()
        return row[0] if row else 0

    @staticmethod
    def commit_position(conn: sqlite3.Connection, consumer: str, position: int) -> None:
        """Write the tracking record inside the caller's transaction."""
        conn.execute(
            "insert into tracking (consumer, position, updated_at_us) values (?, ?, ?) on conflict(consumer)"
            " do update set position = excluded.position, updated_at_us = excluded.updated_at_us",
            (consumer, position, time.time_ns() // 1000),
        )

    def positions(self) -> list[ConsumerPosition]:
        with self._lock:
            rows = self._conn.execute("select consumer, position, updated_at_us from tracking order by consumer")
            return [ConsumerPosition(*r) for r in rows]

    # -- snapshots --------------------------------------------------------------------------------------

    @staticmethod
    def save_snapshot(conn: sqlite3.Connection, consumer: str, position: int, state: bytes, state_hash: str) -> None:
        conn.execute(
            "insert or replace into snapshots (consumer, position, state, state_hash, created_at_us)"
            " values (?, ?, ?, ?, ?)",
            (consumer, position, zlib.compress(state, 3), state_hash, time.time_ns() // 1000),
        )

    def latest_snapshot(self, consumer: str, at_most: int | None = None) -> Snapshot | None:
        with self._lock:
            row = self._conn.execute(
                "select position, state, state_hash from snapshots where consumer = ? and position <= ?"
                " order by position desc limit 1",
                (consumer, at_most if at_most is not None else 2**62),
            ).fetchone()
        return Snapshot(consumer, row[0], zlib.decompress(row[1]), row[2]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_state_store(url: str | None = None) -> SqliteStateStore:
    """Open the state store at ``url`` (default: ``AME_STATE_STORE``, else ``sqlite:///.ame/state.db``)."""
    settings = get_settings()
    url = url or settings.state_store_url()
    if not url.startswith("sqlite:///"):
        raise ValueError(f"unknown state store URL {url!r}: expected sqlite:///path")
    return SqliteStateStore(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
