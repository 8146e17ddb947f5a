"""The Pub/Sub → BigQuery subscription: its request (the whole message into the raw table, with metadata), the
raw table's schema, and a message read back as the log would hold it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from data.events import EventError, validate_event
from data.log.pubsub import encode_event
from data.warehouse.pubsub_raw import raw_subscription_table_schema, stored_event
from data.warehouse.rows import raw_row
from data.warehouse.streaming import create_raw_events_subscription, raw_events_subscription_request


def test_the_subscription_writes_whole_messages_with_their_metadata_and_a_dead_letter_topic():
    request = raw_events_subscription_request("p", "customer-events", "to-bq", "marketing", "customer-events-dlq")
    config = request["bigquery_config"]
    assert config["table"] == "p.marketing.raw_pubsub_messages"
    assert config["write_metadata"] and not config["use_table_schema"] and not config["use_topic_schema"]
    assert request["dead_letter_policy"]["dead_letter_topic"] == "projects/p/topics/customer-events-dlq"

    class FakeClient:
        def create_subscription(self, request, timeout):
            self.request, self.timeout = request, timeout
            return "created"

    fake = FakeClient()
    assert create_raw_events_subscription("p", "t", "s", "d", client=fake, timeout=5) == "created"
    assert fake.request["topic"] == "projects/p/topics/t" and fake.timeout == 5


def test_the_raw_table_has_the_columns_a_subscription_with_write_metadata_writes():
    schema = {f.name: f.field_type for f in raw_subscription_table_schema()}
    assert schema == {"subscription_name": "STRING", "message_id": "STRING", "publish_time": "TIMESTAMP",
                      "data": "STRING", "attributes": "JSON"}


def test_a_message_reads_back_as_the_row_the_positional_loader_writes():
    event = validate_event({"event_id": "e-3", "event_type": "purchase", "customer_id": "c-1",
                            "occurred_at": "2026-03-01T00:00:00Z", "source": "web",
                            "properties": {"order_id": "o-1", "amount": 12.5}})
    recorded = 1_772_323_201_000_000
    back = stored_event(encode_event(event, recorded).decode(), codec=None)
    assert back.event_id == "e-3" and back.recorded_at_us == recorded
    assert back.occurred_at_us == int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1e6)
    row = raw_row(back, 0)
    assert row["amount"] == 12.5 and row["event_type"] == "purchase" and row["customer_id"] == "c-1"
    with pytest.raises(EventError, match="not valid JSON"):
        stored_event("{not json", codec=None)
