"""Fixtures of the activation tests: a recording HTTP stub on 127.0.0.1 and credentials in the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.activation.activation_stub import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AME_SALESFORCE_TOKEN": "sf-token", "AME_HUBSPOT_TOKEN": "hs-token",
                        "AME_BRAZE_API_KEY": "braze-key", "AME_GOOGLE_ADS_TOKEN": "ga-token",
                        "AME_GOOGLE_ADS_DEVELOPER_TOKEN": "ga-dev", "AME_WEBHOOK_SECRET": "s3cret"}.items():
        monkeypatch.setenv(name, value)
