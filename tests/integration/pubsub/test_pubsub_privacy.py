"""Must show (issue 10) on Pub/Sub, against Google's emulator: messages carry PII only as ``enc:v1:`` tokens,
consumers still see plaintext, an erasure (crypto-shredding) makes every retained message of the customer read
null, and messages without PII are published byte for byte as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.cloud import pubsub_v1

from data.events import LeadCreated, LeadCreatedProperties, Purchase, PurchaseProperties
from data.log.base import StoredEvent, properties_json
from data.log.pubsub import encode_event
from data.log.pubsub_admin import ensure_subscription, ensure_topic, parse_pubsub_url
from data.log.pubsub_subscriber import PubSubSubscriber
from data.privacy.encrypting_log import EncryptingLog
from data.privacy.erase import PUBSUB_LOG_NOTE, erase_customer
from data.projections.store import SqliteStateStore
from data.settings import get_settings
from tests.integration.pubsub.test_pubsub_backend import WAIT_S, _pull_all

pytestmark = pytest.mark.emulator

TARGET, KEEP = "cust-erase-ps-01", "cust-keep-ps-01"
SECRETS = {"email": "Orsolya.Vantreeck@pubsub-erase.example", "first_name": "Orsolyabeth", "last_name": "Vantreeck",
           "phone": "+15550004321"}
KEEP_EMAIL = "keep.harrowgate@pubsub-erase.example"
AT = datetime(2026, 2, 1, 9, tzinfo=UTC)


def _lead(cid: str, i: int, **props: Any) -> LeadCreated:
    return LeadCreated(event_id=f"lead-{cid}-{i}", customer_id=cid, occurred_at=AT,
                       properties=LeadCreatedProperties(**props))


def _needles() -> list[bytes]:
    values = [*SECRETS.values(), SECRETS["email"].lower()]
    return [v.encode() for v in values] + [v.encode("utf-16-le") for v in values]


def _subscriptions(url: str, *names: str) -> list[str]:
    """Subscriptions made before anything is published, so each one retains every message."""
    ref = parse_pubsub_url(url)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    try:
        ensure_topic(publisher, ref.path)
        paths = [ref.subscription_path(f"{ref.topic}-{n}") for n in names]
        for path in paths:
            ensure_subscription(subscriber, path, ref.path, ack_deadline_s=10, retry_backoff_s=None)
    finally:
        subscriber.close()
    return paths


class LeadTable:
    """A handler that keeps what the events said (plaintext, as consumers see it), in the state store."""

    def __init__(self) -> None:
        self.seen: list[StoredEvent] = []

    def __call__(self, conn: sqlite3.Connection, events: Sequence[StoredEvent]) -> None:
        conn.execute("create table if not exists leads (customer_id text primary key, email text, first_name text)")
        for e in events:
            self.seen.append(e)
            if e.event_type == "lead_created":
                p = orjson.loads(e.properties_json)
                conn.execute("insert or replace into leads values (?, ?, ?)", (e.customer_id, p["email"], p["first_name"]))


def _consume(subscription: str, store: SqliteStateStore, consumer: str, expected: int) -> LeadTable:
    handler = LeadTable()
    subscriber = PubSubSubscriber(subscription, store, consumer, handler, full_events=True).start()
    try:
        assert subscriber.wait_for(lambda s: s.applied >= expected, WAIT_S), subscriber.stats
        assert subscriber.stats.poison_nacked == 0 and subscriber.error is None
    finally:
        subscriber.stop()
    return handler


def test_messages_hold_tokens_consumers_see_plaintext_and_erasure_shreds_them(
        log: EncryptingLog, pubsub_url: str, tmp_path: Path) -> None:
    raw, live, later = _subscriptions(pubsub_url, "raw", "live", "later")
    log.append([_lead(TARGET, 0, **SECRETS, company="Vantreeck GmbH"), _lead(KEEP, 0, email=KEEP_EMAIL, first_name="Keepwell")])

    # on the wire and in retention: tokens only
    bodies = [m.data for m in _pull_all(raw, 2)]
    assert len(bodies) == 2
    for body in bodies:
        assert not [n for n in _needles() if n in body] and b'"enc:v1:' in body
    assert KEEP_EMAIL.encode() not in b"".join(bodies)

    # the consumer decrypts: its handler sees plaintext
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    store = SqliteStateStore(state_url)
    seen = _consume(live, store, "live", 2).seen
    store.close()
    by_customer = {e.customer_id: e.to_event() for e in seen}
    target = by_customer[TARGET].properties
    assert (target.email, target.first_name, target.last_name, target.phone) == (
        SECRETS["email"], SECRETS["first_name"], SECRETS["last_name"], SECRETS["phone"])
    assert SECRETS["email"].encode() in (tmp_path / "state.db").read_bytes()  # the plaintext copy to sweep

    report = erase_customer(TARGET, pubsub_url, state_url, None, requested_by="test", reason="ticket-1")
    assert report.key_deleted and report.log is None and report.log_note == PUBSUB_LOG_NOTE
    assert report.pii_values >= 2 and report.state.cells >= 2
    state_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert not [n for n in _needles() if n in state_bytes] and KEEP_EMAIL.encode() in state_bytes
    erased = [orjson.loads(m.data) for m in _pull_all(raw, 1)]
    assert [(e["event_type"], e["customer_id"]) for e in erased] == [("customer_erased", TARGET)]

    # a consumer reading the retained messages after the erasure: the target's PII is null, the other's intact
    log.append([_lead(TARGET, 1, email="back.again@pubsub-erase.example", first_name="Again")])
    store = SqliteStateStore(f"sqlite:///{tmp_path / 'later.db'}")
    seen = _consume(later, store, "later", 4).seen
    store.close()
    leads = {e.event_id: e.to_event().properties for e in seen if e.event_type == "lead_created"}
    old, new, kept = leads[f"lead-{TARGET}-0"], leads[f"lead-{TARGET}-1"], leads[f"lead-{KEEP}-0"]
    assert (old.email, old.first_name, old.last_name, old.phone, old.company) == (None,) * 5
    assert (new.email, new.first_name) == (None, None) and kept.email == KEEP_EMAIL
    assert b"back.again" not in b"".join(m.data for m in _pull_all(raw, 1))  # an erased customer's new PII is not sent


def test_messages_without_pii_are_published_as_before(log: EncryptingLog, pubsub_url: str) -> None:
    (raw,) = _subscriptions(pubsub_url, "raw")
    events = [Purchase(event_id=f"buy-{i}", customer_id=f"c{i % 4}", occurred_at=AT,
                       properties=PurchaseProperties(order_id=f"o-{i}", amount=9.5 + i)) for i in range(40)]
    log.append(events)
    messages = _pull_all(raw, 40)
    assert len(messages) == 40
    by_id = {e.event_id: e for e in events}
    for m in messages:
        body = orjson.loads(m.data)
        event = by_id[body["event_id"]]
        before = orjson.dumps({
            "event_id": event.event_id, "event_type": "purchase", "customer_id": event.customer_id,
            "occurred_at": "2026-02-01T09:00:00Z", "recorded_at": body["recorded_at"], "source": event.source,
            "schema_version": event.schema_version, "causation_id": None,
            "properties": orjson.Fragment(properties_json(event))})
        recorded_us = round(datetime.fromisoformat(body["recorded_at"]).timestamp() * 1e6)
        assert m.data == before == encode_event(event, recorded_us)
    assert not (get_settings().home / "keys.db").exists()
