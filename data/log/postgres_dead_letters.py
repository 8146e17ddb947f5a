"""The dead-letter store on PostgreSQL (``AME_PUBSUB_DEAD_LETTER_STORE=postgresql://…``): input that failed
validation on append, kept with its raw bytes and the reason, in one table that every producer of a cluster
shares (the same columns and the same de-duplication on the raw bytes' SHA-256 as the SQLite log's table).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Protocol

from psycopg_pool import ConnectionPool

from data.log.base import DeadLetter, LogStats, RejectedInput, from_micros
from data.log.sqlite import SqliteEventLog
from data.postgres_db import is_postgres_url, open_pool, pooled, redacted


class DeadLetterStore(Protocol):
    """Where rejected input goes, and how it is listed, re-driven and counted."""

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int: ...

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]: ...

    def mark_redriven(self, letter_id: int, position: int | None) -> None: ...

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None: ...

    def dead_letter_counts(self) -> tuple[int, int]: ...

    def stats(self) -> LogStats: ...

    def close(self) -> None: ...


def open_dead_letter_store(url: str, busy_timeout_ms: int = 60_000) -> DeadLetterStore:
    """The dead-letter store at ``url``: ``postgresql://…``, or the dead-letter table of a SQLite log file."""
    if is_postgres_url(url):
        return PostgresDeadLetterStore(url)
    return SqliteEventLog(url, busy_timeout_ms=busy_timeout_ms)


class ForwardsDeadLetters:
    """The :class:`~data.log.base.DeadLetters` methods of a log whose dead letters live in a store of their own
    (``self._letters``): the Pub/Sub log's and the PostgreSQL log's."""

    _letters: DeadLetterStore

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int:
        return self._letters.dead_letter(rejected)

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]:
        return self._letters.dead_letters(status, limit)

    def mark_redriven(self, letter_id: int, position: int | None) -> None:
        self._letters.mark_redriven(letter_id, position)

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None:
        self._letters.update_dead_letter(letter_id, raw, reason)

    def dead_letter_counts(self) -> tuple[int, int]:
        """(pending, redriven) dead letters, from the dead-letter store."""
        return self._letters.dead_letter_counts()


class PostgresDeadLetterStore:
    """Dead letters in PostgreSQL (thread-safe: pooled connections)."""

    def __init__(self, url: str, pool: ConnectionPool | None = None) -> None:
        """:param pool: a pool on ``url`` to share (its owner closes it); by default one of its own."""
        self.url = url
        self._what = f"the dead-letter store {redacted(url)}"
        self._owns_pool = pool is None
        self._pool = pool or open_pool(url, self._what)

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int:
        """Store ``rejected``; input already stored (same raw bytes) is counted as seen again. Returns how many
        letters are new."""
        if not rejected:
            return 0
        now = time.time_ns() // 1000
        new = 0
        with pooled(self._pool, self._what, transaction=True) as conn:
            for r in rejected:
                row = conn.raw.execute(
                    "insert into dead_letters (received_at_us, last_seen_at_us, source, line, raw, raw_sha256, reason,"
                    " event_id) values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict (raw_sha256) do update set"
                    " times_seen = dead_letters.times_seen + 1, last_seen_at_us = excluded.last_seen_at_us,"
                    " source = excluded.source, line = excluded.line, reason = excluded.reason"
                    " returning (xmax = 0)",  # true when the row was inserted, not updated
                    (now, now, r.source, r.line, r.raw, hashlib.sha256(r.raw).hexdigest(), r.reason, r.event_id),
                ).fetchone()
                new += bool(row[0])
        return new

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]:
        where, args = ("where status = %s", (status,)) if status else ("", ())
        with pooled(self._pool, self._what, transaction=False) as conn:
            rows = conn.raw.execute(
                "select id, received_at_us, source, line, raw, reason, status, times_seen, event_id, position"
                f" from dead_letters {where} order by id limit %s", (*args, limit)).fetchall()
        return [DeadLetter(id=r[0], received_at=from_micros(r[1]), source=r[2], line=r[3], raw=bytes(r[4]), reason=r[5],
                           status=r[6], times_seen=r[7], event_id=r[8], position=r[9]) for r in rows]

    def mark_redriven(self, letter_id: int, position: int | None) -> None:
        with pooled(self._pool, self._what, transaction=True) as conn:
            conn.raw.execute("update dead_letters set status = 'redriven', position = %s, redriven_at_us = %s"
                             " where id = %s", (position, time.time_ns() // 1000, letter_id))

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None:
        """Record a failed re-drive: the (possibly corrected) raw bytes and the new reason; the first raw
        bytes are kept in ``replaced_raw``."""
        with pooled(self._pool, self._what, transaction=True) as conn:
            conn.raw.execute(
                "update dead_letters set replaced_raw = coalesce(replaced_raw, case when raw <> %s then raw end),"
                " raw = %s, reason = %s where id = %s", (raw, raw, reason, letter_id))

    def dead_letter_counts(self) -> tuple[int, int]:
        """(pending, redriven) dead letters."""
        with pooled(self._pool, self._what, transaction=False) as conn:
            letters = dict(conn.raw.execute("select status, count(*) from dead_letters group by status").fetchall())
        return int(letters.get("pending", 0)), int(letters.get("redriven", 0))

    def stats(self) -> LogStats:
        """The dead letters' counts (this store holds no events)."""
        pending, redriven = self.dead_letter_counts()
        return LogStats(events=0, first_position=0, last_position=0, dead_letters_pending=pending,
                        dead_letters_redriven=redriven)

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()
