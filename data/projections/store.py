"""Where consumers keep what they derive: tracking records (committed positions) and snapshots.

A consumer writes its derived state and its new position in one transaction of this store, so a crash
followed by a replay never applies an event twice. The URL picks the backend: ``sqlite:///path`` (embedded,
one machine) or ``postgresql://…`` (:class:`~data.projections.postgres_store.PostgresStateStore`, shared by
a cluster).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from data.log.sqlite import connect, sqlite_path, write_transaction
from data.postgres_db import is_postgres_url
from data.projections.postgres_store import PostgresStateStore
from data.projections.state_base import ConsumerPosition, Snapshot, StateStore
from data.settings import get_settings

__all__ = ["ConsumerPosition", "PostgresStateStore", "Snapshot", "SqliteStateStore", "StateStore", "open_state_store"]

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


class SqliteStateStore(StateStore):
    """The embedded state store (``sqlite:///path``), shared by the projections of one deployment."""

    dialect = "sqlite"

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

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_state_store(url: str | None = None) -> StateStore:
    """Open the state store at ``url`` (default: ``AME_STATE_STORE``, else ``sqlite:///.ame/state.db``)."""
    settings = get_settings()
    url = url or settings.state_store_url()
    if is_postgres_url(url):
        return PostgresStateStore(url)
    if not url.startswith("sqlite:///"):
        raise ValueError(f"unknown state store URL {url!r}: expected sqlite:///path or postgresql://user@host/database")
    return SqliteStateStore(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
