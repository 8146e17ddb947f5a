"""The projector on the production backend: keeps the profile projection current from a Pub/Sub subscription.

Pub/Sub has no log positions, so the embedded :class:`agents.projector.ProjectionRunner` cannot read it. This
runner folds the same projection through a :class:`~data.log.pubsub_subscriber.PubSubSubscriber` (subscription
``<topic>-projector-<projection>``): each batch is de-duplicated on ``event_id`` and folded, and the profiles, the
processed ids and the consumer's position commit in one transaction of the state store before the ack. It
answers the supervisor as the embedded projector does (``ping``, ``status``, ``start``, ``stop``), with the same
status shape; ``position`` counts the events it applied and ``lag`` the messages it holds unprocessed.
"""

from __future__ import annotations

from typing import Any

from agents.polling import RateMeter, was_reconstructed
from agents.projector import PROJECTIONS, ProjectorConfig
from agents.runtime import ShardStatus
from agents.state_repository import bump_restarts, projector_consumer
from data.log.base import ReplayEvent
from data.log.pubsub_admin import ensure_consumer_resources
from data.log.pubsub_subscriber import PubSubSubscriber, projection_handler
from data.projections.store import open_state_store
from data.settings import get_settings


class PubSubProjectionRunner:
    """One projection kept current from a Pub/Sub subscription (see the module docstring).

    :param config: the projection, its ``pubsub://`` log and its state store.
    :param start: start consuming now (actors do; a restarted actor always does).
    """

    def __init__(self, config: ProjectorConfig, start: bool = True) -> None:
        self.config = config
        self.name = config.actor_name
        projection = PROJECTIONS[config.projection]()
        self.store = open_state_store(config.state_url)
        with self.store.transaction() as conn:
            projection.create_tables(conn)
        reconstructed = was_reconstructed()
        with self.store.transaction() as conn:  # counted as the agent shards count theirs
            self._restarts = bump_restarts(conn, self.name, reconstructed)
        self._rate = RateMeter(config.rate_window, config.rate_idle_s)
        fold = projection_handler(projection)

        def handle(conn: Any, events: list[ReplayEvent]) -> None:
            fold(conn, events)
            self._rate.add(len(events))

        settings = get_settings()
        subscription = ensure_consumer_resources(config.log_url, projector_consumer(config.projection), None,
                                                 settings.pubsub_max_delivery_attempts, settings.pubsub_ack_deadline_s)
        self.subscriber = PubSubSubscriber(subscription, self.store, projection.name, handle,
                                           max_batch=min(config.batch_size, 1_000))
        self._running = self._closed = False
        if start or reconstructed:
            self.start()

    def start(self) -> bool:
        """Start consuming (idempotent); True when this call started it."""
        if self._running or self._closed:
            return False
        self.subscriber.start()
        self._running = True
        return True

    def status(self) -> dict[str, Any]:
        """Position, lag, events/s, restarts and errors, as an agent shard reports them."""
        stats = self.subscriber.stats
        held = self.subscriber.held()
        position = self.store.position(self.subscriber.consumer)
        return ShardStatus(
            agent=self.name, shard=0, shards=1, position=position, head=position + held, lag=held,
            events=self._rate.total, events_per_s=self._rate.per_second(), appended=0, duplicates=stats.duplicates,
            restarts=self._restarts, errors=stats.failed_nacked + stats.poison_nacked, running=self._running,
            last_error=repr(self.subscriber.failure()) if self.subscriber.failure() else None,
        ).to_dict()

    def ping(self) -> bool:
        return True

    def stop(self) -> bool:
        """Stop after the batch in hand and close the store (unacked messages are redelivered)."""
        if self._closed:
            return False
        was_running, self._running, self._closed = self._running, False, True
        self.subscriber.stop(self.config.stop_timeout_s)
        self.store.close()
        return was_running

    def close(self) -> None:
        self.stop()


def pubsub_projector_actor_class(max_restarts: int = -1) -> Any:
    """:class:`PubSubProjectionRunner` as a Ray actor: restarted on failure; unacked messages come again."""
    import ray  # lazy: Ray is heavy

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(PubSubProjectionRunner)
