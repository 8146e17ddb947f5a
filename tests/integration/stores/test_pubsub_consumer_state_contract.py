"""The Pub/Sub consumer's state, run over every state store backend (``sqlite`` and ``postgresql``): each event is
applied once whatever Pub/Sub redelivers, with the projection, the processed ids and the position in one
transaction. Messages are fed straight to the consumer (no emulator: the emulator tests are in
tests/integration/pubsub)."""

from __future__ import annotations

from data.log.pubsub import encode_event
from data.log.pubsub_subscriber import PubSubSubscriber, projection_handler
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.synthetic import synthetic_events
from tests.unit.privacy.test_privacy_pubsub import FakeMessage


def _messages(events: list) -> list[FakeMessage]:
    return [FakeMessage(encode_event(e, 1), {"event_type": e.event_type, "event_id": e.event_id}) for e in events]


def test_redeliveries_are_applied_once(store_url: str) -> None:
    events = synthetic_events(400, 40, seed=3)
    store = open_state_store(store_url)
    projection = ProfileProjection()
    with store.transaction() as conn:
        projection.create_tables(conn)
    consumer = PubSubSubscriber("projects/p/subscriptions/s", store, "profile", projection_handler(projection),
                                client=object())  # type: ignore[arg-type]
    first = _messages(events[:300])
    consumer._process(first)
    consumer._process(_messages(events[250:]))  # 50 redelivered, 100 new
    assert all(m.acked == [True] for m in first)
    assert (consumer.stats.applied, consumer.stats.duplicates) == (400, 50)
    assert store.position("profile") == 400 and consumer.processed(events[0].event_id)
    with store.reading() as conn:
        profiles = projection.load_all(conn)
    assert sum(p.to_dict()["events_total"] for p in profiles.values()) == 400
    assert consumer.prune_processed(older_than_s=0) == 400 and not consumer.processed(events[0].event_id)
    consumer.stop()
    store.close()
