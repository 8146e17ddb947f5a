"""Removing a customer's plaintext PII from the files it may have reached: SQLite files (the log's dead
letters and legacy rows, the state store) and the DuckDB warehouse, which is then rewritten so no freed block
keeps the old bytes.

Values are split in two: *distinctive* ones (email, phone) are replaced wherever they occur; *names* (first,
last, company) only in rows keyed by the customer, since a short name is a substring of other people's data.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from data.privacy.registry import ERASED, PII_EVENT_TYPES, pii_fields

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from data.privacy.codec import FieldCodec

log = logging.getLogger(__name__)

DISTINCTIVE_FIELDS = frozenset({"email", "phone", "identifiers"})
PII_COLUMNS = frozenset({"email", "first_name", "last_name", "phone", "company"})
REDACTED_RAW = b'{"redacted": "the input named an erased customer"}'
CUSTOMER_COLUMNS = ("customer_id", "canonical_customer_id")
PENDING_DESTINATION_DELETES = "activation_rows"
"""What each activation destination holds: kept through an erasure, because the next ``ame activate run`` needs
the identifiers (an email, an external id) to delete the customer there; it then drops the rows."""


@dataclass(frozen=True, slots=True)
class PiiValues:
    """The plaintext values of one customer, gathered before their key is deleted (kept in memory only)."""

    distinctive: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, fields: Iterable[tuple[str, Any]]) -> PiiValues:
        distinctive: set[str] = set()
        names: set[str] = set()
        for name, value in fields:
            values = value if isinstance(value, list) else [value]
            for v in values:
                if not isinstance(v, str) or not v.strip() or v == ERASED:
                    continue
                if name == "identifiers":
                    v = v.split(":", 1)[-1]
                target = distinctive if name in DISTINCTIVE_FIELDS else names
                target.add(v)
                if name == "email":
                    target.add(v.lower())
        return cls(frozenset(v for v in distinctive if len(v) >= 5), frozenset(names))

    @property
    def all(self) -> frozenset[str]:
        return self.distinctive | self.names


@dataclass(slots=True)
class ScrubCount:
    cells: int = 0
    rows_redacted: int = 0
    wal_truncated: bool = True
    tables: dict[str, int] = field(default_factory=dict)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pii_in_copies(customer_id: str, codec: FieldCodec, state: Path | None, warehouse: Path | None) -> PiiValues:
    """The customer's PII values found by customer id in the copies (for a log that cannot be read back, such
    as Pub/Sub): the PII columns of the rows keyed by the customer in the state store and the DuckDB warehouse,
    and the PII fields of their ``raw_events`` (decrypted while the key still exists)."""
    fields: list[tuple[str, Any]] = []
    if state is not None and state.exists():
        fields += _pii_in_sqlite(state, customer_id)
    if warehouse is not None and warehouse.exists():
        fields += _pii_in_duckdb(warehouse, customer_id, codec)
    return PiiValues.of(fields)


def _pii_in_sqlite(path: Path, customer_id: str) -> list[tuple[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        fields: list[tuple[str, Any]] = []
        for (table,) in conn.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"):
            columns = [r[1] for r in conn.execute(f"pragma table_info({_q(table)})")]
            fields += _keyed_pii(conn, _q(table), columns, customer_id)
        return fields
    finally:
        conn.close()


def _pii_in_duckdb(path: Path, customer_id: str, codec: FieldCodec) -> list[tuple[str, Any]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        fields: list[tuple[str, Any]] = []
        tables = con.execute("select table_schema, table_name from information_schema.tables"
                             " where table_type = 'BASE TABLE' and table_catalog = current_database()").fetchall()
        for schema, table in tables:
            full = f"{_q(schema)}.{_q(table)}"
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                " and table_catalog = current_database()", [schema, table]).fetchall()]
            fields += _keyed_pii(con, full, columns, customer_id)
            if table != "raw_events" or not {"properties", "event_type", "customer_id"} <= set(columns):
                continue
            rows = con.execute(f"select event_type, properties from {full} where customer_id = ?"
                               f" and event_type in ({','.join('?' * len(PII_EVENT_TYPES))})",
                               [customer_id, *sorted(PII_EVENT_TYPES)]).fetchall()
            for event_type, properties in rows:
                props = codec.reveal(event_type, customer_id, orjson.loads(properties or "{}"), erased=None)
                fields += [(name, props.get(name)) for name in pii_fields(event_type)]
        return fields
    finally:
        con.close()


def _keyed_pii(conn: Any, table: str, columns: list[str], customer_id: str) -> list[tuple[str, Any]]:
    """(column, value) of the PII columns of ``table`` (quoted) in the rows keyed by the customer."""
    keyed = next((c for c in CUSTOMER_COLUMNS if c in columns), None)
    pii = [c for c in columns if c in PII_COLUMNS]
    if keyed is None or not pii:
        return []
    rows = conn.execute(f"select {', '.join(_q(c) for c in pii)} from {table} where {_q(keyed)} = ?", [customer_id]).fetchall()
    return [(column, value) for row in rows for column, value in zip(pii, row, strict=True)]


def scrub_sqlite(path: Path, customer_id: str, values: PiiValues) -> ScrubCount:
    """Replace the customer's PII in every text or blob cell of a SQLite file; redact dead letters that name
    the customer; then checkpoint and truncate the WAL (``secure_delete`` overwrites the freed bytes)."""
    count = ScrubCount()
    if not path.exists():
        return count
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        conn.execute("pragma secure_delete = on")
        conn.execute("begin immediate")
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")]
        for table in (t for t in tables if t != PENDING_DESTINATION_DELETES):
            columns = [(r[1], (r[2] or "").lower()) for r in conn.execute(f"pragma table_info({_q(table)})")]
            names = {c for c, _ in columns}
            if table == "dead_letters" and {"raw", "replaced_raw"} <= names:
                n = 0
                for needle in (customer_id, *values.all):
                    n += conn.execute(
                        "update dead_letters set raw = ?, replaced_raw = null where instr(raw, ?) > 0"
                        " or instr(coalesce(replaced_raw, x''), ?) > 0",
                        (REDACTED_RAW, needle.encode(), needle.encode())).rowcount
                count.rows_redacted += n
            keyed = next((c for c in CUSTOMER_COLUMNS if c in names), None)
            for column, kind in columns:
                if column in CUSTOMER_COLUMNS or kind not in ("text", "blob", ""):
                    continue
                c = _q(column)
                for v in values.distinctive:
                    count.cells += conn.execute(
                        f"update {_q(table)} set {c} = case when typeof({c}) = 'blob' then"
                        f" cast(replace(cast({c} as text), ?1, ?2) as blob) else replace({c}, ?1, ?2) end"
                        f" where instr({c}, ?1) > 0", (v, ERASED)).rowcount
                if keyed is not None:
                    for v in values.names:
                        count.cells += conn.execute(
                            f"update {_q(table)} set {c} = replace({c}, ?1, ?2) where {_q(keyed)} = ?3"
                            f" and typeof({c}) = 'text' and instr({c}, ?1) > 0", (v, ERASED, customer_id)).rowcount
        conn.execute("commit")
        busy, _, _ = conn.execute("pragma wal_checkpoint(truncate)").fetchone()
        count.wal_truncated = busy == 0
    finally:
        conn.close()
    return count


def anonymize_properties(event_type: str, properties: str) -> str:
    """Stored properties with the event type's PII fields set to null."""
    props = orjson.loads(properties)
    for name in pii_fields(event_type):
        if name in props:
            props[name] = [] if isinstance(props[name], list) else None
    return orjson.dumps(props).decode()


def scrub_duckdb(path: Path, customer_id: str, values: PiiValues, dataset: str = "ame") -> ScrubCount:
    """Anonymize the customer's rows of a DuckDB warehouse (raw_events properties, PII columns of every table
    keyed by customer, the distinctive values anywhere), then rewrite the file so no freed block keeps them.
    Counts and amounts are untouched, so aggregates still reconcile."""
    count = ScrubCount()
    if not path.exists():
        return count
    con = duckdb.connect(str(path))
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
            " and table_catalog = current_database()").fetchall()
        for schema, table in tables:
            count.cells += _scrub_table(con, schema, table, customer_id, values)
        con.execute("checkpoint")
    finally:
        con.close()
    rewrite_duckdb(path)
    return count


def _scrub_table(con: DuckDBPyConnection, schema: str, table: str, customer_id: str, values: PiiValues) -> int:
    """The cells anonymized in one table: raw PII properties, PII columns of the customer's rows, and the
    customer's values wherever a text column holds them."""
    full = f"{_q(schema)}.{_q(table)}"
    columns = dict(con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ?"
        " and table_catalog = current_database()", [schema, table]).fetchall())
    keyed = next((c for c in CUSTOMER_COLUMNS if c in columns), None)
    cells = 0
    if table == "raw_events" and {"properties", "event_type", "customer_id"} <= set(columns):
        rows = con.execute(f"select rowid, event_type, properties from {full} where customer_id = ?"
                           f" and event_type in ({','.join('?' * len(PII_EVENT_TYPES))})",
                           [customer_id, *sorted(PII_EVENT_TYPES)]).fetchall()
        for rowid, event_type, properties in rows:
            con.execute(f"update {full} set properties = ? where rowid = ?", [anonymize_properties(event_type, properties), rowid])
        cells += len(rows)
    pii = [c for c in columns if c in PII_COLUMNS and columns[c] == "VARCHAR"] if keyed is not None else []
    if pii:
        sets = ", ".join(f"{_q(c)} = NULL" for c in pii)
        cells += con.execute(f"update {full} set {sets} where {_q(keyed)} = ?", [customer_id]).fetchone()[0]
    for column, kind in columns.items():
        if kind in ("VARCHAR", "JSON") and column not in CUSTOMER_COLUMNS:
            cells += _replace_values(con, full, _q(column), keyed, customer_id, values)
    return cells


def _replace_values(con: DuckDBPyConnection, full: str, c: str, keyed: str | None, customer_id: str, values: PiiValues) -> int:
    """Distinctive values (email, phone) replaced in every row; names only in the customer's own rows."""
    cells = 0
    for v in values.distinctive:
        cells += con.execute(f"update {full} set {c} = replace({c}, ?, ?) where contains({c}, ?)", [v, ERASED, v]).fetchone()[0]
    if keyed is not None:
        for v in values.names:
            cells += con.execute(f"update {full} set {c} = replace({c}, ?, ?) where {_q(keyed)} = ? and contains({c}, ?)",
                                 [v, ERASED, customer_id, v]).fetchone()[0]
    return cells


def rewrite_duckdb(path: Path) -> None:
    """Copy the database into a fresh file of the same name (the catalog keeps its name, so views still
    resolve) and swap it in: the old file, with whatever its freed blocks held, is deleted."""
    folder = Path(tempfile.mkdtemp(prefix="ame-rewrite-", dir=path.parent))
    fresh = folder / path.name
    try:
        con = duckdb.connect(str(fresh))
        try:
            con.execute(f"attach '{path}' as ame_privacy_source (read_only)")
            con.execute(f"copy from database ame_privacy_source to {_q(con.execute('select current_database()').fetchone()[0])}")
            con.execute("detach ame_privacy_source")
            con.execute("checkpoint")
        finally:
            con.close()
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            wal.unlink()
        os.replace(fresh, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
