"""Fixtures of ``ame infra init``'s tests: the Pub/Sub emulator and PostgreSQL of the other suites, and bqemulator."""

from __future__ import annotations

import pytest

from tests.integration.pubsub.conftest import pubsub_emulator, pubsub_url  # noqa: F401 - fixtures
from tests.integration.stores.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.integration.warehouse.test_warehouse_bigquery_emulator import _endpoint


@pytest.fixture
def bigquery_emulator(monkeypatch: pytest.MonkeyPatch) -> str:
    """bqemulator's ``http://host:port`` (``AME_BQ_EMULATOR``, as CI exports it; skips without it), set as
    ``BIGQUERY_EMULATOR_HOST`` for the Google client."""
    endpoint = f"http://{_endpoint()}"
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", endpoint)
    return endpoint
