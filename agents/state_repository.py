"""Where one agent shard keeps its state: a record per key, the consumer's position, restarts and snapshots.

:class:`AgentStateRepository` is the only code that knows the tables. A shard loads the records a batch needs,
then saves the batch's changes together with its new position in one transaction of its
:class:`~data.projections.state_base.StateStore` (the tracking record), so a crash between the two cannot
happen: a replay finds both old or both new. On SQLite each shard has its own file under the state folder; on
PostgreSQL (``AME_STATE_STORE=postgresql://…``) every shard shares the one database, its rows keyed by consumer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from data.postgres_db import is_postgres_url
from data.projections.store import StateStore, open_state_store
from data.settings import get_settings
from data.sqlite_files import sqlite_path

Record = dict[str, Any]
"""One key's state: a JSON-ready dict. Agents never mutate a record they read; they ``put`` a new one."""

# On PostgreSQL the migrations made these tables already, so the statements below are no-ops there.
_STATE_TABLE = ("create table if not exists agent_state (consumer text not null, key text not null, record blob not null,"
                " primary key (consumer, key))")
_RESTARTS_TABLE = "create table if not exists agent_restarts (consumer text primary key, restarts integer not null)"


def consumer_name(agent: str, shard: int, shards: int) -> str:
    """The consumer (tracking record) of one shard of an agent."""
    return f"agent:{agent}:{shard}of{shards}"


def agent_consumer(agent: str, shard: int, shards: int) -> str:
    """The consumer name of one agent shard's subscription (``<topic>-agent-<name>-<i>of<n>``), for the shard that
    opens it and ``ame infra init`` that creates it."""
    return f"agent-{agent}-{shard}of{shards}"


def projector_consumer(projection: str) -> str:
    """The consumer name of a projector's subscription (``<topic>-projector-<projection>``)."""
    return f"projector-{projection}"


def state_store_url(state_dir: Path, agent: str, shard: int, shards: int, shared: str = "") -> str:
    """The store of one shard of an agent: ``shared`` when it is a PostgreSQL URL, else its SQLite file under
    ``state_dir``."""
    if is_postgres_url(shared):
        return shared
    return f"sqlite:///{(Path(state_dir) / f'{agent}-{shard}of{shards}.db').resolve()}"


def shared_state_url() -> str:
    """``AME_STATE_STORE`` when it names PostgreSQL (every shard shares it), else "" (a SQLite file per shard)."""
    url = get_settings().state_store
    return url if is_postgres_url(url) else ""


def encode_records(records: Mapping[str, Record]) -> bytes:
    """Canonical bytes of a whole state (sorted keys), for snapshots and hashes."""
    return orjson.dumps(dict(sorted(records.items())), option=orjson.OPT_SORT_KEYS)


def state_hash(records: Mapping[str, Record]) -> str:
    return hashlib.sha256(encode_records(records)).hexdigest()


def bump_restarts(conn: Any, consumer: str, reconstructed: bool) -> int:
    """The consumer's restarts so far, one more when this start is a restart (written in ``conn``'s transaction)."""
    conn.execute(_RESTARTS_TABLE)
    row = conn.execute("select restarts from agent_restarts where consumer = ?", (consumer,)).fetchone()
    restarts = (row[0] if row else 0) + (1 if reconstructed else 0)
    conn.execute("insert into agent_restarts (consumer, restarts) values (?, ?)"
                 " on conflict(consumer) do update set restarts = excluded.restarts", (consumer, restarts))
    return restarts


class AgentStateRepository:
    """One shard's records in its state store (thread-safe: the store serializes the connection).

    :param store: the shard's state store (the repository creates its tables there).
    :param consumer: the shard's consumer name (:func:`consumer_name`).
    :param read_chunk: keys per ``select ... in (...)`` (SQLite binds a bounded number of parameters); default
        ``AME_AGENT_STATE_READ_CHUNK``.
    """

    def __init__(self, store: StateStore, consumer: str, read_chunk: int | None = None) -> None:
        self.store = store
        self.consumer = consumer
        self.read_chunk = read_chunk or get_settings().agent_state_read_chunk
        with store.transaction() as conn:
            conn.execute(_STATE_TABLE)

    @classmethod
    def open(cls, url: str, consumer: str, read_chunk: int | None = None) -> AgentStateRepository:
        return cls(open_state_store(url), consumer, read_chunk)

    def count_restart(self, reconstructed: bool) -> int:
        """Record this start (a restart when ``reconstructed``) and return the restarts so far."""
        with self.store.transaction() as conn:
            return bump_restarts(conn, self.consumer, reconstructed)

    def position(self) -> int:
        """The last committed log position of this shard (0 before its first batch)."""
        return self.store.position(self.consumer)

    def load(self, keys: Sequence[str]) -> dict[str, Record]:
        """The committed records of ``keys`` that exist."""
        with self.store.reading() as conn:
            return self.load_in(conn, keys)

    def keys(self) -> list[str]:
        """Every key that has a committed record."""
        with self.store.reading() as conn:
            return self.keys_in(conn)

    def records(self) -> dict[str, Record]:
        """The whole committed state."""
        with self.store.reading() as conn:
            return self.records_in(conn)

    def save(self, changes: Mapping[str, Record], position: int) -> None:
        """Write ``changes`` and the new ``position`` in one transaction: both commit, or neither."""
        with self.store.transaction() as conn:
            self.put_in(conn, changes)
            self.store.commit_position(conn, self.consumer, position)

    # -- the same on a connection the caller holds (a transaction of its own, as the Pub/Sub shard's) ----

    def load_in(self, conn: Any, keys: Sequence[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for i in range(0, len(keys), self.read_chunk):
            chunk = list(keys[i : i + self.read_chunk])
            rows = conn.execute(
                f"select key, record from agent_state where consumer = ? and key in ({','.join('?' * len(chunk))})",
                (self.consumer, *chunk),
            ).fetchall()
            out.update((k, orjson.loads(r)) for k, r in rows)
        return out

    def keys_in(self, conn: Any) -> list[str]:
        return [r[0] for r in conn.execute("select key from agent_state where consumer = ?", (self.consumer,))]

    def records_in(self, conn: Any) -> dict[str, Record]:
        rows = conn.execute("select key, record from agent_state where consumer = ?", (self.consumer,)).fetchall()
        return {k: orjson.loads(r) for k, r in rows}

    def put_in(self, conn: Any, changes: Mapping[str, Record]) -> None:
        if changes:
            conn.executemany(
                "insert into agent_state (consumer, key, record) values (?, ?, ?)"
                " on conflict(consumer, key) do update set record = excluded.record",
                [(self.consumer, k, orjson.dumps(r, option=orjson.OPT_SORT_KEYS)) for k, r in changes.items()],
            )

    def snapshot(self) -> str:
        """Write the whole state at the committed position as a snapshot; returns its hash."""
        with self.store.transaction() as conn:
            data = encode_records(self.records_in(conn))
            digest = hashlib.sha256(data).hexdigest()
            self.store.save_snapshot(conn, self.consumer, self.store.position(self.consumer), data, digest)
        return digest

    def close(self) -> None:
        self.store.close()


def read_records(state_dir: Path, agent: str, shards: int, shared: str = "") -> dict[str, Record]:
    """The committed state of every shard of an agent, read from their stores (actors may be down)."""
    out: dict[str, Record] = {}
    for shard in range(shards):
        url = state_store_url(state_dir, agent, shard, shards, shared)
        if not is_postgres_url(url) and not sqlite_path(url).exists():
            continue
        repository = AgentStateRepository.open(url, consumer_name(agent, shard, shards))
        try:
            out.update(repository.records())
        finally:
            repository.close()
    return out
