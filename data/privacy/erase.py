"""Right to erasure and right of access for one customer.

Erasure is crypto-shredding plus a sweep of the copies: the ``customer_erased`` event is appended, the
customer's key is deleted (every encrypted property of theirs in the log now reads as erased, in every replay),
and the plaintext that reached other files is removed: the log's dead letters and legacy rows, the state store,
and the warehouse, whose rows are anonymized, not deleted, so counts and revenue still reconcile.

On a Pub/Sub log (``pubsub://``) the messages were published with their PII encrypted, so deleting the key
shreds every retained message and every copy of one (dead-letter topic, BigQuery subscription); the topic is not
scrubbed (it cannot be rewritten, and holds no plaintext). The values to sweep the copies with are then gathered
from the copies themselves, by customer id: the state store's rows keyed by the customer and the warehouse.
"""

from __future__ import annotations

import getpass
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from data.events import (
    CustomerErased,
    CustomerErasedProperties,
    DataAccessed,
    DataAccessedProperties,
    new_event_id,
)
from data.log import open_log
from data.log.base import from_micros
from data.log.sqlite import sqlite_path
from data.postgres_db import PostgresUnavailable, is_postgres_url, redacted
from data.privacy.bigquery_scrub import pii_in_bigquery, scrub_bigquery
from data.privacy.codec import FieldCodec, codec_for_log
from data.privacy.errors import UnsupportedForErasure
from data.privacy.postgres_scrub import pii_in_postgres, scrub_postgres
from data.privacy.registry import ERASED, PII_EVENT_TYPES, pii_fields
from data.privacy.scrub import (
    PiiValues,
    ScrubCount,
    pii_in_copies,
    scrub_duckdb,
    scrub_sqlite,
)
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.duckdb_backend import duckdb_path

PUBSUB_LOG_NOTE = (
    "not scrubbed: Pub/Sub messages hold the PII only as enc:v1 tokens, unreadable now that the key is deleted "
    "(crypto-shredding covers every retained message and any copy of one)"
)


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What one erasure did, file by file (no personal data in it)."""

    customer_id: str
    event_id: str
    key_deleted: bool
    pii_values: int
    log: ScrubCount | None
    state: ScrubCount
    warehouse: ScrubCount | None
    log_note: str | None = None
    """Why the log was not scrubbed (None: it was)."""
    dead_letters: ScrubCount | None = None
    """The Pub/Sub log's local dead-letter store (rejected input, plaintext); None on a SQLite log, whose
    dead letters are part of ``log``."""

    def to_dict(self) -> dict[str, Any]:
        def scrub(s: ScrubCount | None) -> dict[str, Any] | None:
            return None if s is None else {"cells": s.cells, "rows_redacted": s.rows_redacted, "wal_truncated": s.wal_truncated,
                                           **({"tables": dict(s.tables)} if s.tables else {})}

        return {"customer_id": self.customer_id, "event_id": self.event_id, "key_deleted": self.key_deleted,
                "pii_values": self.pii_values, "log": scrub(self.log), "log_note": self.log_note,
                "dead_letters": scrub(self.dead_letters), "state": scrub(self.state), "warehouse": scrub(self.warehouse)}


def _log_file(log_url: str) -> Path:
    if not log_url.startswith("sqlite:///"):
        raise UnsupportedForErasure(
            f"this reads the embedded SQLite log only; {log_url!r} is not one. Pub/Sub keeps no readable history: "
            "read the warehouse raw table (the replay source) instead. `ame privacy erase` works on both."
        )
    return sqlite_path(log_url)


_ROW_COLUMNS = "position, event_id, event_type, occurred_at_us, source, properties, recorded_at_us, causation_id"


def customer_rows(log_url: str, customer_id: str, pii_only: bool = False) -> list[tuple]:
    """The customer's stored rows (position, event_id, event_type, occurred_at_us, source, properties), by scan."""
    if is_postgres_url(log_url):
        return _postgres_customer_rows(log_url, customer_id, pii_only)
    path = _log_file(log_url)
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        where = f" and event_type in ({','.join('?' * len(PII_EVENT_TYPES))})" if pii_only else ""
        return conn.execute(
            f"select {_ROW_COLUMNS} from events where customer_id = ?{where} order by position",
            (customer_id, *(sorted(PII_EVENT_TYPES) if pii_only else ())),
        ).fetchall()
    finally:
        conn.close()


def _postgres_customer_rows(log_url: str, customer_id: str, pii_only: bool) -> list[tuple]:
    """The same rows from a ``postgresql://`` log (its events table has the SQLite log's columns)."""
    where = " and event_type = any(%s)" if pii_only else ""
    params: tuple[Any, ...] = (customer_id, sorted(PII_EVENT_TYPES)) if pii_only else (customer_id,)
    try:
        with psycopg.connect(log_url) as conn:
            if conn.execute("select to_regclass('events')").fetchone()[0] is None:
                return []  # nothing appended yet
            return conn.execute(f"select {_ROW_COLUMNS} from events where customer_id = %s{where} order by position",
                                params).fetchall()
    except psycopg.OperationalError as error:
        raise PostgresUnavailable(f"cannot reach the event log {redacted(log_url)}: {error}") from None


def gather_pii(log_url: str, customer_id: str, codec: FieldCodec) -> PiiValues:
    """The customer's plaintext PII values (decrypted while the key still exists), to sweep copies with."""
    fields: list[tuple[str, Any]] = []
    for row in customer_rows(log_url, customer_id, pii_only=True):
        props = codec.reveal(row[2], customer_id, orjson.loads(row[5]), erased=None)
        fields += [(name, props.get(name)) for name in pii_fields(row[2])]
    return PiiValues.of(fields)


def erase_customer(
    customer_id: str,
    log_url: str,
    state_url: str | None = None,
    warehouse_url: str | None = None,
    requested_by: str | None = None,
    reason: str | None = None,
) -> ErasureReport:
    """Erase one customer (see the module docstring); safe to run again.

    :param customer_id: the customer.
    :param log_url: the event log: ``sqlite:///`` or ``postgresql://`` (scrubbed too) or ``pubsub://`` (key deleted, topic not
        scrubbed: see the module docstring; the local dead-letter store is swept).
    :param state_url: the state store (``sqlite:///`` or ``postgresql://``), swept for copies; None: skipped.
    :param warehouse_url: the warehouse, anonymized: a DuckDB file (then rewritten; nothing else may hold it
        open) or ``bigquery://project/dataset`` (DML on every table, per table in the report); None: skipped.
    :param requested_by: who asked (recorded on the event).
    :param reason: why (recorded on the event; no personal data).
    """
    on_pubsub = log_url.startswith("pubsub://")
    log_pg = log_url if is_postgres_url(log_url) else None
    log_path = None if on_pubsub or log_pg else _erasable_log_file(log_url)
    on_bigquery = bool(warehouse_url and warehouse_url.startswith("bigquery://"))
    warehouse_path = _warehouse_file(warehouse_url) if warehouse_url and not on_bigquery else None
    state_pg = state_url if state_url and is_postgres_url(state_url) else None
    state_path = sqlite_path(state_url) if state_url and not state_pg else None
    codec = codec_for_log(log_url)
    try:
        values = pii_in_copies(customer_id, codec, state_path, warehouse_path) if on_pubsub else gather_pii(log_url, customer_id, codec)
        if on_pubsub and (state_pg or on_bigquery):
            extra = PiiValues.of((pii_in_postgres(state_pg, customer_id) if state_pg else [])
                                 + (_bigquery_pii(warehouse_url, customer_id, codec) if on_bigquery else []))
            values = PiiValues(values.distinctive | extra.distinctive, values.names | extra.names)
        had_key = codec.keys.keys([customer_id], create=False).get(customer_id) is not None
        requested_by = requested_by or f"cli:{getpass.getuser()}"
        event = CustomerErased(
            event_id=new_event_id(), customer_id=customer_id, occurred_at=datetime.now(UTC), source="privacy",
            properties=CustomerErasedProperties(requested_by=requested_by[:256], reason=(reason or None) and reason[:256],
                                                key_deleted=had_key))
        event_log = open_log(log_url)
        try:
            event_log.append([event])
        finally:
            event_log.close()
        codec.keys.erase(customer_id, event.event_id, requested_by)
    finally:
        codec.keys.close()
    log_scrub, log_note, letters_scrub = None, None, None
    if log_pg:
        log_scrub = scrub_postgres(log_pg, customer_id, values)  # the log's rows and its dead letters, one transaction
    elif log_path is None:
        log_note = PUBSUB_LOG_NOTE
        letters_url = get_settings().pubsub_dead_letter_store_url()
        letters_scrub = (scrub_postgres(letters_url, customer_id, values) if is_postgres_url(letters_url)
                         else scrub_sqlite(sqlite_path(letters_url), customer_id, values))
    else:
        log_scrub = scrub_sqlite(log_path, customer_id, values)
    state_scrub = scrub_sqlite(state_path, customer_id, values) if state_path else ScrubCount()
    if state_pg:
        state_scrub = scrub_postgres(state_pg, customer_id, values)
    warehouse_scrub = scrub_duckdb(warehouse_path, customer_id, values) if warehouse_path else None
    if on_bigquery:
        warehouse_scrub = _scrub_bigquery(warehouse_url, customer_id, values)
    return ErasureReport(customer_id, event.event_id, had_key, len(values.all), log_scrub, state_scrub, warehouse_scrub,
                         log_note, letters_scrub)


def _erasable_log_file(log_url: str) -> Path:
    if not log_url.startswith("sqlite:///"):
        raise UnsupportedForErasure(
            f"erasure reaches the embedded SQLite log (sqlite:///path), a PostgreSQL log (postgresql://...) and Pub/Sub"
            f" (pubsub://project/topic) only; {log_url!r} is none of them."
        )
    return sqlite_path(log_url)


def _warehouse_file(warehouse_url: str) -> Path:
    if not warehouse_url.startswith("duckdb:///"):
        raise UnsupportedForErasure(
            f"erasure reaches DuckDB (duckdb:///path) and BigQuery (bigquery://project/dataset) warehouses;"
            f" {warehouse_url!r} is neither")
    return duckdb_path(warehouse_url)


def _bigquery(warehouse_url: str) -> BigQueryWarehouse:
    return BigQueryWarehouse(warehouse_url, location=get_settings().warehouse_bigquery_location or None)


def _bigquery_pii(warehouse_url: str, customer_id: str, codec: FieldCodec) -> list[tuple[str, Any]]:
    """The customer's PII values held by a BigQuery warehouse (for a Pub/Sub log, which cannot be read back)."""
    warehouse = _bigquery(warehouse_url)
    try:
        return pii_in_bigquery(warehouse, customer_id, codec)
    finally:
        warehouse.close()


def _scrub_bigquery(warehouse_url: str, customer_id: str, values: PiiValues) -> ScrubCount:
    warehouse = _bigquery(warehouse_url)
    try:
        return scrub_bigquery(warehouse, customer_id, values)
    finally:
        warehouse.close()


def export_customer(customer_id: str, log_url: str, state_url: str | None = None, accessor: str | None = None) -> dict[str, Any]:
    """Everything the engine holds about one customer, as JSON-ready data (access and portability), with
    erased values as ``[erased]``; the read itself is recorded as a ``data_accessed`` event."""
    codec = codec_for_log(log_url)
    try:
        erased = codec.keys.is_erased(customer_id)
        events = []
        for position, event_id, event_type, at_us, source, properties, recorded_us, causation in customer_rows(log_url, customer_id):
            props = orjson.loads(properties)
            if event_type in PII_EVENT_TYPES:
                props = codec.reveal(event_type, customer_id, props, erased=ERASED)
                if erased:
                    props = {k: (ERASED if k in pii_fields(event_type) and v is None else v) for k, v in props.items()}
            events.append({"position": position, "event_id": event_id, "event_type": event_type,
                           "occurred_at": from_micros(at_us).isoformat(), "recorded_at": from_micros(recorded_us).isoformat(),
                           "source": source, "causation_id": causation, "properties": props})
    finally:
        codec.keys.close()
    profile = None
    if state_url and (is_postgres_url(state_url) or sqlite_path(state_url).exists()):
        store = open_state_store(state_url)
        try:
            with store.transaction() as conn:
                ProfileProjection().create_tables(conn)
            found = ProfileProjection().get(store.read(), customer_id)
            profile = found.to_dict() if found is not None else None
        finally:
            store.close()
    accessor = accessor or f"cli:{getpass.getuser()}"
    event_log = open_log(log_url)
    try:
        event_log.append([DataAccessed(
            event_id=new_event_id(), customer_id=customer_id, occurred_at=datetime.now(UTC), source="privacy",
            properties=DataAccessedProperties(accessor=accessor[:256], resource="ame privacy export", purpose="access request"))])
    finally:
        event_log.close()
    return {"customer_id": customer_id, "erased": erased, "exported_at": datetime.now(UTC).isoformat(),
            "profile": profile, "events": events}
