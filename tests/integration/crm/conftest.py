"""Fixtures of the CRM tests: the Salesforce stub, and the settings that point the engine at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from data.settings import get_settings
from tests.integration.crm.salesforce_stub import SalesforceStub


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceStub]:
    stub = SalesforceStub()
    monkeypatch.setenv("AME_SALESFORCE_URL", stub.url)
    monkeypatch.setenv("AME_SALESFORCE_CLIENT_ID", stub.client_id)
    monkeypatch.setenv("AME_SALESFORCE_CLIENT_SECRET", stub.client_secret)
    get_settings.cache_clear()
    try:
        yield stub
    finally:
        stub.close()
