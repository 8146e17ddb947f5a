"""Reads an agent's committed records from its shard stores: the decision API's view of what the agents folded.

A record is read from the store of the shard that owns its key, as last committed (with the shard's position), so
the API answers from the very state the agent decides on, never a copy rebuilt from other projections. A shard
that has not started yet reads as "no record". With the state on PostgreSQL (``AME_STATE_STORE=postgresql://…``)
every shard's records are in that one database, which replicas on any node read.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from agents.state_repository import Record, consumer_name, shared_state_url, state_store_url
from data.log.sqlite import sqlite_path
from data.projections.postgres_store import PostgresStateStore
from data.sharding import shard_of


class AgentStateReader:
    """Read-only access to one agent's records across its shards (thread-safe).

    :param state_dir: the folder of the shards' stores (``AME_HOME/agents`` by default).
    :param agent: the agent's name (``journey``).
    :param shards: how many shards the agent runs as.
    :param shared: the PostgreSQL state store every shard shares (default: ``AME_STATE_STORE`` when it names
        PostgreSQL); empty: the shards' SQLite files under ``state_dir``.
    """

    def __init__(self, state_dir: Path, agent: str, shards: int, shared: str | None = None) -> None:
        self.state_dir, self.agent, self.shards = Path(state_dir), agent, shards
        self._local = threading.local()
        shared = shared_state_url() if shared is None else shared
        self._shared = PostgresStateStore(shared) if shared else None

    def _connection(self, shard: int) -> sqlite3.Connection | None:
        conns: dict[int, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(shard)
        if conn is None:
            path = Path(sqlite_path(state_store_url(self.state_dir, self.agent, shard, self.shards)))
            if not path.exists():
                return None
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=True)
            conn.execute("pragma busy_timeout = 5000")
            conns[shard] = conn
        return conn

    def record(self, key: str) -> Record | None:
        """The committed record of ``key``, or None when its shard has none (or has not started)."""
        shard = shard_of(key, self.shards)
        if self._shared is not None:
            with self._shared.reading() as pg:
                row = pg.execute("select record from agent_state where consumer = ? and key = ?",
                                 (consumer_name(self.agent, shard, self.shards), key)).fetchone()
            return orjson.loads(row[0]) if row else None
        conn = self._connection(shard)
        if conn is None:
            return None
        try:
            row = conn.execute("select record from agent_state where consumer = ? and key = ?",
                               (consumer_name(self.agent, shard, self.shards), key)).fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return None
            raise
        return orjson.loads(row[0]) if row else None

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
        for conn in self._local.__dict__.get("conns", {}).values():
            conn.close()
