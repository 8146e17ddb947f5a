"""The production state store (``postgresql://…``): tracking records, projections, snapshots and agent state
in one PostgreSQL database that every node of a cluster shares (Cloud SQL or AlloyDB on Google Cloud).

The tables come from the versioned migrations (:mod:`data.postgres_migrations`), applied when the store
opens. Transactions are PostgreSQL's (read committed); a consumer's state and its tracking record commit in one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from data.postgres_db import PgConnection, open_pool, pooled, redacted
from data.projections.state_base import StateStore


class PostgresStateStore(StateStore):
    """The shared state store on PostgreSQL (thread-safe: each transaction takes a connection of the pool).

    :param url: ``postgresql://user:password@host:port/database`` (libpq's parameters may follow ``?``).
    """

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._what = f"the state store {redacted(url)}"
        self._pool = open_pool(url, self._what)
        self._reader = PgConnection(self._pool.getconn())  # the connection read() hands out
        self._read_lock = threading.Lock()

    def transaction(self) -> AbstractContextManager[PgConnection]:
        return pooled(self._pool, self._what, transaction=True)

    @contextmanager
    def reading(self) -> Iterator[PgConnection]:
        with pooled(self._pool, self._what, transaction=False) as conn:
            yield conn

    def read(self) -> PgConnection:
        return self._reader

    def close(self) -> None:
        with self._read_lock:
            if not self._pool.closed:
                self._pool.putconn(self._reader.raw)
                self._pool.close()
