"""The PII key store on PostgreSQL (``AME_KEY_STORE=postgresql://…``): one set of per-customer keys and
erasure tombstones for every node of a cluster, so any pod reads what another wrote and an erasure run on any
node shreds the customer's data everywhere at once.

The tables come from the versioned migrations (:mod:`data.postgres_migrations`). PostgreSQL keeps a deleted
row's bytes until vacuum reuses the page: :meth:`PostgresKeyStore.erase` vacuums the keys table at once, and the
database's storage should be encrypted at rest (Cloud SQL and AlloyDB always are).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from data.postgres_db import PostgresUnavailable, open_pool, pooled, redacted
from data.privacy.errors import KeyStoreUnavailable


class PostgresKeyStore:
    """Per-customer 256-bit AES keys and erasure tombstones in PostgreSQL (thread-safe, pooled connections)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._what = f"the key store {redacted(url)}"
        try:
            self._pool = open_pool(url, self._what)
        except PostgresUnavailable as error:
            raise KeyStoreUnavailable(f"{error}; check AME_KEY_STORE") from None

    def data_version(self) -> int:
        """Changes whenever a customer is erased (what cached keys depend on)."""
        return self.erased_generation()

    def keys(self, customer_ids: Iterable[str], create: bool) -> dict[str, bytes | None]:
        """The key of each customer; with ``create``, a new key for customers that have none and were never
        erased (two writers racing keep the first key). Erased customers map to None."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        with pooled(self._pool, self._what, transaction=create) as conn:
            if create:
                now = time.time_ns() // 1000
                erased = {r[0] for r in conn.raw.execute(
                    "select customer_id from erased_customers where customer_id = any(%s)", (ids,))}
                rows = [(c, os.urandom(32), now) for c in ids if c not in erased]
                if rows:
                    conn.raw.cursor().executemany(
                        "insert into customer_keys (customer_id, key, created_at_us) values (%s, %s, %s)"
                        " on conflict (customer_id) do nothing", rows)
            found = dict(conn.raw.execute(
                "select customer_id, key from customer_keys where customer_id = any(%s)", (ids,)).fetchall())
        return {c: (bytes(found[c]) if c in found else None) for c in ids}

    def erase(self, customer_id: str, event_id: str | None = None, requested_by: str | None = None) -> bool:
        """Delete the customer's key and record the erasure in one transaction; True if a key existed."""
        with pooled(self._pool, self._what, transaction=True) as conn:
            deleted = conn.raw.execute("delete from customer_keys where customer_id = %s", (customer_id,)).rowcount
            conn.raw.execute(
                "insert into erased_customers (customer_id, erased_at_us, event_id, requested_by) values (%s, %s, %s, %s)"
                " on conflict (customer_id) do update set erased_at_us = excluded.erased_at_us,"
                " event_id = excluded.event_id, requested_by = excluded.requested_by",
                (customer_id, time.time_ns() // 1000, event_id, requested_by))
        with pooled(self._pool, self._what, transaction=False) as conn:
            conn.raw.execute("vacuum customer_keys")  # frees the row now (a role that may not: a warning, autovacuum will)
        return deleted > 0

    def is_erased(self, customer_id: str) -> bool:
        with pooled(self._pool, self._what, transaction=False) as conn:
            return conn.raw.execute("select 1 from erased_customers where customer_id = %s",
                                    (customer_id,)).fetchone() is not None

    def erased_customers(self) -> set[str]:
        """Every erased customer: training code drops them from the next training set."""
        with pooled(self._pool, self._what, transaction=False) as conn:
            return {row[0] for row in conn.raw.execute("select customer_id from erased_customers")}

    def erased_generation(self) -> int:
        with pooled(self._pool, self._what, transaction=False) as conn:
            return int(conn.raw.execute("select count(*) from erased_customers").fetchone()[0])

    def close(self) -> None:
        self._pool.close()
