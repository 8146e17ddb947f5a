"""Production ingestion without the loader: a Pub/Sub BigQuery subscription writes raw_events directly.

The engine's events topic gets a second subscription of the BigQuery kind. Pub/Sub writes each message's
JSON into ``raw_events`` through the Storage Write API, matching fields to the table's columns
(``use_table_schema``). Delivery is at least once, so ``staging_events_all`` deduplicates on ``event_id``.
Messages are shaped by :func:`raw_event_message`, the same row the loader writes, so both paths fill raw
alike; rows streamed this way have no ``log_position`` (Pub/Sub has no positions).

Create it once per environment::

    create_raw_events_subscription("my-project", "customer-events", "customer-events-to-bq", "marketing")

The subscription's service agent (``service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com``) needs
``roles/bigquery.dataEditor`` on the dataset; failed writes go to the dead-letter topic after 5 attempts.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from data.log.base import StoredEvent
from data.warehouse.bigquery_backend import bigquery_json_row
from data.warehouse.rows import raw_row


def raw_event_message(event: StoredEvent) -> bytes:
    """The Pub/Sub message body that the BigQuery subscription writes as one ``raw_events`` row."""
    row = raw_row(event, time.time_ns() // 1000)
    row["log_position"] = None
    return orjson.dumps(bigquery_json_row(row))


def raw_events_subscription_request(
    project: str, topic: str, subscription: str, dataset: str, dead_letter_topic: str | None = None
) -> dict[str, Any]:
    """The ``CreateSubscription`` request of the BigQuery subscription (a plain dict, easy to review and test)."""
    request: dict[str, Any] = {
        "name": f"projects/{project}/subscriptions/{subscription}",
        "topic": f"projects/{project}/topics/{topic}",
        "bigquery_config": {
            "table": f"{project}.{dataset}.raw_events",
            "use_table_schema": True,  # message fields → columns of the same name
            "drop_unknown_fields": True,  # extra fields never block the subscription
            "write_metadata": False,
        },
        "ack_deadline_seconds": 60,
        "filter": "",
    }
    if dead_letter_topic:
        request["dead_letter_policy"] = {
            "dead_letter_topic": f"projects/{project}/topics/{dead_letter_topic}",
            "max_delivery_attempts": 5,
        }
    return request


def create_raw_events_subscription(
    project: str, topic: str, subscription: str, dataset: str, dead_letter_topic: str | None = None,
    client: Any = None, timeout: float = 60.0,
) -> Any:
    """Create the BigQuery subscription that streams the events topic into ``raw_events``.

    :param project: the Google Cloud project of the topic and the dataset.
    :param topic: the events topic (the log's Pub/Sub backend).
    :param subscription: the name of the new subscription.
    :param dataset: the warehouse dataset holding ``raw_events`` (create it first: ``ame warehouse load``
        against ``bigquery://project/dataset`` creates the tables, or call ``BigQueryWarehouse.ensure_raw``).
    :param dead_letter_topic: where messages that cannot be written go after 5 attempts.
    :param client: a ``pubsub_v1.SubscriberClient`` (default: a new one).
    """
    from google.cloud import pubsub_v1  # lazy: a Google client is heavy

    client = client or pubsub_v1.SubscriberClient()
    return client.create_subscription(
        request=raw_events_subscription_request(project, topic, subscription, dataset, dead_letter_topic),
        timeout=timeout,
    )
