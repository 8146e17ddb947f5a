"""The Pub/Sub → BigQuery subscription: its request, and messages shaped like raw_events rows."""

from __future__ import annotations

import orjson

from data.log.base import StoredEvent
from data.warehouse.base import RAW_COLUMN_NAMES
from data.warehouse.streaming import (
    create_raw_events_subscription,
    raw_event_message,
    raw_events_subscription_request,
)


def test_the_subscription_writes_raw_events_with_the_table_schema_and_a_dead_letter_topic():
    request = raw_events_subscription_request("p", "customer-events", "to-bq", "marketing", "customer-events-dlq")
    assert request["bigquery_config"]["table"] == "p.marketing.raw_events"
    assert request["bigquery_config"]["use_table_schema"] and request["bigquery_config"]["drop_unknown_fields"]
    assert request["dead_letter_policy"]["dead_letter_topic"] == "projects/p/topics/customer-events-dlq"

    class FakeClient:
        def create_subscription(self, request, timeout):
            self.request, self.timeout = request, timeout
            return "created"

    fake = FakeClient()
    assert create_raw_events_subscription("p", "t", "s", "d", client=fake, timeout=5) == "created"
    assert fake.request["topic"] == "projects/p/topics/t" and fake.timeout == 5


def test_messages_are_raw_rows_in_bigquery_json():
    event = StoredEvent(3, "e-3", "page_view", "c-1", 1_772_323_200_000_000, 1_772_323_200_000_000, "web", 1, None,
                        '{"url": "/home", "anonymous_id": "a-1"}')
    message = orjson.loads(raw_event_message(event))
    assert tuple(message) == RAW_COLUMN_NAMES
    assert message["occurred_at"] == "2026-03-01 00:00:00.000000"
    assert message["properties"] == {"url": "/home", "anonymous_id": "a-1"}  # an object, not a string
    assert message["anonymous_id"] == "a-1" and message["log_position"] is None
