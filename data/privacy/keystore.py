"""Per-customer data keys, kept apart from the log, and the list of erased customers.

Deleting a customer's key is crypto-shredding: every encrypted property of theirs in the log, its copies and
its backups becomes unreadable at once, without rewriting the append-only log. The store is a SQLite file
(``AME_KEY_STORE``; default beside the log, ``events.db`` -> ``events.keys.db``) opened with
``secure_delete`` so a deleted key's bytes are overwritten, and its WAL is truncated after an erasure. In
production the keys belong in a KMS-backed store; this file is the embedded default.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from data.postgres_db import is_postgres_url
from data.privacy.errors import KeyStoreUnavailable
from data.privacy.postgres_keystore import PostgresKeyStore
from data.settings import get_settings
from data.sqlite_files import enable_wal

_SCHEMA = (
    "create table if not exists customer_keys (customer_id text primary key, key blob not null,"
    " created_at_us integer not null)",
    "create table if not exists erased_customers (customer_id text primary key, erased_at_us integer not null,"
    " event_id text, requested_by text)",
)


class PiiKeyStore(Protocol):
    """What the codec, erasure and training need of a key store, on any backend."""

    def data_version(self) -> int: ...

    def keys(self, customer_ids: Iterable[str], create: bool) -> dict[str, bytes | None]: ...

    def erase(self, customer_id: str, event_id: str | None = None, requested_by: str | None = None) -> bool: ...

    def is_erased(self, customer_id: str) -> bool: ...

    def erased_customers(self) -> set[str]: ...

    def erased_generation(self) -> int: ...

    def close(self) -> None: ...


def open_key_store(log_url: str, configured: str | None = None) -> PiiKeyStore:
    """The key store of a log: ``configured`` (default ``AME_KEY_STORE``): a ``postgresql://`` URL (shared by a
    cluster) or a ``sqlite:///`` file; unset, a SQLite file beside a SQLite log."""
    configured = get_settings().key_store if configured is None else configured
    if is_postgres_url(configured):
        return PostgresKeyStore(configured)
    return KeyStore(key_store_path_for(log_url, configured))


def key_store_path_for(log_url: str, configured: str = "") -> Path:
    """The SQLite key store of a log: ``configured`` (a ``sqlite:///`` URL) when set, else beside a SQLite log."""
    if configured:
        if not configured.startswith("sqlite:///"):
            raise KeyStoreUnavailable(
                f"AME_KEY_STORE must be a sqlite:///path or postgresql://user@host/database URL, got {configured!r}")
        return Path(configured[len("sqlite:///"):])
    if log_url.startswith("sqlite:///"):
        log_path = Path(log_url[len("sqlite:///"):])
        return log_path.with_name(log_path.stem + ".keys.db")
    return get_settings().home / "keys.db"


class KeyStore:
    """Per-customer 256-bit AES keys and erasure tombstones in one SQLite file (thread-safe)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 60_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=busy_timeout_ms / 1000)
            self._conn.execute(f"pragma busy_timeout = {int(busy_timeout_ms)}")
            enable_wal(self._conn, busy_timeout_ms)
            self._conn.execute("pragma secure_delete = on")
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except sqlite3.Error as error:
            raise KeyStoreUnavailable(f"cannot open the key store {self.path}: {error}; check AME_KEY_STORE") from None
        self._lock = threading.Lock()

    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite ``data_version``): a cheap staleness check."""
        with self._lock:
            return int(self._conn.execute("pragma data_version").fetchone()[0])

    def keys(self, customer_ids: Iterable[str], create: bool) -> dict[str, bytes | None]:
        """The key of each customer; with ``create``, a new key for customers that have none and were never
        erased (two writers racing keep the first key). Erased customers map to None."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        with self._lock:
            if create:
                now = time.time_ns() // 1000
                self._conn.execute("begin immediate")
                try:
                    erased = self._in("select customer_id from erased_customers", ids)
                    self._conn.executemany(
                        "insert or ignore into customer_keys (customer_id, key, created_at_us) values (?, ?, ?)",
                        [(c, os.urandom(32), now) for c in ids if c not in erased],
                    )
                    self._conn.execute("commit")
                except sqlite3.Error:
                    self._conn.execute("rollback")
                    raise
            found = dict(self._rows("select customer_id, key from customer_keys", ids))
        return {c: (bytes(found[c]) if c in found else None) for c in ids}

    def _in(self, select: str, ids: list[str]) -> set[str]:
        return {row[0] for row in self._rows(select, ids)}

    def _rows(self, select: str, ids: list[str]) -> list[tuple]:
        out: list[tuple] = []
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            out += self._conn.execute(f"{select} where customer_id in ({','.join('?' * len(chunk))})", chunk).fetchall()
        return out

    def erase(self, customer_id: str, event_id: str | None = None, requested_by: str | None = None) -> bool:
        """Delete the customer's key and record the erasure; True if a key existed. The file's WAL is then
        checkpointed and truncated so the key's bytes are not left in it."""
        with self._lock:
            self._conn.execute("begin immediate")
            try:
                deleted = self._conn.execute("delete from customer_keys where customer_id = ?", (customer_id,)).rowcount
                self._conn.execute(
                    "insert or replace into erased_customers (customer_id, erased_at_us, event_id, requested_by)"
                    " values (?, ?, ?, ?)", (customer_id, time.time_ns() // 1000, event_id, requested_by))
                self._conn.execute("commit")
            except sqlite3.Error:
                self._conn.execute("rollback")
                raise
            self._conn.execute("pragma wal_checkpoint(truncate)")
        return deleted > 0

    def is_erased(self, customer_id: str) -> bool:
        with self._lock:
            return self._conn.execute("select 1 from erased_customers where customer_id = ?", (customer_id,)).fetchone() is not None

    def erased_customers(self) -> set[str]:
        """Every erased customer: training code drops them from the next training set."""
        with self._lock:
            return {row[0] for row in self._conn.execute("select customer_id from erased_customers")}

    def erased_generation(self) -> int:
        with self._lock:
            return int(self._conn.execute("select count(*) from erased_customers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
