"""The event log on PostgreSQL (``postgresql://user@host/database``): for clusters that run off Google Cloud.

It holds the same events with the same meaning as the embedded SQLite log: the same columns (migration 6 of
:mod:`data.postgres_migrations`), the properties as the same JSON text (``text``, not ``jsonb``, so a read
returns the bytes written; jsonb would re-order keys), the timestamps as microseconds since the Unix epoch (UTC).
Dead letters go to the ``dead_letters`` table that the Pub/Sub producers' store uses
(:class:`~data.log.postgres_dead_letters.PostgresDeadLetterStore`, by composition).

**Gap-free positions: a table lock.** An append takes ``lock table events in exclusive mode`` for its
transaction, reads the head, and numbers its new events head+1, head+2, ... A ``bigserial`` would not do:
two writers draw 10 and 11, the one holding 11 commits first, and a reader that saw 11 moves past 10 for good
(or a rolled-back draw leaves a hole). Under the lock, positions are allocated and committed in one order, so
everything up to a visible head is visible, and a reader never skips an event. The lock blocks only other
writers (EXCLUSIVE mode lets plain reads through); appends are batched, so one lock serves a whole batch.
A table lock rather than an advisory lock: it belongs to the schema's table, so logs in different schemas of
one database never wait for each other.

**Waking readers.** Each append sends ``NOTIFY ame_events`` with its last position in its transaction, so the
message arrives on commit; :meth:`PostgresEventLog.wait` listens on a connection of its own and re-reads the
head on every message (a message from another schema's log only costs a re-read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Self

import psycopg

from data.events import EventBase, validate_event
from data.hotpath import cyclic_gc_paused
from data.log.base import (
    AppendResult,
    E,
    LogStats,
    LogUnavailable,
    ReadBatch,
    ReplayEvent,
    StoredEvent,
    check_read,
)
from data.log.postgres_dead_letters import ForwardsDeadLetters, PostgresDeadLetterStore
from data.log.sqlite import SCAN_FACTOR, EventRow, event_rows
from data.postgres_db import PgConnection, PostgresUnavailable, open_pool, pooled, redacted
from data.sharding import BROADCAST_CUSTOMER, Shard

__all__ = ["CHANNEL", "PostgresEventLog"]

CHANNEL = "ame_events"
"""The NOTIFY channel of appends (payload: the append's last position)."""

_COLUMNS = ", ".join(StoredEvent._fields).replace("properties_json", "properties")
_COPY = f"copy events (position, {', '.join(EventRow._fields)}) from stdin"
_HEAD = "select coalesce(max(position), 0) from events"
_make_event: Callable[[Any], StoredEvent] = partial(tuple.__new__, StoredEvent)
_make_replay_event: Callable[[Any], ReplayEvent] = partial(tuple.__new__, ReplayEvent)


class PostgresEventLog(ForwardsDeadLetters):
    """The PostgreSQL backend: an :class:`~data.log.base.EventSink`, :class:`~data.log.base.PositionalReader`
    and :class:`~data.log.base.DeadLetters` store (thread-safe: pooled connections). Its dead letters are the
    cluster's ``dead_letters`` table (:class:`ForwardsDeadLetters`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._what = f"the event log {redacted(url)}"
        try:
            self._pool = open_pool(url, self._what)
            self._letters = PostgresDeadLetterStore(url, pool=self._pool)
        except PostgresUnavailable as error:
            raise LogUnavailable(str(error)) from None
        self._listener: psycopg.Connection[Any] | None = None
        self._listen_lock = threading.Lock()

    @contextmanager
    def _conn(self, transaction: bool = False) -> Iterator[PgConnection]:
        """A pooled connection (one transaction when ``transaction``); an unreachable server is a
        :class:`LogUnavailable`, as for every backend."""
        try:
            with pooled(self._pool, self._what, transaction) as conn:
                yield conn
        except PostgresUnavailable as error:
            raise LogUnavailable(str(error)) from None

    # -- events -----------------------------------------------------------------------------------------

    def append(self, events: Iterable[EventBase | Mapping[str, Any]]) -> AppendResult:
        """Append the new events at the next positions, all in one transaction (see the module on the lock)."""
        now = time.time_ns() // 1000
        validated = [e if isinstance(e, EventBase) else validate_event(dict(e)) for e in events]
        with cyclic_gc_paused():
            rows = event_rows(validated, now)
        if not rows:
            return AppendResult(appended=0, duplicates=0, last_position=self.head())
        with self._conn(transaction=True) as conn:
            conn.raw.execute("lock table events in exclusive mode")
            head = conn.raw.execute(_HEAD).fetchone()[0]
            new = _new_rows(rows, _stored_ids(conn.raw, rows))
            if new:
                with conn.raw.cursor().copy(_COPY) as copy:
                    for position, row in enumerate(new, start=head + 1):
                        copy.write_row((position, *row))
                conn.raw.execute("select pg_notify(%s, %s)", (CHANNEL, str(head + len(new))))
        return AppendResult(appended=len(new), duplicates=len(rows) - len(new), last_position=head + len(new))

    def read(
        self, after: int = 0, limit: int = 1000, event_types: Sequence[str] | None = None, shard: Shard | None = None
    ) -> ReadBatch[StoredEvent]:
        return self._select(_COLUMNS, (), _make_event, after, limit, event_types, shard)

    def replay(
        self,
        after: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        properties_of: Collection[str] = (),
        shard: Shard | None = None,
    ) -> ReadBatch[ReplayEvent]:
        wanted = sorted(set(properties_of))
        props = "case when event_type = any(%s) then properties end" if wanted else "null::text"
        columns = f"position, event_type, customer_id, occurred_at_us, {props}"
        return self._select(columns, (wanted,) if wanted else (), _make_replay_event, after, limit, event_types, shard)

    def _select(
        self,
        columns: str,
        column_args: tuple[Any, ...],
        make: Callable[[Any], E],
        after: int,
        limit: int,
        event_types: Sequence[str] | None,
        shard: Shard | None,
    ) -> ReadBatch[E]:
        """The SQLite log's read, in SQL of this server: a filtered read scans a bounded window of positions
        and moves past it even when nothing there matched."""
        check_read(limit, shard)
        with self._conn() as conn:
            if not event_types and shard is None:
                rows = conn.raw.execute(f"select {columns} from events where position > %s order by position limit %s",
                                        (*column_args, after, limit)).fetchall()
                return ReadBatch(list(map(make, rows)), rows[-1][0] if rows else after)
            where, args = _filters(event_types, shard)
            upper = min(after + limit * SCAN_FACTOR, conn.raw.execute(_HEAD).fetchone()[0])
            rows = conn.raw.execute(
                f"select {columns} from events where position > %s and position <= %s{where} order by position limit %s",
                (*column_args, after, upper, *args, limit)).fetchall()
        next_after = rows[-1][0] if len(rows) == limit else max(upper, after)
        return ReadBatch(list(map(make, rows)), next_after)

    def head(self) -> int:
        with self._conn() as conn:
            return int(conn.raw.execute(_HEAD).fetchone()[0])

    def wait(self, after: int, timeout_s: float) -> int:
        """Sleep on ``LISTEN ame_events`` until the head passes ``after`` or ``timeout_s`` runs out."""
        deadline = time.monotonic() + timeout_s
        with self._listen_lock:
            listener = self._listening()
            while (head := self.head()) <= after and (left := deadline - time.monotonic()) > 0:
                for _ in listener.notifies(timeout=left, stop_after=1):
                    pass
        return head

    def _listening(self) -> psycopg.Connection[Any]:
        """The connection that listens for appends, opened on the first wait (LISTEN before the head is read, so
        no append between the two is missed)."""
        if self._listener is None or self._listener.closed:
            try:
                self._listener = psycopg.connect(self.url, autocommit=True)
                self._listener.execute(f"listen {CHANNEL}")
            except psycopg.OperationalError as error:
                raise LogUnavailable(f"cannot listen for appends to {self._what}: {error}") from None
        return self._listener

    # -- introspection ----------------------------------------------------------------------------------

    def stats(self) -> LogStats:
        with self._conn() as conn:
            first, last, count = conn.raw.execute(
                "select coalesce(min(position), 0), coalesce(max(position), 0), count(*) from events").fetchone()
            by_type = dict(conn.raw.execute(
                "select event_type, count(*) from events group by event_type order by 2 desc").fetchall())
            size = conn.raw.execute("select pg_total_relation_size('events')").fetchone()[0]
        pending, redriven = self._letters.dead_letter_counts()
        return LogStats(events=int(count), first_position=int(first), last_position=int(last), by_type=by_type,
                        dead_letters_pending=pending, dead_letters_redriven=redriven, size_bytes=int(size))

    def close(self) -> None:
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
        self._letters.close()
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stored_ids(conn: psycopg.Connection[Any], rows: Sequence[EventRow]) -> set[str]:
    """The event ids of ``rows`` that the log already holds."""
    found = conn.execute("select event_id from events where event_id = any(%s)", ([r.event_id for r in rows],))
    return {r[0] for r in found}


def _new_rows(rows: Sequence[EventRow], stored: set[str]) -> list[EventRow]:
    """The rows to insert: not stored yet, and each event id once (the first, as SQLite's ``insert or ignore``)."""
    seen = set(stored)
    new: list[EventRow] = []
    for row in rows:
        if row.event_id not in seen:
            seen.add(row.event_id)
            new.append(row)
    return new


def _filters(event_types: Sequence[str] | None, shard: Shard | None) -> tuple[str, list[Any]]:
    """The ``where`` clause (and its arguments) of a read filtered by type and by shard."""
    where, args = "", []
    if event_types:
        where += " and event_type = any(%s)"
        args.append(sorted(set(event_types)))
    if shard is not None:
        where += " and (customer_hash %% %s = %s or customer_id = %s)"
        args += [shard.count, shard.index, BROADCAST_CUSTOMER]
    return where, args
