"""The embedded event log: one SQLite file in WAL mode, safe for several processes at once.

It stores events as they are given: personal data is encrypted before it gets here, by the
:class:`~data.privacy.encrypting_log.EncryptingLog` that :func:`data.log.open_log` wraps every backend in.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from data.events import EventBase, validate_event
from data.hotpath import cyclic_gc_paused
from data.log.base import (
    EPOCH,
    ONE_MICROSECOND,
    AppendResult,
    DeadLetter,
    E,
    LogStats,
    LogUnavailable,
    ReadBatch,
    RejectedInput,
    ReplayEvent,
    StoredEvent,
    check_read,
    from_micros,
    properties_default,
    properties_json,
    to_micros,
)
from data.settings import get_settings
from data.sharding import BROADCAST_CUSTOMER, Shard, customer_hash
from data.sqlite_files import enable_wal, sqlite_path

__all__ = ["SCAN_FACTOR", "SCHEMA", "EventRow", "SqliteEventLog", "connect", "enable_wal", "event_row", "event_rows", "insert_sql",
           "sqlite_path", "write_transaction"]

SCHEMA = """
create table if not exists events (
    position        integer primary key,
    event_id        text    not null,
    event_type      text    not null,
    customer_id     text    not null,
    occurred_at_us  integer not null,
    recorded_at_us  integer not null,
    source          text    not null,
    schema_version  integer not null,
    causation_id    text,
    properties      text    not null,
    customer_hash   integer not null
);
create unique index if not exists ux_events_event_id on events(event_id);
create table if not exists dead_letters (
    id               integer primary key,
    received_at_us   integer not null,
    last_seen_at_us  integer not null,
    source           text    not null,
    line             integer,
    raw              blob    not null,
    raw_sha256       text    not null unique,
    reason           text    not null,
    event_id         text,
    status           text    not null default 'pending',
    times_seen       integer not null default 1,
    position         integer,
    redriven_at_us   integer,
    replaced_raw     blob
);
create index if not exists ix_dead_letters_status on dead_letters(status, id);
"""

_SHARD_FILTER = "(customer_hash % ? = ? or customer_id = ?)"
_COLUMNS = ", ".join(StoredEvent._fields).replace("properties_json", "properties")
"""The columns of a full read, in :class:`StoredEvent`'s order."""


class EventRow(NamedTuple):
    """One row of the ``events`` table as :meth:`SqliteEventLog.append` inserts it (every column but the position)."""

    event_id: str
    event_type: str
    customer_id: str
    occurred_at_us: int
    recorded_at_us: int
    source: str
    schema_version: int
    causation_id: str | None
    properties: str
    customer_hash: int


def insert_sql(table: str = "events") -> str:
    """The idempotent insert of :class:`EventRow` s into ``table`` (a row whose ``event_id`` is stored is skipped)."""
    return (f"insert or ignore into {table} ({', '.join(EventRow._fields)}) "
            f"values ({', '.join('?' * len(EventRow._fields))})")


_INSERT = insert_sql()
_make_event = StoredEvent._make
# ReplayEvent._make and EventRow._make without a Python frame per row (a full replay converts millions of rows)
_make_replay_event: Callable[[Any], ReplayEvent] = partial(tuple.__new__, ReplayEvent)
_make_row: Callable[[tuple[Any, ...]], EventRow] = partial(tuple.__new__, EventRow)
SCAN_FACTOR = 16  # a filtered read scans at most limit * this many positions before returning (every backend)


@contextmanager
def write_transaction(conn: sqlite3.Connection, lock: AbstractContextManager[Any], what: str) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction on ``conn`` under ``lock``: everything done inside commits together, or
    not at all. A lock still held by another process after the busy timeout is a :class:`LogUnavailable`."""
    with lock:
        try:
            conn.execute("begin immediate")
        except sqlite3.OperationalError as error:
            raise LogUnavailable(f"{what} is locked: {error}") from None
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("rollback")
            raise
        else:
            conn.execute("commit")


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection in WAL mode with the pragmas every writer and reader of our files shares."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
        conn.execute(f"pragma busy_timeout = {int(busy_timeout_ms)}")
        enable_wal(conn, busy_timeout_ms)
        conn.execute("pragma synchronous = normal")
        conn.execute("pragma cache_size = -131072")
        conn.execute("pragma wal_autocheckpoint = 20000")
        conn.execute("pragma temp_store = memory")
        conn.execute("pragma mmap_size = 1073741824")
    except sqlite3.Error as error:
        raise LogUnavailable(f"cannot open SQLite file {path}: {error}") from None
    return conn


def event_row(event: EventBase, recorded_at_us: int) -> EventRow:
    """The stored row of an event."""
    return EventRow(event.event_id, event.event_type, event.customer_id, to_micros(event.occurred_at), recorded_at_us,
                    event.source, event.schema_version, event.causation_id, properties_json(event),
                    customer_hash(event.customer_id))


def event_rows(events: Sequence[EventBase], recorded_at_us: int) -> list[EventRow]:
    """:func:`event_row` for a batch, in one tight loop: this runs once per appended event, so it reads each
    model's fields straight from its ``__dict__`` (the same values, about 25% faster)."""
    rows: list[EventRow] = []
    add, make, dumps, default, hash_of = rows.append, _make_row, orjson.dumps, properties_default, customer_hash
    for event in events:
        d = event.__dict__
        customer = d["customer_id"]
        add(make((d["event_id"], d["event_type"], customer, (d["occurred_at"] - EPOCH) // ONE_MICROSECOND,
                  recorded_at_us, d["source"], d["schema_version"], d["causation_id"],
                  dumps(d["properties"].__dict__, default=default).decode(), hash_of(customer))))
    return rows


class SqliteEventLog:
    """The embedded backend (``sqlite:///path``): an :class:`~data.log.base.EventSink`,
    :class:`~data.log.base.PositionalReader` and :class:`~data.log.base.DeadLetters` store."""

    def __init__(self, url: str, busy_timeout_ms: int = 60_000) -> None:
        self.url = url
        self._poll_s = get_settings().log_wait_poll_s
        self.path = sqlite_path(url)
        self._conn = connect(self.path, busy_timeout_ms)
        self._lock = threading.Lock()
        self._ensure_schema()

    # -- plumbing ---------------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        try:
            with self._write() as conn:
                for statement in filter(str.strip, SCHEMA.split(";")):
                    conn.execute(statement)
                self._add_customer_hash(conn)
        except sqlite3.Error as error:
            raise LogUnavailable(f"cannot create the event log schema in {self.path}: {error}") from None

    @staticmethod
    def _add_customer_hash(conn: sqlite3.Connection) -> None:
        """Upgrade a log written before events carried their shard hash (inside the schema transaction)."""
        columns = {row[1] for row in conn.execute("pragma table_info(events)")}
        if "customer_hash" in columns:
            return
        conn.execute("alter table events add column customer_hash integer not null default 0")
        customers = [row[0] for row in conn.execute("select distinct customer_id from events")]
        conn.executemany("update events set customer_hash = ? where customer_id = ?", [(customer_hash(c), c) for c in customers])

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._conn, self._lock, f"the event log {self.path}")

    # -- events -----------------------------------------------------------------------------------------

    def append(self, events: Iterable[EventBase | Mapping[str, Any]]) -> AppendResult:
        now = time.time_ns() // 1000
        validated = [e if isinstance(e, EventBase) else validate_event(dict(e)) for e in events]
        with cyclic_gc_paused():
            rows = event_rows(validated, now)
        if not rows:
            return AppendResult(appended=0, duplicates=0, last_position=self.head())
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT, rows)
            appended = conn.total_changes - before
            last = conn.execute("select max(position) from events").fetchone()[0] or 0
        return AppendResult(appended=appended, duplicates=len(rows) - appended, last_position=last)

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
        props = f"case when event_type in ({','.join('?' * len(wanted))}) then properties end" if wanted else "null"
        columns = f"position, event_type, customer_id, occurred_at_us, {props}"
        return self._select(columns, tuple(wanted), _make_replay_event, after, limit, event_types, shard)

    def _select(
        self,
        columns: str,
        column_args: tuple[Any, ...],
        make: Callable[[Any], E],
        after: int,
        limit: int,
        event_types: Sequence[str] | None,
        shard: Shard | None = None,
    ) -> ReadBatch[E]:
        check_read(limit, shard)
        if not event_types and shard is None:
            with self._lock:
                rows = self._conn.execute(
                    f"select {columns} from events where position > ? order by position limit ?",
                    (*column_args, after, limit),
                ).fetchall()
            return ReadBatch(list(map(make, rows)), rows[-1][0] if rows else after)
        rows, upper = self._select_filtered(columns, column_args, after, limit, event_types, shard)
        next_after = rows[-1][0] if len(rows) == limit else max(upper, after)
        return ReadBatch(list(map(make, rows)), next_after)

    def _select_filtered(
        self, columns: str, column_args: tuple[Any, ...], after: int, limit: int, event_types: Sequence[str] | None,
        shard: Shard | None,
    ) -> tuple[list[Any], int]:
        """The rows of some types or of one shard, scanning at most ``limit * SCAN_FACTOR`` positions; and the
        last position scanned (a consumer moves past it even when nothing there matched)."""
        where, args = "", []
        if event_types:
            types = sorted(set(event_types))
            where += f" and event_type in ({','.join('?' * len(types))})"
            args += types
        if shard is not None:
            where += f" and {_SHARD_FILTER}"
            args += [shard.count, shard.index, BROADCAST_CUSTOMER]
        with self._lock:
            self._conn.execute("begin")
            try:
                head = self._conn.execute("select coalesce(max(position), 0) from events").fetchone()[0]
                upper = min(after + limit * SCAN_FACTOR, head)
                rows = self._conn.execute(
                    f"select {columns} from events where position > ? and position <= ?{where} order by position limit ?",
                    (*column_args, after, upper, *args, limit),
                ).fetchall()
            finally:
                self._conn.execute("commit")
        return rows, upper

    def head(self) -> int:
        with self._lock:
            return self._conn.execute("select coalesce(max(position), 0) from events").fetchone()[0]

    def wait(self, after: int, timeout_s: float) -> int:
        """Poll the head every ``AME_LOG_WAIT_POLL_S`` until it passes ``after`` or ``timeout_s`` runs out."""
        deadline = time.monotonic() + timeout_s
        while (head := self.head()) <= after and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(self._poll_s, left))
        return head

    # -- dead letters -----------------------------------------------------------------------------------

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int:
        if not rejected:
            return 0
        now = time.time_ns() // 1000
        rows = [
            (now, now, r.source, r.line, r.raw, hashlib.sha256(r.raw).hexdigest(), r.reason, r.event_id)
            for r in rejected
        ]
        with self._write() as conn:
            before = conn.execute("select count(*) from dead_letters").fetchone()[0]
            conn.executemany(
                "insert into dead_letters (received_at_us, last_seen_at_us, source, line, raw, raw_sha256, reason,"
                " event_id) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict(raw_sha256) do update set"
                " times_seen = times_seen + 1, last_seen_at_us = excluded.last_seen_at_us,"
                " source = excluded.source, line = excluded.line, reason = excluded.reason",
                rows,
            )
            after = conn.execute("select count(*) from dead_letters").fetchone()[0]
        return after - before

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]:
        where, args = ("where status = ?", (status,)) if status else ("", ())
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = sqlite3.Row
            rows = cursor.execute(
                "select id, received_at_us, source, line, raw, reason, status, times_seen, event_id, position"
                f" from dead_letters {where} order by id limit ?",
                (*args, limit),
            ).fetchall()
        return [
            DeadLetter(id=r["id"], received_at=from_micros(r["received_at_us"]), source=r["source"], line=r["line"],
                       raw=bytes(r["raw"]), reason=r["reason"], status=r["status"], times_seen=r["times_seen"],
                       event_id=r["event_id"], position=r["position"])
            for r in rows
        ]

    def mark_redriven(self, letter_id: int, position: int | None) -> None:
        with self._write() as conn:
            conn.execute(
                "update dead_letters set status = 'redriven', position = ?, redriven_at_us = ? where id = ?",
                (position, time.time_ns() // 1000, letter_id),
            )

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None:
        """Record a failed re-drive: the (possibly corrected) raw bytes and the new reason; the first raw
        bytes are kept in ``replaced_raw``."""
        with self._write() as conn:
            conn.execute(
                "update dead_letters set replaced_raw = coalesce(replaced_raw, case when raw != ? then raw end),"
                " raw = ?, reason = ? where id = ?",
                (raw, raw, reason, letter_id),
            )

    # -- introspection ----------------------------------------------------------------------------------

    def dead_letter_counts(self) -> tuple[int, int]:
        """(pending, redriven) dead letters: the part of :meth:`stats` a metrics scrape needs, read from the
        status index alone (stats counts every event, seconds on a large log)."""
        with self._lock:
            letters = dict(self._conn.execute("select status, count(*) from dead_letters group by status"))
        return letters.get("pending", 0), letters.get("redriven", 0)

    def stats(self) -> LogStats:
        with self._lock:
            first, last, count = self._conn.execute(
                "select coalesce(min(position), 0), coalesce(max(position), 0), count(*) from events"
            ).fetchone()
            by_type = dict(
                self._conn.execute("select event_type, count(*) from events group by event_type order by 2 desc")
            )
            letters = dict(self._conn.execute("select status, count(*) from dead_letters group by status"))
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return LogStats(
            events=count, first_position=first, last_position=last, by_type=by_type,
            dead_letters_pending=letters.get("pending", 0), dead_letters_redriven=letters.get("redriven", 0),
            size_bytes=size,
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
