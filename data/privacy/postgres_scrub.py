"""Removing a customer's plaintext PII from a PostgreSQL state store (``AME_STATE_STORE=postgresql://…``), as
:func:`data.privacy.scrub.scrub_sqlite` does for a SQLite file: distinctive values (email, phone) replaced in
every text and bytea cell, names only in rows keyed by the customer. Snapshots are compressed and are not
searched (as on SQLite); a rebuild after the erasure replaces them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from data.postgres_db import PostgresUnavailable, redacted
from data.privacy.registry import ERASED
from data.privacy.scrub import (
    CUSTOMER_COLUMNS,
    PENDING_DESTINATION_DELETES,
    PII_COLUMNS,
    REDACTED_RAW,
    PiiValues,
    ScrubCount,
)

_COLUMNS = ("select table_name, column_name, data_type from information_schema.columns"
            " where table_schema = current_schema() and data_type in ('text', 'bytea', 'character varying')"
            " order by table_name, ordinal_position")


def _connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url)
    except psycopg.OperationalError as error:
        raise PostgresUnavailable(f"cannot reach the state store {redacted(url)}: {error}") from None


def _tables(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    for table, column, kind in conn.execute(_COLUMNS):
        tables.setdefault(table, {})[column] = kind
    return tables


def pii_in_postgres(url: str, customer_id: str) -> list[tuple[str, Any]]:
    """(column, value) of the PII columns in the rows keyed by the customer, in every table of the store."""
    fields: list[tuple[str, Any]] = []
    with _connect(url) as conn:
        for table, columns in _tables(conn).items():
            keyed = next((c for c in CUSTOMER_COLUMNS if c in columns), None)
            pii = [c for c in columns if c in PII_COLUMNS]
            if keyed is None or not pii:
                continue
            query = sql.SQL("select {} from {} where {} = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, pii)), sql.Identifier(table), sql.Identifier(keyed))
            for row in conn.execute(query, (customer_id,)):
                fields += list(zip(pii, row, strict=True))
    return fields


def _replace(column: str, kind: str) -> sql.Composed:
    """``column`` with %(v)s replaced by %(erased)s, for a text or a bytea (UTF-8) column."""
    c = sql.Identifier(column)
    if kind == "bytea":
        return sql.SQL("convert_to(replace(convert_from({c}, 'UTF8'), %(v)s, %(erased)s), 'UTF8')").format(c=c)
    return sql.SQL("replace({c}, %(v)s, %(erased)s)").format(c=c)


def _holds(column: str, kind: str) -> sql.Composed:
    c = sql.Identifier(column)
    if kind == "bytea":
        return sql.SQL("position(convert_to(%(v)s, 'UTF8') in {c}) > 0").format(c=c)
    return sql.SQL("strpos({c}, %(v)s) > 0").format(c=c)


def _redact_dead_letters(conn: psycopg.Connection, customer_id: str, values: PiiValues) -> int:
    """Replace the raw bytes of every dead letter that names the customer (as the SQLite sweep does)."""
    redacted_rows = 0
    for needle in (customer_id, *values.all):
        redacted_rows += conn.execute(
            "update dead_letters set raw = %s, replaced_raw = null where position(%s in raw) > 0"
            " or position(%s in coalesce(replaced_raw, ''::bytea)) > 0",
            (REDACTED_RAW, needle.encode(), needle.encode())).rowcount
    return redacted_rows


def scrub_postgres(url: str, customer_id: str, values: PiiValues) -> ScrubCount:
    """Replace the customer's PII in the store's text and bytea cells and redact the dead letters that name them,
    in one transaction (snapshots skipped)."""
    count = ScrubCount()
    with _connect(url) as conn, conn.transaction():
        tables = _tables(conn)
        if "dead_letters" in tables:
            count.rows_redacted = _redact_dead_letters(conn, customer_id, values)
        for table, columns in tables.items():
            if table in ("snapshots", "schema_version", "customer_keys", "erased_customers", "dead_letters",
                         PENDING_DESTINATION_DELETES):
                continue
            keyed = next((c for c in CUSTOMER_COLUMNS if c in columns), None)
            for column, kind in columns.items():
                if column in CUSTOMER_COLUMNS:
                    continue
                update = sql.SQL("update {t} set {c} = {new} where {holds}").format(
                    t=sql.Identifier(table), c=sql.Identifier(column), new=_replace(column, kind), holds=_holds(column, kind))
                for v in values.distinctive:
                    count.cells += conn.execute(update, {"v": v, "erased": ERASED}).rowcount
                if keyed is None:
                    continue
                by_key = update + sql.SQL(" and {k} = %(customer)s").format(k=sql.Identifier(keyed))
                for v in values.names:
                    count.cells += conn.execute(by_key, {"v": v, "erased": ERASED, "customer": customer_id}).rowcount
    return count
