"""The event log contract, for the parts that make sense on Pub/Sub (no positions: consumption is via
subscriptions, see test_pubsub_backend.py), with the real client against the emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from data.events import EventError, EventValidationError
from data.log import EventLog, PositionalReader, PositionsUnsupported, open_log, positional
from data.log.base import RejectedInput
from data.log.ingest import ingest_lines, redrive
from data.log.pubsub import (
    PubSubEventLog,
    decode_message,
    encode_event,
)
from data.log.pubsub_admin import (
    ensure_subscription,
    ensure_topic,
    event_type_filter,
    parse_pubsub_url,
)
from data.privacy.encrypting_log import EncryptingLog
from data.synthetic import synthetic_dicts, synthetic_events


@pytest.fixture
def topic(pubsub_url: str) -> Iterator[tuple[str, str]]:
    """The log's topic and a plain subscription on it, to see what was published."""
    ref = parse_pubsub_url(pubsub_url)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    ensure_topic(publisher, ref.path)
    sub = ref.subscription_path(f"{ref.topic}-contract")
    ensure_subscription(subscriber, sub, ref.path, retry_backoff_s=None)
    publisher.stop()
    subscriber.close()
    yield pubsub_url, sub


@pytest.fixture
def log(topic: tuple[str, str]) -> Iterator[EventLog]:
    opened = open_log(topic[0])  # the dead-letter store defaults to $AME_HOME/pubsub-dead-letters.db
    yield opened
    opened.close()


def _published(subscription: str, wait_s: float) -> list[pubsub_v1.types.PubsubMessage]:
    client = pubsub_v1.SubscriberClient()
    got: list[pubsub_v1.types.PubsubMessage] = []
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            try:
                response = client.pull(subscription=subscription, max_messages=1000, timeout=2)
            except gexc.DeadlineExceeded:
                continue
            if response.received_messages:
                got += [r.message for r in response.received_messages]
                client.acknowledge(subscription=subscription, ack_ids=[r.ack_id for r in response.received_messages])
    finally:
        client.close()
    return got


@pytest.mark.emulator
def test_open_log_dispatches_pubsub_urls(log: EventLog) -> None:
    assert isinstance(log, EncryptingLog) and isinstance(log.inner, PubSubEventLog) and isinstance(log, EventLog)


@pytest.mark.emulator
def test_append_of_an_invalid_dict_publishes_nothing(log: EventLog, topic: tuple[str, str]) -> None:
    good = list(synthetic_dicts(3, 5, seed=6))
    bad = dict(good[1], properties={"nope": 1})
    with pytest.raises(EventValidationError, match="properties"):
        log.append([good[0], bad, good[2]])
    assert _published(topic[1], wait_s=3) == []


@pytest.mark.emulator
def test_append_publishes_every_event_once_per_call(log: EventLog, topic: tuple[str, str]) -> None:
    events = synthetic_events(120, 10, seed=1)
    result = log.append(events)
    assert (result.appended, result.duplicates, result.last_position) == (120, 0, 0)
    messages = _published(topic[1], wait_s=4)
    assert sorted(m.attributes["event_id"] for m in messages) == sorted(e.event_id for e in events)
    assert [decode_message(m.data).event_id for m in messages] == [m.attributes["event_id"] for m in messages]


@pytest.mark.emulator
def test_positions_do_not_exist_and_the_error_says_where_to_read(log: EventLog) -> None:
    assert not isinstance(log, PositionalReader) and not isinstance(log.inner, PositionalReader)
    with pytest.raises(PositionsUnsupported, match=r"the warehouse loader.*pubsub.*subscription.*raw table"):
        positional(log, "the warehouse loader")


@pytest.mark.emulator
def test_dead_letters_are_kept_once_and_counted(log: EventLog) -> None:
    rejected = [RejectedInput(raw=b"{oops", reason="line 3: not valid JSON", source="f.jsonl", line=3)]
    assert log.dead_letter(rejected) == 1
    assert log.dead_letter(rejected) == 0
    [letter] = log.dead_letters()
    assert (letter.line, letter.raw, letter.times_seen, letter.status) == (3, b"{oops", 2, "pending")
    assert log.stats().dead_letters_pending == 1


@pytest.mark.emulator
def test_redrive_after_a_fix_publishes(log: EventLog, topic: tuple[str, str]) -> None:
    good = next(iter(synthetic_dicts(1, 1, seed=7)))
    bad = orjson.dumps(dict(good, properties={**good["properties"], "unexpected": True}))
    report = ingest_lines(log, [bad], source="upstream.jsonl")
    assert report.appended == 0 and len(report.rejected) == 1
    [letter] = log.dead_letters()
    [still_bad] = redrive(log)
    assert not still_bad.ok and log.dead_letters()[0].status == "pending"
    [fixed] = redrive(log, [letter.id], replacement=orjson.dumps(good))
    assert fixed.ok and log.dead_letters() == []
    [message] = _published(topic[1], wait_s=3)
    assert message.attributes["event_id"] == good["event_id"]


@pytest.mark.emulator
def test_stats_count_what_this_instance_published(log: EventLog) -> None:
    events = synthetic_events(200, 20, seed=8)
    log.append(events)
    stats = log.stats()
    assert stats.events == 200 and sum(stats.by_type.values()) == 200 and stats.last_position == 0


# -- no emulator needed ---------------------------------------------------------------------------------


def test_urls_and_filters() -> None:
    ref = parse_pubsub_url("pubsub://ame-prod/customer-events")
    assert ref.path == "projects/ame-prod/topics/customer-events"
    assert ref.dead_letter.path == "projects/ame-prod/topics/customer-events-dead-letter"
    for bad in ("pubsub://ame-prod", "pubsub:///topic", "pubsub://a/b/c", "sqlite:///x.db"):
        with pytest.raises(ValueError, match="expected pubsub://project/topic"):
            parse_pubsub_url(bad)
    assert event_type_filter(None) == ""
    assert event_type_filter(["purchase", "email_open", "purchase"]) == (
        'attributes.event_type = "email_open" OR attributes.event_type = "purchase"'
    )
    with pytest.raises(ValueError, match="not an event type"):
        event_type_filter(['x" OR 1=1'])


def test_message_body_round_trips_the_envelope() -> None:
    event = synthetic_events(1, 1, seed=9)[0]
    decoded = decode_message(encode_event(event, recorded_at_us=1_700_000_000_000_000))
    assert decoded.model_dump(exclude={"recorded_at"}) == event.model_dump(exclude={"recorded_at"})
    assert decoded.recorded_at is not None
    with pytest.raises(EventError):
        decode_message(b'{"event_type": "purchase", "broken": ')
