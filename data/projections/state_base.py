"""What every state store offers, and the SQL they share (written once: ``?`` parameters, ``on conflict``).

A store hands out connections with sqlite3's calling convention (``execute(sql, params)`` with ``?``
parameters); on PostgreSQL that is :class:`data.postgres_db.PgConnection`. A consumer writes its derived state
and its new position in one :meth:`StateStore.transaction`, so a crash followed by a replay never applies an
event twice.
"""

from __future__ import annotations

import time
import zlib
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any


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


class StateStore(ABC):
    """Tracking records and snapshots on one backend; projections and agent state keep their tables in it."""

    url: str
    dialect: str
    """``sqlite`` or ``postgresql``: which DDL a table's owner runs (on PostgreSQL the migrations made the tables)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """One write transaction: everything done on the connection commits together, or not at all."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Any]:
        """A connection for reads, for the length of the block."""

    @abstractmethod
    def read(self) -> Any:
        """A connection for reads outside a transaction, owned by the store (one thread at a time)."""

    @abstractmethod
    def close(self) -> None: ...

    # -- consumer groups --------------------------------------------------------------------------------

    def position(self, consumer: str) -> int:
        with self.reading() as conn:
            row = conn.execute("select position from tracking where consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def commit_position(conn: Any, consumer: str, position: int) -> None:
        """Write the tracking record inside the caller's transaction."""
        conn.execute(
            "insert into tracking (consumer, position, updated_at_us) values (?, ?, ?) on conflict(consumer)"
            " do update set position = excluded.position, updated_at_us = excluded.updated_at_us",
            (consumer, position, time.time_ns() // 1000),
        )

    def positions(self) -> list[ConsumerPosition]:
        with self.reading() as conn:
            rows = conn.execute("select consumer, position, updated_at_us from tracking order by consumer").fetchall()
        return [ConsumerPosition(*r) for r in rows]

    # -- snapshots --------------------------------------------------------------------------------------

    @staticmethod
    def save_snapshot(conn: Any, consumer: str, position: int, state: bytes, state_hash: str) -> None:
        conn.execute(
            "insert into snapshots (consumer, position, state, state_hash, created_at_us) values (?, ?, ?, ?, ?)"
            " on conflict(consumer, position) do update set state = excluded.state,"
            " state_hash = excluded.state_hash, created_at_us = excluded.created_at_us",
            (consumer, position, zlib.compress(state, 3), state_hash, time.time_ns() // 1000),
        )

    def latest_snapshot(self, consumer: str, at_most: int | None = None) -> Snapshot | None:
        with self.reading() as conn:
            row = conn.execute(
                "select position, state, state_hash from snapshots where consumer = ? and position <= ?"
                " order by position desc limit 1",
                (consumer, at_most if at_most is not None else 2**62),
            ).fetchone()
        return Snapshot(consumer, row[0], zlib.decompress(row[1]), row[2]) if row else None
