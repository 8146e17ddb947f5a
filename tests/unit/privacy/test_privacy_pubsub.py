"""PII over the Pub/Sub backend without the emulator: a recording publisher stands in for the client, and fake
messages for streaming pull. The emulator tests are in tests/integration/pubsub/test_pubsub_privacy.py."""

from __future__ import annotations

import concurrent.futures
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from data.events import (
    IdentityMerged,
    IdentityMergedProperties,
    LeadCreated,
    LeadCreatedProperties,
    Purchase,
    PurchaseProperties,
)
from data.log.base import StoredEvent, properties_json
from data.log.pubsub import PubSubEventLog, decode_message, encode_event
from data.log.pubsub_subscriber import PubSubSubscriber
from data.privacy.codec import FieldCodec, codec_for_log
from data.privacy.encrypting_log import EncryptingLog
from data.privacy.erase import PUBSUB_LOG_NOTE, erase_customer
from data.privacy.errors import UnsupportedForErasure
from data.privacy.keystore import KeyStore
from data.privacy.scrub import pii_in_copies
from data.projections.store import SqliteStateStore
from data.settings import get_settings

URL = "pubsub://ame-test/customer-events"
EMAIL, FIRST, LAST = "Quilla.Brandtmoor@pubsub-privacy.example", "Quillabeth", "Brandtmoor"
PHONE = "+15550009876"  # its token is longer than the field's 32 characters: decrypted before validation
AT = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingPublisher:
    """What PubSubEventLog calls on the client, with every publish accepted at once."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attributes: str) -> concurrent.futures.Future[str]:
        self.messages.append((data, attributes))
        done: concurrent.futures.Future[str] = concurrent.futures.Future()
        done.set_result(str(len(self.messages)))
        return done

    def resume_publish(self, topic: str, key: str) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class FakeMessage:
    data: bytes
    attributes: dict[str, str]
    message_id: str = "m"
    delivery_attempt: int = 1
    acked: list[bool] = field(default_factory=list)

    def ack(self) -> None:
        self.acked.append(True)

    def nack(self) -> None:
        self.acked.append(False)


def _lead(cid: str = "c1", i: int = 0, email: str = EMAIL) -> LeadCreated:
    return LeadCreated(event_id=f"lead-{cid}-{i}", customer_id=cid, occurred_at=AT,
                       properties=LeadCreatedProperties(email=email, first_name=FIRST, last_name=LAST, phone=PHONE))


def _purchase(cid: str, i: int) -> Purchase:
    return Purchase(event_id=f"buy-{cid}-{i}", customer_id=cid, occurred_at=AT,
                    properties=PurchaseProperties(order_id=f"o-{i}", amount=12.5))


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def log(tmp_path: Path, publisher: RecordingPublisher) -> Iterator[EncryptingLog]:
    """The Pub/Sub backend as :func:`data.log.open_log` opens it: wrapped by the log's encryption."""
    opened = EncryptingLog(PubSubEventLog(URL, dead_letter_store=f"sqlite:///{tmp_path / 'dl.db'}", publisher=publisher))
    yield opened
    opened.close()


@pytest.fixture
def codec() -> Iterator[FieldCodec]:
    opened = codec_for_log(URL)
    yield opened
    opened.keys.close()


def _keys_file() -> Path:
    return get_settings().home / "keys.db"


def test_published_pii_is_encrypted_and_decodes_back(log: EncryptingLog, publisher: RecordingPublisher,
                                                     codec: FieldCodec) -> None:
    log.append([_lead()])
    body, attributes = publisher.messages[0]
    for secret in (EMAIL, EMAIL.lower(), FIRST, LAST, PHONE):
        assert secret.encode() not in body
    assert body.count(b'"enc:v1:') == 4 and attributes["event_type"] == "lead_created"
    assert _keys_file().exists()  # AME_KEY_STORE unset: <AME_HOME>/keys.db, for the log and the reader alike
    back = decode_message(body, codec)
    assert (back.properties.email, back.properties.first_name, back.properties.last_name, back.properties.phone) == (
        EMAIL, FIRST, LAST, PHONE)


def test_a_batch_without_pii_publishes_the_same_bytes_and_opens_no_key_store(
        log: EncryptingLog, publisher: RecordingPublisher) -> None:
    events = [_purchase(f"c{i % 3}", i) for i in range(20)]
    log.append(events)
    assert not _keys_file().exists()
    for event, (body, _) in zip(events, publisher.messages, strict=True):
        recorded_us = round(datetime.fromisoformat(orjson.loads(body)["recorded_at"]).timestamp() * 1e6)
        assert body == encode_event(event, recorded_us)
        # the envelope as it was before encryption existed
        assert body == orjson.dumps({
            "event_id": event.event_id, "event_type": "purchase", "customer_id": event.customer_id,
            "occurred_at": "2026-01-01T00:00:00Z", "recorded_at": orjson.loads(body)["recorded_at"],
            "source": event.source, "schema_version": event.schema_version, "causation_id": None,
            "properties": orjson.Fragment(properties_json(event))})


def test_only_the_pii_events_of_a_mixed_batch_change(log: EncryptingLog, publisher: RecordingPublisher,
                                                     codec: FieldCodec) -> None:
    merged = IdentityMerged(event_id="m1", customer_id="c1", occurred_at=AT, properties=IdentityMergedProperties(
        merged_ids=["c9"], identifiers=[f"email:{EMAIL}", "phone:+15550001111"]))
    log.append([_purchase("c1", 0), merged, _purchase("c2", 1)])
    bodies = [b for b, _ in publisher.messages]
    assert b"enc:v1:" not in bodies[0] + bodies[2]
    assert EMAIL.encode() not in bodies[1] and b"+15550001111" not in bodies[1]
    assert decode_message(bodies[1], codec).properties.identifiers == [f"email:{EMAIL}", "phone:+15550001111"]


def test_encryption_switched_off_publishes_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    publisher: RecordingPublisher) -> None:
    monkeypatch.setenv("AME_PRIVACY_ENCRYPT", "false")
    get_settings.cache_clear()
    with EncryptingLog(PubSubEventLog(URL, dead_letter_store=f"sqlite:///{tmp_path / 'dl.db'}", publisher=publisher)) as log:
        log.append([_lead()])
    assert EMAIL.encode() in publisher.messages[0][0] and b"enc:v1:" not in publisher.messages[0][0]


def test_an_erased_customer_reads_null_and_new_pii_is_not_published(
        log: EncryptingLog, publisher: RecordingPublisher, codec: FieldCodec) -> None:
    log.append([_lead("c1"), _lead("c2", email="other@pubsub-privacy.example")])
    KeyStore(_keys_file()).erase("c1", "evt", "test")
    first, second = (decode_message(b, codec) for b, _ in publisher.messages)
    assert (first.properties.email, first.properties.first_name, first.properties.last_name) == (None, None, None)
    assert second.properties.email == "other@pubsub-privacy.example"
    log.append([_lead("c1", 1, email="again@pubsub-privacy.example")])
    body = publisher.messages[-1][0]
    assert b"again@" not in body and b'"email":null' in body


def test_decode_message_without_a_codec_returns_the_event_and_leaves_tokens_alone(
        log: EncryptingLog, publisher: RecordingPublisher) -> None:
    event = _purchase("c1", 0)
    decoded = decode_message(encode_event(event, 1_700_000_000_000_000))
    assert decoded.model_dump(exclude={"recorded_at"}) == event.model_dump(exclude={"recorded_at"})
    assert decoded.recorded_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    log.append([LeadCreated(event_id="l0", customer_id="c1", occurred_at=AT, properties=LeadCreatedProperties(first_name=FIRST))])
    (body, _), = publisher.messages
    assert decode_message(body).properties.first_name.startswith("enc:v1:")  # no codec: nothing is decrypted


def test_decoding_touches_the_key_store_only_for_tokens(log: EncryptingLog, publisher: RecordingPublisher) -> None:
    class Refusing:
        def reveal_envelope(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a message without tokens needs no key")

    plain = LeadCreated(event_id="l0", customer_id="c1", occurred_at=AT, properties=LeadCreatedProperties(acquisition_source="web"))
    log.append([plain, _purchase("c1", 1)])
    assert len(publisher.messages) == 2
    decoded = [decode_message(body, Refusing()) for body, _ in publisher.messages]  # type: ignore[arg-type]
    assert [e.event_id for e in decoded] == ["l0", "buy-c1-1"] and decoded[0].properties.acquisition_source == "web"


class _Subscriber(PubSubSubscriber):
    """The consumer's decode-and-apply path, fed directly (no streaming pull)."""

    def __init__(self, store: SqliteStateStore, seen: list[StoredEvent], codec: FieldCodec | None = None) -> None:
        def handle(conn: sqlite3.Connection, events: Sequence[StoredEvent]) -> None:
            seen.extend(events)

        super().__init__("projects/ame-test/subscriptions/customer-events-test", store, "test", handle,
                         client=object(), full_events=True, codec=codec)  # type: ignore[arg-type]


def test_the_subscriber_hands_plaintext_to_its_handler(tmp_path: Path, log: EncryptingLog,
                                                       publisher: RecordingPublisher) -> None:
    log.append([_lead("c1"), _purchase("c1", 1)])
    store = SqliteStateStore(f"sqlite:///{tmp_path / 'state.db'}")
    seen: list[StoredEvent] = []
    consumer = _Subscriber(store, seen)
    messages = [FakeMessage(body, attrs) for body, attrs in publisher.messages]
    consumer._process(messages)
    assert all(m.acked == [True] for m in messages) and consumer.stats.applied == 2
    lead = seen[0].to_event()
    assert (lead.properties.email, lead.properties.first_name) == (EMAIL, FIRST)
    KeyStore(_keys_file()).erase("c1", "evt", "test")
    again = FakeMessage(publisher.messages[0][0].replace(b"lead-c1-0", b"lead-c1-9"), publisher.messages[0][1])
    consumer._process([again])
    assert again.acked == [True] and seen[-1].to_event().properties.email is None
    consumer.stop()
    assert consumer._codec is None  # the key store it opened is closed
    store.close()


def test_the_subscriber_opens_no_key_store_without_tokens(tmp_path: Path, log: EncryptingLog,
                                                          publisher: RecordingPublisher) -> None:
    log.append([_purchase("c1", i) for i in range(5)])
    store = SqliteStateStore(f"sqlite:///{tmp_path / 'state.db'}")
    seen: list[StoredEvent] = []
    consumer = _Subscriber(store, seen)
    consumer._process([FakeMessage(b, a) for b, a in publisher.messages])
    assert len(seen) == 5 and consumer._codec is None and not _keys_file().exists()
    consumer.stop()
    store.close()


def test_erasure_on_pubsub_shreds_the_key_and_sweeps_the_copies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: EncryptingLog, publisher: RecordingPublisher,
        codec: FieldCodec) -> None:
    log.append([_lead("c1")])
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("create table leads (customer_id text primary key, email text, first_name text)")
    conn.executemany("insert into leads values (?, ?, ?)",
                     [("c1", EMAIL, FIRST), ("c2", "keep@pubsub-privacy.example", "Keep")])
    conn.commit()
    conn.close()
    monkeypatch.setattr("data.privacy.erase.open_log", lambda url: log)
    report = erase_customer("c1", URL, state_url, None, requested_by="test")
    erased = decode_message(publisher.messages[-1][0])
    assert erased.event_type == "customer_erased" and erased.customer_id == "c1"
    assert report.key_deleted and report.log is None and report.log_note == PUBSUB_LOG_NOTE
    assert report.dead_letters is not None and report.state.cells == 2
    assert report.to_dict()["log_note"] == PUBSUB_LOG_NOTE
    assert decode_message(publisher.messages[0][0], codec).properties.email is None
    data = (tmp_path / "state.db").read_bytes()
    assert EMAIL.encode() not in data and FIRST.encode() not in data and b"keep@pubsub-privacy" in data


def test_erasure_refuses_other_logs_clearly(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedForErasure, match=r"sqlite:///path.*pubsub://project/topic"):
        erase_customer("c1", "kafka://broker/topic")


def test_pii_is_found_in_the_copies_by_customer_id(tmp_path: Path, log: EncryptingLog, publisher: RecordingPublisher,
                                                   codec: FieldCodec) -> None:
    log.append([_lead("c1")])
    tokens = orjson.dumps(orjson.loads(publisher.messages[0][0])["properties"]).decode()
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("create schema ame")
    con.execute("create table ame.raw_events (customer_id varchar, event_type varchar, properties varchar)")
    con.execute("insert into ame.raw_events values ('c1', 'lead_created', ?), ('c2', 'lead_created', '{}')", [tokens])
    con.execute("create table ame.contacts (customer_id varchar, company varchar)")
    con.execute("insert into ame.contacts values ('c1', 'Brandtmoor Ltd'), ('c2', 'Other Ltd')")
    con.close()
    values = pii_in_copies("c1", codec, tmp_path / "missing-state.db", tmp_path / "wh.duckdb")
    assert values.distinctive == {EMAIL, EMAIL.lower(), PHONE}
    assert values.names == {FIRST, LAST, "Brandtmoor Ltd"}
