"""Each sender's request at the provider stub (SMS through Twilio, push through FCM), a provider's refusal and a
throttled send, the guardrails at sending time (quiet hours, the frequency cap, no address), and the Twilio and
push webhooks through the decision API."""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from agents.runtime import AgentShard, ShardConfig
from channels.config import ProvidersConfig, SendGridConfig
from channels.dispatcher import DispatchAgent, DispatchConfig
from channels.inbound import twilio_signature
from channels.ledger import MessageLedger
from channels.senders import ChannelNotConfigured, OutboundMessage, SendGridSender
from data.activation.config import RateLimit, RetryPolicy
from data.activation.destinations.webhook import sign
from data.activation.transport import HttpTransport
from data.events import DecisionMade
from tests.integration.activation.activation_stub import StubResponse, StubServer
from tests.integration.channels.conftest import (
    CUSTOMER,
    append,
    customer_events,
    decision_api,
    dispatch_agent,
    events_of,
    morning,
    run_shard,
)

ALL = {"email": True, "sms": True, "push": True}


def decision(n: int, action: str, at: datetime) -> DecisionMade:
    channel = "email" if action == "offer" else action
    return DecisionMade.model_validate({
        "event_id": f"decision-{n}", "customer_id": CUSTOMER, "occurred_at": at, "source": "agent:journey",
        "properties": {"agent": "journey", "action": action, "channel": channel, "propensity": 1.0,
                       "policy_name": "test", "policy_version": "1"}})


def test_sms_and_push_go_out_in_the_providers_shapes(tmp_path: Path, log_url: str, state_url: str,
                                                      provider_stub: StubServer) -> None:
    at = morning() + timedelta(hours=2)
    append(log_url, [*customer_events(morning(), ALL), decision(1, "sms", at)])
    append(log_url, [decision(2, "push", at + timedelta(days=3))])
    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")

    sms, push = provider_stub.requests
    assert sms.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sms.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:tw-token").decode()
    assert sms.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(urllib.parse.parse_qsl(sms.body.decode()))
    assert (form["To"], form["From"]) == ("+15551234567", "+15550000000") and form["Body"]
    assert push.path == "/v1/projects/ame-test/messages:send"
    assert push.headers["authorization"] == "Bearer fcm-token"
    message = push.json["message"]
    assert message["token"] == "fcm-token-of-ann" and message["data"]["decision_id"] == "decision-2"
    assert message["notification"]["body"]
    [sms_sent] = events_of(log_url, "sms_sent")
    [push_sent] = events_of(log_url, "push_sent")
    assert sms_sent.properties.provider_message_id == f"SM{1:032d}"
    assert push_sent.properties.provider_message_id == "projects/ame-test/messages/0:2"


def test_the_guardrails_and_the_address_are_checked_at_sending_time(tmp_path: Path, log_url: str, state_url: str,
                                                                     provider_stub: StubServer) -> None:
    at = morning() + timedelta(hours=2)
    append(log_url, [*customer_events(morning(), {"email": True, "sms": True}),
                     decision(1, "email", at),                       # sent
                     decision(2, "offer", at + timedelta(hours=1)),  # the same day: the cap holds
                     decision(3, "sms", at + timedelta(days=3, hours=12)),  # 22:00 UTC: quiet hours
                     decision(4, "push", at + timedelta(days=6))])  # no push consent
    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")
    assert [r.path for r in provider_stub.requests] == ["/v3/mail/send"]
    reasons = {e.properties.decision_id: e.properties.reason for e in events_of(log_url, "message_suppressed")}
    assert reasons == {"decision-2": "frequency_cap", "decision-3": "quiet_hours", "decision-4": "consent"}


def test_a_customer_without_an_address_and_a_refused_request_are_logged_not_sent(
        tmp_path: Path, log_url: str, state_url: str, provider_stub: StubServer) -> None:
    at = morning() + timedelta(hours=2)
    lead, *grants = customer_events(morning(), ALL)
    bare = lead.model_copy(update={"properties": lead.properties.model_copy(update={"push_token": None})})
    append(log_url, [bare, *grants, decision(1, "push", at), decision(2, "sms", at + timedelta(days=3))])
    provider_stub.queue.append(StubResponse(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}))
    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")
    suppressed = {e.properties.decision_id: e.properties for e in events_of(log_url, "message_suppressed")}
    assert suppressed["decision-1"].reason == "no_address"
    assert suppressed["decision-2"].reason == "rejected" and "21211" in (suppressed["decision-2"].detail or "")
    ledger = MessageLedger.from_url(state_url)
    assert ledger.by_decision("decision-2").outcome == "rejected"  # type: ignore[union-attr]
    ledger.close()


def test_a_throttled_send_is_retried_by_the_activation_transport(provider_stub: StubServer) -> None:
    provider_stub.queue.append(StubResponse(429, {"errors": [{"message": "too many"}]}, {"Retry-After": "0"}))
    config = SendGridConfig(url=provider_stub.url, api_key="k", sender="news@example.com")  # type: ignore[arg-type]
    sender = SendGridSender(config, HttpTransport(RetryPolicy(max_attempts=3, base_delay_s=0.0), RateLimit()))
    assert sender.send(OutboundMessage("d1", "c1", "ann@example.com", "hello", "hi")) == "sgmsg1"
    assert len(provider_stub.requests) == 2 and sender.transport.stats.throttled == 1
    with pytest.raises(ChannelNotConfigured, match="AME_CHANNELS_SENDGRID_API_KEY"):
        SendGridSender(SendGridConfig(sender="news@example.com"), sender.transport)


@pytest.fixture
def api(tmp_path: Path, log_url: str, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("AME_CHANNELS_TWILIO_AUTH_TOKEN", "tw-token")
    monkeypatch.setenv("AME_CHANNELS_PUSH_WEBHOOK_SECRET", "push-secret")
    monkeypatch.setenv("AME_CHANNELS_WEBHOOK_BASE_URL", "https://engine.example")
    with decision_api(tmp_path, log_url, state_url) as client:
        yield client


def test_twilio_and_push_webhooks_become_events(tmp_path: Path, log_url: str, state_url: str,
                                                provider_stub: StubServer, api: TestClient) -> None:
    at = morning() + timedelta(hours=2)
    append(log_url, [*customer_events(morning(), ALL), decision(1, "sms", at), decision(2, "push", at + timedelta(days=3))])
    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")
    sid, name = f"SM{1:032d}", "projects/ame-test/messages/0:2"

    form = [("MessageSid", sid), ("MessageStatus", "delivered"), ("AccountSid", "AC123")]
    signature = twilio_signature("tw-token", "https://engine.example/v1/webhooks/twilio", form)
    body = urllib.parse.urlencode(form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert api.post("/v1/webhooks/twilio", content=body, headers={**headers, "X-Twilio-Signature": "AAAA"}).status_code == 401
    answer = api.post("/v1/webhooks/twilio", content=body, headers={**headers, "X-Twilio-Signature": signature})
    assert answer.status_code == 200 and answer.json()["appended"] == 1
    [delivered] = events_of(log_url, "sms_delivered")
    assert (delivered.customer_id, delivered.properties.provider_message_id) == (CUSTOMER, sid)

    now = str(int(time.time()))
    receipts = orjson.dumps({"receipts": [{"message_id": name, "event": "delivered", "id": "r1"},
                                          {"decision_id": "decision-2", "event": "opened", "id": "r2"},
                                          {"message_id": "projects/ame-test/messages/0:999", "event": "opened", "id": "r3"}]})
    signed = {"X-AME-Timestamp": now, "X-AME-Signature": sign("push-secret", now, receipts)}
    answer = api.post("/v1/webhooks/fcm", content=receipts, headers=signed)
    assert answer.status_code == 200
    assert (answer.json()["appended"], answer.json()["unknown_messages"]) == (2, 1)
    assert [e.customer_id for e in events_of(log_url, "push_delivered", "push_open")] == [CUSTOMER, CUSTOMER]
    assert api.post("/v1/webhooks/fcm", content=receipts, headers={**signed, "X-AME-Signature": "sha256=00"}).status_code == 401
    assert api.post("/v1/webhooks/nope", content=b"{}").status_code == 404


def test_a_channel_without_credentials_stops_the_batch_and_sends_once_configured(
        tmp_path: Path, log_url: str, state_url: str, provider_stub: StubServer) -> None:
    append(log_url, [*customer_events(morning(), ALL), decision(1, "sms", morning() + timedelta(hours=2))])
    bare = DispatchAgent(DispatchConfig(clock="event", ledger_url=state_url, providers=ProvidersConfig()))
    shard = AgentShard(bare, ShardConfig(log_url=log_url, state_dir=tmp_path / "agents", state_store=""), start=False)
    with pytest.raises(ChannelNotConfigured, match="AME_CHANNELS_TWILIO_ACCOUNT_SID"):
        shard.step()
    shard.close()
    assert events_of(log_url, "sms_sent", "message_suppressed") == [] and provider_stub.requests == []
    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")
    [sent] = events_of(log_url, "sms_sent", "message_suppressed")
    assert sent.event_type == "sms_sent" and len(provider_stub.requests) == 1
