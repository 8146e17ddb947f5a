"""PostgreSQL for the stores' contract suites, and the backends each suite runs over.

The server: ``AME_TEST_POSTGRES`` when set (``.ci/run`` starts one with scripts/start_postgres.sh), else one
started by that script for this session and stopped at the end. Where neither works the PostgreSQL cases skip
with the reason, unless ``AME_REQUIRE_POSTGRES=1`` (CI), where they fail. Each test gets a schema of its own
(``search_path`` in the URL), dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from data.postgres_db import scratch_schema
from tests.conftest import ROOT


def _unavailable(reason: str) -> None:
    if os.environ.get("AME_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (AME_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL is not available: {reason}; run scripts/start_postgres.sh and export its line")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running PostgreSQL server's database."""
    url = os.environ.get("AME_TEST_POSTGRES", "")
    if url:
        yield url
        return
    folder = tmp_path_factory.mktemp("postgres")
    env = {**os.environ, "AME_POSTGRES_DIR": str(folder)}
    started = subprocess.run([str(ROOT / "scripts" / "start_postgres.sh")], capture_output=True, text=True,
                             env=env, timeout=300, check=False)
    line = next((w for w in started.stdout.split() if w.startswith("AME_TEST_POSTGRES=")), "")
    if started.returncode != 0 or not line:
        _unavailable(f"scripts/start_postgres.sh failed: {started.stderr.strip()[-500:]}")
    try:
        yield line.split("=", 1)[1]
    finally:
        subprocess.run([str(ROOT / "scripts" / "stop_postgres.sh")], env=env, capture_output=True, timeout=60,
                       check=False)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own (dropped after the test)."""
    try:
        psycopg.connect(postgres_server, autocommit=True).close()
    except psycopg.OperationalError as error:
        _unavailable(f"cannot connect to {postgres_server}: {error}")
    with scratch_schema(postgres_server, "t") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh state store URL on each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))
