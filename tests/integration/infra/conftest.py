"""Fixtures of ``ame infra init``'s tests: the Pub/Sub emulator and PostgreSQL of the other suites, and bqemulator."""

from __future__ import annotations

import os
import socket

import pytest

from tests.integration.pubsub.conftest import pubsub_emulator, pubsub_url  # noqa: F401 - fixtures
from tests.integration.stores.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures


@pytest.fixture
def bigquery_emulator(monkeypatch: pytest.MonkeyPatch) -> str:
    """bqemulator's ``http://host:port`` (``AME_BQ_EMULATOR``, as CI exports it), set as ``BIGQUERY_EMULATOR_HOST``."""
    endpoint = os.environ.get("AME_BQ_EMULATOR", "")
    if not endpoint:
        pytest.skip("AME_BQ_EMULATOR is not set: run scripts/start_bqemulator.sh and export AME_BQ_EMULATOR=127.0.0.1:9050")
    host, _, port = endpoint.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.skip(f"no BigQuery emulator answers at {endpoint}: start it with scripts/start_bqemulator.sh")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://{endpoint}")
    return f"http://{endpoint}"
