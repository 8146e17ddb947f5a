"""The Salesforce client and the outcome pull, against the stub on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from data.crm.outcomes import pull_outcomes, soql_time, watermark
from data.crm.salesforce import CrmError, CrmNotConfigured, SalesforceClient, SalesforceConfig
from data.crm.tasks import CUSTOMER_FIELD, push_task
from data.events import TaskCreated
from data.log import open_log
from data.log.base import StoredEvent
from data.settings import Settings
from tests.integration.crm.salesforce_stub import SalesforceStub


def _client() -> SalesforceClient:
    return SalesforceClient(SalesforceConfig.from_settings())


def _task(event_id: str = "task-1") -> StoredEvent:
    event = TaskCreated(event_id=event_id, customer_id="c-1", occurred_at=datetime(2026, 3, 1, tzinfo=UTC), source="agent:scoring",
                        properties={"task_type": "call_lead", "reason": "lead score 85 >= 80 after content_download",
                                    "priority": "high"})
    return StoredEvent.of(event, 1, 0)


def test_a_task_is_upserted_once_on_its_event_id(salesforce: SalesforceStub) -> None:
    client = _client()
    first = push_task(client, _task())
    again = push_task(client, _task())
    assert first.created and not again.created and first.record_id == again.record_id
    (task,) = salesforce.records["Task"].values()
    assert task["AME_Event_Id__c"] == "task-1" and task[CUSTOMER_FIELD] == "c-1" and task["Priority"] == "High"
    assert task["Subject"].startswith("Call lead: lead score 85")
    token_calls = [r for r in salesforce.requests if r.path == "/services/oauth2/token"]
    assert len(token_calls) == 1, "the token is reused"


def test_an_expired_session_signs_in_again(salesforce: SalesforceStub) -> None:
    client = _client()
    push_task(client, _task("t-1"))
    salesforce.tokens.clear()  # the org revoked the session
    assert push_task(client, _task("t-2")).created
    assert len([r for r in salesforce.requests if r.path == "/services/oauth2/token"]) == 2


def test_bad_credentials_and_missing_settings_say_what_to_fix(salesforce: SalesforceStub) -> None:
    config = SalesforceConfig(salesforce.url, "app-id", "wrong")
    with pytest.raises(CrmError, match=r"sign-in failed: HTTP 400.*AME_SALESFORCE_CLIENT_ID"):
        push_task(SalesforceClient(config), _task())
    with pytest.raises(CrmNotConfigured, match="AME_SALESFORCE_URL, AME_SALESFORCE_CLIENT_ID"):
        SalesforceConfig.from_settings(Settings(salesforce_url="", salesforce_client_id="", salesforce_client_secret="x"))


def test_outcomes_are_pulled_incrementally_by_modstamp(salesforce: SalesforceStub, log_url: str) -> None:
    salesforce.page_size = 2  # the pull follows nextRecordsUrl
    won = [salesforce.add("Opportunity", StageName="Prospecting", IsClosed=False, IsWon=False, Amount=100.0,
                          **{CUSTOMER_FIELD: f"c-{i}"}) for i in range(3)]
    salesforce.close_opportunity(won[0], won=True)
    salesforce.close_opportunity(won[1], won=False)
    salesforce.add("Opportunity", StageName="Closed Won", IsClosed=True, IsWon=True)  # no customer id: not attributed
    lead = salesforce.add("Lead", Status="Open", IsConverted=False, **{CUSTOMER_FIELD: "c-9"})
    salesforce.update("Lead", lead, IsConverted=True, Status="Closed - Converted")
    log = open_log(log_url)
    first = pull_outcomes(_client(), log)
    assert (first.opportunities, first.leads, first.unattributed, first.appended) == (3, 1, 1, 3)
    events = {e.event_type: e for e in log.read(0, 100).events}
    assert set(events) == {"opportunity_won", "opportunity_lost", "lead_converted"}
    assert events["opportunity_won"].customer_id == "c-0" and events["opportunity_won"].properties["amount"] == 100.0
    assert watermark(log) == first.watermark

    again = pull_outcomes(_client(), log)  # nothing new: the records at the watermark are duplicates
    assert again.appended == 0 and again.opportunities + again.leads <= 2
    salesforce.close_opportunity(won[2], won=True)
    third = pull_outcomes(_client(), log)
    assert third.appended == 1 and third.since == first.watermark
    soql = [parse_qs(r.query)["q"][0] for r in salesforce.requests if r.path.endswith("/query")]
    assert f"SystemModstamp >= {soql_time(first.watermark)}" in soql[-2]
    log.close()
