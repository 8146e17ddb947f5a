"""The log's history read back from the warehouse's ``raw_events``: the replay source of a log without positions.

A Pub/Sub log keeps no positions, so whatever folds the whole history (the lead retrain, the drift check) reads it
from ``raw_events`` instead, which the BigQuery subscription or ``ame warehouse load`` fills. :func:`raw_events`
turns rows back into the log's :class:`~data.log.base.StoredEvent` (the inverse of :func:`data.warehouse.rows.raw_row`)
in ``(occurred_at, event_id)`` order, a page at a time (keyset paging: each page starts after the last row of the
one before). An event delivered twice appears once. ``position`` is the row's ordinal in that order (1, 2, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from data.log.base import StoredEvent
from data.warehouse.base import Warehouse
from data.warehouse.project import parse_warehouse_url


@dataclass(frozen=True, slots=True)
class RawDialect:
    """How one engine names ``raw_events`` and turns its timestamps and JSON into the log's integers and text."""

    table: str
    micros: str  # format with a column: its TIMESTAMP as integer microseconds
    timestamp: str  # format with an integer: microseconds as a TIMESTAMP literal
    text: str  # format with a column: its JSON as text
    backslash_escapes: bool  # BigQuery escapes a quote in a string literal with a backslash, DuckDB doubles it

    def quoted(self, text: str) -> str:
        """``text`` as a string literal of this engine."""
        if self.backslash_escapes:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"


def dialect_of(warehouse: Warehouse) -> RawDialect:
    """The SQL of ``warehouse``'s engine (DuckDB or BigQuery, from its URL)."""
    target = parse_warehouse_url(warehouse.url)
    if target.engine == "bigquery":
        return RawDialect(f"`{target.project}.{warehouse.dataset}.raw_events`", "UNIX_MICROS({})",
                          "TIMESTAMP_MICROS({})", "TO_JSON_STRING({})", True)
    return RawDialect(f"{warehouse.dataset}.raw_events", "epoch_us({})", "make_timestamp({})", "CAST({} AS VARCHAR)", False)


def page_sql(d: RawDialect, event_types: Sequence[str] | None, after: tuple[int, str] | None, limit: int) -> str:
    """One page of rows after ``after`` = (occurred_at in µs, event_id), in (occurred_at, event_id) order."""
    where = []
    if event_types is not None:
        where.append(f"event_type IN ({', '.join(d.quoted(t) for t in event_types)})")
    if after is not None:
        at, event_id = d.timestamp.format(int(after[0])), d.quoted(after[1])
        where.append(f"(occurred_at > {at} OR (occurred_at = {at} AND event_id > {event_id}))")
    recorded = f"COALESCE({d.micros.format('recorded_at')}, {d.micros.format('occurred_at')})"
    return (f"SELECT event_id, event_type, customer_id, {d.micros.format('occurred_at')}, {recorded}, source, "
            f"schema_version, causation_id, {d.text.format('properties')} FROM {d.table}"
            + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY occurred_at, event_id LIMIT {int(limit)}")


def raw_events(warehouse: Warehouse, event_types: Sequence[str] | None = None, page: int = 50_000) -> Iterator[StoredEvent]:
    """Every event of ``event_types`` (all when None) in ``raw_events``, as the log's rows, in (occurred_at,
    event_id) order, ``page`` rows per query."""
    if page < 1:
        raise ValueError(f"page must be at least 1, got {page}")
    if event_types is not None and not event_types:
        return
    d, after, ordinal, last_id = dialect_of(warehouse), None, 0, None
    while True:
        rows = warehouse.query(page_sql(d, event_types, after, page)).rows
        for event_id, kind, customer, at_us, recorded_us, source, version, cause, props in rows:
            if event_id == last_id:  # a duplicate delivery: same id, same time, so adjacent in this order
                continue
            ordinal, last_id = ordinal + 1, event_id
            yield StoredEvent(ordinal, event_id, kind, customer, int(at_us), int(recorded_us), source or "",
                              int(version if version is not None else 1), cause, props or "{}")
        if len(rows) < page:
            return
        after = (int(rows[-1][3]), str(rows[-1][0]))
