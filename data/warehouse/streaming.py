"""Production ingestion of a Pub/Sub log: a BigQuery subscription copies every message into a raw table.

The engine's events topic gets a second subscription of the BigQuery kind. Pub/Sub writes each message, as
published (the envelope as JSON, PII encrypted), into ``raw_pubsub_messages`` through the Storage Write API, with
its metadata (``write_metadata``: ``subscription_name``, ``message_id``, ``publish_time``, ``attributes``). That
table is the log's durable copy; ``ame warehouse load`` builds ``raw_events`` from it
(:mod:`data.warehouse.pubsub_raw`), decrypting the PII and skipping duplicates (delivery is at least once).

Create it once per environment (``ame infra init`` does)::

    create_raw_events_subscription("my-project", "customer-events", "customer-events-to-bq", "marketing")

The subscription's service agent (``service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com``) needs
``roles/bigquery.dataEditor`` on the dataset; failed writes go to the dead-letter topic after 5 attempts.
"""

from __future__ import annotations

from typing import Any

from data.warehouse.pubsub_raw import RAW_SUBSCRIPTION_TABLE


def raw_events_subscription_request(
    project: str, topic: str, subscription: str, dataset: str, dead_letter_topic: str | None = None
) -> dict[str, Any]:
    """The ``CreateSubscription`` request of the BigQuery subscription (a plain dict, easy to review and test)."""
    request: dict[str, Any] = {
        "name": f"projects/{project}/subscriptions/{subscription}",
        "topic": f"projects/{project}/topics/{topic}",
        "bigquery_config": {
            "table": f"{project}.{dataset}.{RAW_SUBSCRIPTION_TABLE}",
            "use_table_schema": False,  # the message goes whole into `data`
            "use_topic_schema": False,
            "write_metadata": True,  # subscription_name, message_id, publish_time, attributes
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
    """Create the BigQuery subscription that copies the events topic into ``raw_pubsub_messages``.

    :param project: the Google Cloud project of the topic and the dataset.
    :param topic: the events topic (the log's Pub/Sub backend).
    :param subscription: the name of the new subscription.
    :param dataset: the warehouse dataset; create ``raw_pubsub_messages`` in it first
        (:func:`data.warehouse.pubsub_raw.ensure_subscription_table`, with
        :func:`~data.warehouse.pubsub_raw.raw_subscription_table_schema`).
    :param dead_letter_topic: where messages that cannot be written go after 5 attempts.
    :param client: a ``pubsub_v1.SubscriberClient`` (default: a new one).
    """
    from google.cloud import pubsub_v1  # lazy: a Google client is heavy

    client = client or pubsub_v1.SubscriberClient()
    return client.create_subscription(
        request=raw_events_subscription_request(project, topic, subscription, dataset, dead_letter_topic),
        timeout=timeout,
    )
