"""Pub/Sub resources of the event log, created idempotently: the topic, its dead-letter topic and the
consumers' subscriptions (message ordering, an event-type filter, a dead-letter policy).

Run once per environment (or from tests against the emulator). Every call here is safe to repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

from data.log.base import LogUnavailable

log = logging.getLogger(__name__)

_ADMIN_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A topic named by a ``pubsub://project/topic`` URL."""

    project: str
    topic: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/topics/{self.topic}"

    @property
    def dead_letter(self) -> TopicRef:
        """The topic's dead-letter topic: ``<topic>-dead-letter`` in the same project."""
        return TopicRef(self.project, f"{self.topic}-dead-letter")

    def subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"


def parse_pubsub_url(url: str) -> TopicRef:
    """``pubsub://project/topic`` to a :class:`TopicRef`; raises ValueError with the expected form."""
    prefix = "pubsub://"
    rest = url[len(prefix):] if url.startswith(prefix) else ""
    parts = rest.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"not a Pub/Sub log URL: {url!r} (expected pubsub://project/topic, e.g. pubsub://ame-prod/customer-events)")
    return TopicRef(parts[0], parts[1])


def event_type_filter(event_types: Sequence[str] | None) -> str:
    """The subscription filter that admits only these event types ('' admits all)."""
    if not event_types:
        return ""
    for t in event_types:
        if not t.replace("_", "").isalnum():
            raise ValueError(f"not an event type: {t!r}")
    return " OR ".join(f'attributes.event_type = "{t}"' for t in sorted(set(event_types)))


def ensure_topic(publisher: pubsub_v1.PublisherClient, topic_path: str) -> None:
    """Create the topic unless it exists."""
    try:
        publisher.create_topic(name=topic_path, timeout=_ADMIN_TIMEOUT_S)
        log.info("created topic %s", topic_path)
    except gexc.AlreadyExists:
        pass
    except gexc.GoogleAPICallError as error:
        raise LogUnavailable(f"cannot create Pub/Sub topic {topic_path}: {error}") from None


def ensure_subscription(
    subscriber: pubsub_v1.SubscriberClient,
    subscription_path: str,
    topic_path: str,
    event_types: Sequence[str] | None = None,
    dead_letter_topic_path: str | None = None,
    max_delivery_attempts: int = 5,
    ack_deadline_s: int = 60,
    retry_backoff_s: tuple[float, float] | None = (1.0, 60.0),
    ordered: bool = True,
) -> None:
    """Create the subscription unless it exists: ordered by key, filtered by event type, with a dead-letter
    policy. An existing subscription is left as it is (filter and ordering cannot change after creation).

    :param retry_backoff_s: (minimum, maximum) redelivery backoff after a nack; None redelivers at once.
    :param ordered: deliver each ordering key (customer) in publish order. Keep it on in production; the
        emulator drops dead-lettered messages of ordered subscriptions instead of forwarding them (README: The Pub/Sub backend)."""
    request: dict[str, object] = {
        "name": subscription_path,
        "topic": topic_path,
        "ack_deadline_seconds": ack_deadline_s,
        "enable_message_ordering": ordered,
        "filter": event_type_filter(event_types),
    }
    if retry_backoff_s is not None:
        low, high = retry_backoff_s
        request["retry_policy"] = {
            "minimum_backoff": duration_pb2.Duration(seconds=int(low), nanos=int(low % 1 * 1e9)),
            "maximum_backoff": duration_pb2.Duration(seconds=int(high), nanos=int(high % 1 * 1e9)),
        }
    if dead_letter_topic_path:
        request["dead_letter_policy"] = pubsub_v1.types.DeadLetterPolicy(
            dead_letter_topic=dead_letter_topic_path, max_delivery_attempts=max_delivery_attempts
        )
    try:
        subscriber.create_subscription(request=request, timeout=_ADMIN_TIMEOUT_S)
        log.info("created subscription %s on %s", subscription_path, topic_path)
    except gexc.AlreadyExists:
        pass
    except gexc.GoogleAPICallError as error:
        raise LogUnavailable(f"cannot create Pub/Sub subscription {subscription_path}: {error}") from None


def ensure_consumer_resources(
    url: str,
    consumer: str,
    event_types: Sequence[str] | None = None,
    max_delivery_attempts: int = 5,
    ack_deadline_s: int = 60,
    retry_backoff_s: tuple[float, float] | None = (1.0, 60.0),
    ordered: bool = True,
) -> str:
    """Create the log's topic, its dead-letter topic (with a subscription ``<topic>-dead-letter-audit`` so dead
    letters are kept, not dropped) and the consumer's subscription ``<topic>-<consumer>``. Returns the
    subscription's path.

    In production the dead-letter topic also needs the Pub/Sub service agent to hold
    ``roles/pubsub.publisher`` on it and ``roles/pubsub.subscriber`` on the source subscription (README: The Pub/Sub backend).
    """
    ref = parse_pubsub_url(url)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        ensure_topic(publisher, ref.path)
        ensure_topic(publisher, ref.dead_letter.path)
        ensure_subscription(subscriber, ref.subscription_path(f"{ref.dead_letter.topic}-audit"), ref.dead_letter.path)
        path = ref.subscription_path(f"{ref.topic}-{consumer}")
        ensure_subscription(
            subscriber, path, ref.path, event_types, ref.dead_letter.path, max_delivery_attempts, ack_deadline_s,
            retry_backoff_s, ordered,
        )
    finally:
        subscriber.close()
        publisher.stop()
    return path
