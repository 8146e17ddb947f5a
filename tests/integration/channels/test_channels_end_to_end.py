"""The must-show of the channel senders: a journey decision becomes a provider request at the stub and an
``email_sent`` with the provider's message id; the provider's signed ``delivered`` and ``opened`` reports come back
through ``POST /v1/webhooks/sendgrid`` as events; a forged signature is refused with 401 and the log is unchanged.
Also: consent revoked after the decision suppresses the send, and a redelivered decision does not send twice."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from data.events import ConsentChanged
from data.log import open_log
from tests.integration.activation.activation_stub import StubServer
from tests.integration.channels.conftest import (
    CUSTOMER,
    append,
    customer_events,
    decide,
    decision_api,
    dispatch_agent,
    events_of,
    morning,
    run_shard,
)


def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(der).decode()


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp, "Content-Type": "application/json"}


@pytest.fixture
def api(tmp_path: Path, log_url: str, state_url: str,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, ec.EllipticCurvePrivateKey]]:
    key, public = sendgrid_keys()
    monkeypatch.setenv("AME_CHANNELS_SENDGRID_WEBHOOK_PUBLIC_KEY", public)
    with decision_api(tmp_path, log_url, state_url) as client:
        yield client, key


def test_a_decision_is_sent_and_the_providers_reports_come_back_as_events(
        tmp_path: Path, log_url: str, state_url: str, provider_stub: StubServer,
        api: tuple[TestClient, ec.EllipticCurvePrivateKey]) -> None:
    append(log_url, customer_events(morning(), {"email": True}))
    decide(log_url, tmp_path / "agents", "email")
    [decision] = [e for e in events_of(log_url, "decision_made") if e.customer_id == CUSTOMER]
    assert decision.properties.action == "email"

    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")

    [request] = provider_stub.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == "Bearer sg-key"
    body = request.json
    assert body["personalizations"][0]["to"] == [{"email": "ann@example.com"}]
    assert body["personalizations"][0]["custom_args"]["decision_id"] == decision.event_id
    assert body["from"] == {"email": "news@example.com"} and body["content"][0]["type"] == "text/plain"
    [sent] = events_of(log_url, "email_sent")
    assert sent.properties.provider_message_id == "sgmsg1"
    assert (sent.customer_id, sent.causation_id, sent.properties.decision_id) == (CUSTOMER, decision.event_id, decision.event_id)

    # a redelivered decision (the dispatcher's position lost) is not sent again, and re-derives the same event
    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents-again")
    assert len(provider_stub.requests) == 1
    assert [e.event_id for e in events_of(log_url, "email_sent")] == [sent.event_id]

    client, key = api
    now = str(int(time.time()))
    reports = orjson.dumps([
        {"email": "ann@example.com", "timestamp": int(time.time()), "event": "delivered", "sg_event_id": "ev-d",
         "sg_message_id": "sgmsg1.filterdrecv-5645d9c87f-78xgx-1-5DF1F3FF-1.0"},
        {"email": "ann@example.com", "timestamp": int(time.time()), "event": "open", "sg_event_id": "ev-o",
         "sg_message_id": "sgmsg1.filterdrecv-5645d9c87f-78xgx-1-5DF1F3FF-1.0", "decision_id": decision.event_id},
        {"email": "ann@example.com", "timestamp": int(time.time()), "event": "processed", "sg_event_id": "ev-p",
         "sg_message_id": "sgmsg1.filterdrecv-5645d9c87f-78xgx-1-5DF1F3FF-1.0"},
    ])
    answer = client.post("/v1/webhooks/sendgrid", content=reports, headers=signed(key, reports, now))
    assert answer.status_code == 200, answer.text
    assert answer.json()["appended"] == 2
    [delivered] = events_of(log_url, "email_delivered")
    [opened] = events_of(log_url, "email_open")
    for event in (delivered, opened):
        assert (event.customer_id, event.causation_id) == (CUSTOMER, decision.event_id)
        assert event.properties.provider_message_id == "sgmsg1"
    # the provider retries the same report: nothing new
    again = client.post("/v1/webhooks/sendgrid", content=reports, headers=signed(key, reports, now))
    assert again.json()["appended"] == 0 and again.json()["duplicates"] == 2

    log = open_log(log_url)
    head = log.head()
    forged_key, _ = sendgrid_keys()
    forged = client.post("/v1/webhooks/sendgrid", content=reports, headers=signed(forged_key, reports, now))
    tampered = client.post("/v1/webhooks/sendgrid", content=reports.replace(b"ev-o", b"ev-x"),
                           headers=signed(key, reports, now))
    unsigned = client.post("/v1/webhooks/sendgrid", content=reports, headers={"Content-Type": "application/json"})
    stale = str(int(time.time()) - 3600)
    replayed = client.post("/v1/webhooks/sendgrid", content=reports, headers=signed(key, reports, stale))
    assert [r.status_code for r in (forged, tampered, unsigned, replayed)] == [401, 401, 401, 401]
    assert log.head() == head
    log.close()


def test_consent_revoked_after_the_decision_suppresses_the_send(
        tmp_path: Path, log_url: str, state_url: str, provider_stub: StubServer) -> None:
    append(log_url, customer_events(morning(), {"email": True}))
    decide(log_url, tmp_path / "agents", "email")
    [decision] = [e for e in events_of(log_url, "decision_made") if e.customer_id == CUSTOMER]
    assert decision.properties.action == "email"
    revoked = ConsentChanged.model_validate({
        "event_id": "consent-email-revoked", "customer_id": CUSTOMER, "occurred_at": decision.occurred_at.replace(minute=5),
        "properties": {"channel": "email", "granted": False}})
    append(log_url, [revoked])

    run_shard(dispatch_agent(provider_stub.url, state_url), log_url, tmp_path / "agents")

    assert provider_stub.requests == []
    assert events_of(log_url, "email_sent") == []
    [suppressed] = events_of(log_url, "message_suppressed")
    assert (suppressed.properties.reason, suppressed.properties.channel) == ("consent", "email")
    assert suppressed.properties.decision_id == decision.event_id
