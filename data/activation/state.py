"""Sync state in the state store (``AME_STATE_STORE``: SQLite or PostgreSQL): per sync, the hash and fields of
every row the destination holds, and one record per run (counts, errors, the JSON report)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from data.projections.store import SqliteStateStore, StateStore, open_state_store

# SQLite's tables; on PostgreSQL the migrations made them (data/postgres_migrations.py).
_SCHEMA = """
create table if not exists activation_rows (
  sync text not null, key text not null, hash text not null, fields blob not null, synced_at real not null,
  primary key (sync, key)
) without rowid;
create table if not exists activation_runs (
  sync text not null, run_id text not null, started_at real not null, finished_at real,
  status text not null, upserts_sent integer, deletes_sent integer, succeeded integer, failed integer,
  unchanged integer, report blob, primary key (sync, run_id)
)
"""


@dataclass(frozen=True, slots=True)
class RunRow:
    sync: str
    run_id: str
    started_at: float
    finished_at: float | None
    status: str
    upserts_sent: int
    deletes_sent: int
    succeeded: int
    failed: int
    unchanged: int


class SyncState:
    """The activation tables of the state store.

    :param store: the state store, or the path of a SQLite file.
    """

    def __init__(self, store: StateStore | Path) -> None:
        self.store = store if isinstance(store, StateStore) else SqliteStateStore(f"sqlite:///{Path(store)}")
        if self.store.dialect == "sqlite":
            with self.store.transaction() as conn:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)

    @classmethod
    def from_url(cls, url: str) -> SyncState:
        """The sync state in the store at ``url`` (``sqlite:///path`` or ``postgresql://…``)."""
        return cls(open_state_store(url))

    def rows(self, sync: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """key -> (hash, fields) of every row the destination holds for ``sync``."""
        with self.store.reading() as conn:
            rows = conn.execute("select key, hash, fields from activation_rows where sync = ?", (sync,)).fetchall()
        return {key: (digest, orjson.loads(fields)) for key, digest, fields in rows}

    def commit(self, sync: str, upserted: Iterable[tuple[str, str, dict[str, Any]]], deleted: Iterable[str]) -> None:
        """Record rows the destination accepted (key, hash, fields) and keys it deleted, in one transaction."""
        now = time.time()
        with self.store.transaction() as conn:
            conn.executemany(
                "insert into activation_rows (sync, key, hash, fields, synced_at) values (?, ?, ?, ?, ?)"
                " on conflict (sync, key) do update set"
                " hash = excluded.hash, fields = excluded.fields, synced_at = excluded.synced_at",
                [(sync, key, digest, orjson.dumps(fields, default=str), now) for key, digest, fields in upserted],
            )
            conn.executemany("delete from activation_rows where sync = ? and key = ?", [(sync, key) for key in deleted])

    def start_run(self, sync: str, run_id: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("insert into activation_runs (sync, run_id, started_at, status) values (?, ?, ?, 'running')",
                         (sync, run_id, time.time()))

    def finish_run(self, sync: str, run_id: str, status: str, report: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "update activation_runs set finished_at = ?, status = ?, upserts_sent = ?, deletes_sent = ?,"
                " succeeded = ?, failed = ?, unchanged = ?, report = ? where sync = ? and run_id = ?",
                (time.time(), status, report["upserts_sent"], report["deletes_sent"], report["succeeded"],
                 report["failed"], report["unchanged"], orjson.dumps(report, default=str), sync, run_id),
            )

    def last_runs(self, sync: str | None = None, limit: int = 20) -> list[RunRow]:
        sql = ("select sync, run_id, started_at, finished_at, status, coalesce(upserts_sent, 0),"
               " coalesce(deletes_sent, 0), coalesce(succeeded, 0), coalesce(failed, 0), coalesce(unchanged, 0)"
               " from activation_runs")
        args: tuple[Any, ...] = ()
        if sync:
            sql += " where sync = ?"
            args = (sync,)
        sql += " order by started_at desc limit ?"
        with self.store.reading() as conn:
            return [RunRow(*r) for r in conn.execute(sql, (*args, limit)).fetchall()]

    def last_success(self, sync: str) -> float | None:
        with self.store.reading() as conn:
            row = conn.execute(
                "select max(started_at) from activation_runs where sync = ? and status in ('ok', 'partial')", (sync,)
            ).fetchone()
        return row[0] if row and row[0] is not None else None

    def held(self, sync: str) -> int:
        with self.store.reading() as conn:
            return int(conn.execute("select count(*) from activation_rows where sync = ?", (sync,)).fetchone()[0])

    def close(self) -> None:
        self.store.close()
