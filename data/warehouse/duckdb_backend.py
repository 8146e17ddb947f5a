"""The embedded warehouse: one DuckDB file holding raw, staging, marts and SQLMesh's state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from data.warehouse.base import (
    RAW_COLUMN_NAMES,
    RAW_COLUMNS,
    QueryResult,
    UnsupportedWarehouse,
    WarehouseUnavailable,
)

log = logging.getLogger(__name__)

_TIMESTAMP_COLUMNS = {c.name for c in RAW_COLUMNS if c.duckdb == "TIMESTAMP"}


def duckdb_path(url: str) -> Path:
    """The file of ``duckdb:///relative/path`` or ``duckdb:////absolute/path`` (``duckdb:///:memory:`` too)."""
    if not url.startswith("duckdb:///") or len(url) == len("duckdb:///"):
        raise UnsupportedWarehouse(
            f"not a DuckDB URL: {url!r}; write duckdb:///relative/path.duckdb or duckdb:////absolute/path.duckdb"
        )
    return Path(url[len("duckdb:///") :])


def raw_events_ddl(dataset: str) -> str:
    cols = ",\n  ".join(f"{c.name} {c.duckdb}{' NOT NULL' if c.required else ''}" for c in RAW_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {dataset}.raw_events (\n  {cols}\n)"


class DuckDBWarehouse:
    """raw_events and the loader's tracking tables in a DuckDB file.

    :param url: ``duckdb:///path``; ``duckdb:///:memory:`` keeps everything in memory.
    :param dataset: the schema that holds raw_events and the models' views.
    """

    def __init__(self, url: str, dataset: str = "ame") -> None:
        self.url = url
        self.dataset = dataset
        self.path = duckdb_path(url)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.IOException as error:
            raise WarehouseUnavailable(
                f"cannot open the DuckDB warehouse {self.path}: {error}. Another process may hold it open "
                "(DuckDB allows one writer); close it, or point AME_WAREHOUSE / --warehouse at another file."
            ) from None

    def ensure_raw(self) -> None:
        d = self.dataset
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {d}")
        self.con.execute(raw_events_ddl(d))
        for column in RAW_COLUMNS:  # a raw_events made by an older version gains the columns added since
            self.con.execute(f"ALTER TABLE {d}.raw_events ADD COLUMN IF NOT EXISTS {column.name} {column.duckdb}")
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {d}.raw_load_state (stream VARCHAR PRIMARY KEY, position BIGINT NOT NULL,"
            " rows_loaded BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL)"
        )
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {d}.raw_loads (stream VARCHAR NOT NULL, from_position BIGINT NOT NULL,"
            " to_position BIGINT NOT NULL, rows BIGINT NOT NULL, min_occurred_at TIMESTAMP,"
            " max_occurred_at TIMESTAMP, loaded_at TIMESTAMP NOT NULL)"
        )

    def loaded_position(self, stream: str) -> int:
        row = self.con.execute(
            f"SELECT position FROM {self.dataset}.raw_load_state WHERE stream = ?", [stream]
        ).fetchone()
        return int(row[0]) if row else 0

    def append_raw(self, stream: str, rows: Sequence[dict[str, Any]], to_position: int) -> int:
        """Append rows and the stream's new position in one transaction (the tracking record)."""
        d = self.dataset
        frame = pd.DataFrame.from_records(list(rows), columns=[c.name for c in RAW_COLUMNS])
        select = ", ".join(
            f"make_timestamp(CAST({c.name} AS BIGINT)) AS {c.name}" if c.name in _TIMESTAMP_COLUMNS
            else f"CAST({c.name} AS {c.duckdb}) AS {c.name}"
            for c in RAW_COLUMNS
        )
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            from_position = self.loaded_position(stream)
            if to_position <= from_position:
                con.execute("ROLLBACK")
                return 0
            con.register("_ame_batch", frame)
            con.execute(f"INSERT INTO {d}.raw_events ({', '.join(RAW_COLUMN_NAMES)}) SELECT {select} FROM _ame_batch")
            con.unregister("_ame_batch")
            con.execute(
                f"INSERT INTO {d}.raw_loads VALUES (?, ?, ?, ?, make_timestamp(?::BIGINT), make_timestamp(?::BIGINT),"
                " now())",
                [
                    stream, from_position, to_position, len(frame),
                    int(frame["occurred_at"].min()) if len(frame) else None,
                    int(frame["occurred_at"].max()) if len(frame) else None,
                ],
            )
            con.execute(
                f"INSERT INTO {d}.raw_load_state VALUES (?, ?, ?, now()) ON CONFLICT (stream) DO UPDATE SET"
                " position = excluded.position, rows_loaded = raw_load_state.rows_loaded + excluded.rows_loaded,"
                " updated_at = excluded.updated_at",
                [stream, to_position, len(frame)],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return len(frame)

    def query(self, sql: str) -> QueryResult:
        cur = self.con.execute(sql)
        columns = [d[0] for d in cur.description] if cur.description else []
        return QueryResult(columns, cur.fetchall() if cur.description else [])

    def close(self) -> None:
        self.con.close()
