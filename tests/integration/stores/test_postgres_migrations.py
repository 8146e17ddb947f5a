"""The PostgreSQL schema migrations: applied in order, once, and safely by processes that start together."""

from __future__ import annotations

import threading

import psycopg
import pytest

from data.postgres_db import PostgresUnavailable, open_pool, redacted, to_pyformat
from data.postgres_migrations import MIGRATIONS, Migration, migrate, schema_version
from data.settings import get_settings


def test_migrations_apply_once_in_order(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert migrate(conn) == [m.version for m in MIGRATIONS]
        assert migrate(conn) == [] and schema_version(conn) == MIGRATIONS[-1].version
        extra = (*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "a later change", "create table later (x int)"))
        assert migrate(conn, extra) == [extra[-1].version] and schema_version(conn) == extra[-1].version


def test_concurrent_migrators_apply_each_migration_once(postgres_url: str) -> None:
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                applied.append(migrate(conn))
        except Exception as error:  # noqa: BLE001 - collected: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(map(tuple, applied)) == [()] * 5 + [tuple(m.version for m in MIGRATIONS)]


def test_an_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_POSTGRES_CONNECT_TIMEOUT_S", "1")
    get_settings.cache_clear()
    url = "postgresql://ame:secret@127.0.0.1:1/ame?connect_timeout=1"
    with pytest.raises(PostgresUnavailable, match=r"cannot reach PostgreSQL for the test store .*ame:\*\*\*@"):
        open_pool(url, "the test store")


def test_parameters_are_translated_for_psycopg() -> None:
    assert to_pyformat("select ? where x like '5%'") == "select %s where x like '5%%'"
    assert redacted("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
