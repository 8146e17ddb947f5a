"""Fixtures of ``ame infra init``'s tests: the Pub/Sub emulator and PostgreSQL of the other suites, and bqemulator."""

from __future__ import annotations

import os

import pytest

from tests.integration.pubsub.conftest import _port_open, pubsub_emulator, pubsub_url  # noqa: F401 - fixtures
from tests.integration.stores.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures


@pytest.fixture
def bigquery_emulator(monkeypatch: pytest.MonkeyPatch) -> str:
    """bqemulator's ``http://host:port``, from ``AME_BQ_EMULATOR`` as CI exports it (skips without a running one),
    set as ``BIGQUERY_EMULATOR_HOST`` for the Google client."""
    endpoint = os.environ.get("AME_BQ_EMULATOR", "")
    host, _, port = endpoint.rpartition(":")
    if not endpoint or not _port_open(host, int(port)):
        pytest.skip(f"no BigQuery emulator at AME_BQ_EMULATOR={endpoint!r}: run scripts/start_bqemulator.sh and export "
                    "AME_BQ_EMULATOR=127.0.0.1:9050")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://{endpoint}")
    return f"http://{endpoint}"
