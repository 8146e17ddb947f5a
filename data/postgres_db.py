"""PostgreSQL connections for the stores that keep production state (``postgresql://`` URLs).

Each store opens one :func:`open_pool` (psycopg 3 with psycopg_pool), which also applies the schema migrations
(:mod:`data.postgres_migrations`) once. Stores write their SQL once for both backends: statements use
sqlite3's ``?`` parameters and upserts written as ``insert ... on conflict``, and :class:`PgConnection` hands
them to psycopg with its ``%s`` parameters. Failures to reach the server become :class:`PostgresUnavailable`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from data.postgres_migrations import migrate
from data.settings import get_settings


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server cannot be reached, or refused a statement for a reason outside the caller's data."""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """``?`` parameters as psycopg's ``%s`` (a literal ``%`` doubled). The stores' SQL holds no ``?`` in strings."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection with sqlite3's calling convention: ``execute(sql, params)`` with ``?`` parameters,
    returning a cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``), and ``executemany``."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        if not params:  # no parameters: sent as written (several statements allowed)
            return self.raw.execute(sql)  # type: ignore[arg-type]
        return self.raw.execute(to_pyformat(sql), tuple(params))  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        rows = list(rows)
        if rows:
            cursor.executemany(to_pyformat(sql), rows)  # type: ignore[arg-type]
        return cursor


def open_pool(url: str, what: str) -> ConnectionPool:
    """A connection pool on ``url`` (autocommit connections), its schema migrated; :class:`PostgresUnavailable`
    naming ``what`` when the server cannot be reached within ``AME_POSTGRES_CONNECT_TIMEOUT_S``."""
    settings = get_settings()
    timeout = settings.postgres_connect_timeout_s
    pool = ConnectionPool(url, min_size=1, max_size=settings.postgres_pool_max_size, open=False, timeout=timeout,
                          kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))}, name=what)
    try:
        pool.open(wait=True, timeout=timeout)
        with pool.connection() as conn:
            migrate(conn)
    except (PoolTimeout, psycopg.OperationalError) as error:
        pool.close()
        raise PostgresUnavailable(
            f"cannot reach PostgreSQL for {what} at {redacted(url)}: {error}; check the URL, that the server runs "
            "and that this machine may connect to it"
        ) from None
    except BaseException:
        pool.close()
        raise
    return pool


@contextmanager
def pooled(pool: ConnectionPool, what: str, transaction: bool) -> Iterator[PgConnection]:
    """A connection of ``pool`` for the block: one transaction when ``transaction`` (committed at the end,
    rolled back on an exception), else autocommit reads."""
    try:
        with pool.connection() as conn:
            if transaction:
                with conn.transaction():
                    yield PgConnection(conn)
            else:
                yield PgConnection(conn)
    except PoolTimeout as error:
        raise PostgresUnavailable(f"no PostgreSQL connection for {what}: {error}") from None
    except psycopg.OperationalError as error:
        raise PostgresUnavailable(f"PostgreSQL failed for {what}: {error}") from None


@contextmanager
def scratch_schema(server: str, prefix: str) -> Iterator[str]:
    """A URL of ``server`` whose connections work in a new schema of their own (its ``search_path``), dropped after
    the block: how tests and benchmarks share one server without seeing each other's tables."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    try:
        yield f"{server}{'&' if '?' in server else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"drop schema {schema} cascade")
