"""An agent shard on the production backend: it consumes a Pub/Sub subscription instead of reading the
embedded log by position.

Pub/Sub has no positions, so the exactly-once machinery moves into the subscriber
(:class:`data.log.pubsub_subscriber.PubSubSubscriber`): each batch is de-duplicated on ``event_id``, decided,
its outputs published (their ids are derived from the triggering event, so a redelivered batch publishes the
same ids and every consumer downstream drops the copies), and the agent's state, the processed ids and the
consumer's position commit in one transaction before the ack. :class:`PubSubAgentShard` is a plain class;
:func:`pubsub_shard_actor_class` wraps it for Ray like the embedded shards.

State: with ``AME_STATE_STORE=postgresql://…`` (or ``state_store`` given) every shard keeps its records, processed ids
and position in that one database, so a shard restarted on another node resumes where it committed; otherwise each
shard has its own SQLite file under ``state_dir`` (one machine).

Sharding: every shard has its own subscription (``<topic>-agent-<name>-<i>of<n>``) and keeps the customers
whose hash mod n is i (broadcast events go to all); it acks the others unprocessed.

The shard answers the supervisor as the embedded shard does (``ping``, ``status``, ``record``, ``start``, ``stop``),
so :class:`agents.supervisor.AgentSupervisor` runs either kind, chosen by the log URL. Its status has the embedded
shard's shape: ``position`` counts the events this shard applied, and ``lag`` the messages it received and holds
unprocessed; the subscription's server-side backlog is Cloud Monitoring's ``num_undelivered_messages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from agents.polling import RateMeter, was_reconstructed
from agents.runtime import Agent, Record, ShardStatus, StateView
from agents.state_repository import (
    AgentStateRepository,
    agent_consumer,
    consumer_name,
    shared_state_url,
    state_store_url,
)
from data.log import open_log
from data.log.base import StoredEvent
from data.log.pubsub_admin import ensure_consumer_resources
from data.log.pubsub_subscriber import PubSubSubscriber
from data.projections.store import open_state_store
from data.settings import get_settings
from data.sharding import Shard


class PubSubAgentShard:
    """One shard of one agent consuming a Pub/Sub topic, effectively once.

    :param agent: the concrete agent (the same class that runs on the embedded log).
    :param log_url: ``pubsub://project/topic``: where inputs come from and outputs are published.
    :param state_dir: folder of the shard's SQLite state store (unused when the state is on PostgreSQL).
    :param state_store: a ``postgresql://`` URL every shard shares; None: ``AME_STATE_STORE`` when it names
        PostgreSQL; empty (or a SQLite URL): a SQLite file per shard under ``state_dir``.
    """

    def __init__(self, agent: Agent, log_url: str, state_dir: Path, shard: int = 0, shards: int = 1,
                 start: bool = True, state_store: str | None = None) -> None:
        self.agent = agent
        self.shard = Shard(shard, shards)
        self.consumer = consumer_name(agent.name, shard, shards)
        self.log = open_log(log_url)
        shared = shared_state_url() if state_store is None else state_store
        self.store = open_state_store(state_store_url(state_dir, agent.name, shard, shards, shared))
        self.state = AgentStateRepository(self.store, self.consumer)
        reconstructed = was_reconstructed()
        self._restarts = self.state.count_restart(reconstructed)
        settings = get_settings()
        self._rate = RateMeter(settings.agent_rate_window, settings.agent_rate_idle_s)
        types = sorted(agent.event_types) if agent.event_types else None
        subscription = ensure_consumer_resources(log_url, agent_consumer(agent.name, shard, shards), types,
                                                 settings.pubsub_max_delivery_attempts, settings.pubsub_ack_deadline_s)
        self.subscriber = PubSubSubscriber(subscription, self.store, self.consumer, self._handle, types,
                                           full_events=True)
        self.appended = 0
        self._running = self._closed = False
        if start or reconstructed:  # a restarted actor resumes on its own; unacked messages come again
            self.start()

    def _handle(self, conn: Any, events: Sequence[StoredEvent]) -> None:
        """Inside the subscriber's transaction: decide, publish the outputs, write the changed records."""
        keyed = self.agent.keyed_by_customer
        mine = [e for e in events if self.agent.is_broadcast(e) or
                (self.shard.owns(e.customer_id) if keyed else self.shard.owns(self.agent.key_of(e)))]
        if not mine:
            return

        view = StateView({}, partial(self.state.load_in, conn), partial(self.state.keys_in, conn))  # no cache across
        # batches: the subscriber's transaction may still roll back
        outputs = self.agent.decide(mine, view)
        if outputs:
            self.appended += self.log.append(outputs).appended  # before the commit: a retry republishes the same ids
        self.state.put_in(conn, view.changes)
        self._rate.add(len(mine))

    def start(self) -> bool:
        """Start consuming (idempotent); True when this call started it."""
        if self._running:
            return False
        self.subscriber.start()
        self._running = True
        return True

    def status(self) -> dict[str, Any]:
        """The embedded shard's status fields (see the module docstring) and the subscriber's counters."""
        stats = self.subscriber.stats
        error = repr(self.subscriber.failure()) if self.subscriber.failure() else None
        held = self.subscriber.held()
        position = self.state.position()
        common = ShardStatus(
            agent=self.agent.name, shard=self.shard.index, shards=self.shard.count, position=position,
            head=position + held, lag=held, events=self._rate.total, events_per_s=self._rate.per_second(),
            appended=self.appended, duplicates=stats.duplicates, restarts=self._restarts,
            errors=stats.failed_nacked + stats.poison_nacked, running=self._running, last_error=error,
        ).to_dict()
        return {**common, "received": stats.received, "applied": stats.applied, "published": self.appended,
                "error": error}

    def ping(self) -> bool:
        return True

    def records(self) -> dict[str, Record]:
        return self.state.records()

    def record(self, key: str) -> Record | None:
        """One committed record (what the bid endpoint reads from the bidding agent)."""
        return self.state.load([key]).get(key)

    def stop(self) -> bool:
        """Stop consuming after the batch in hand and close (unacked messages are redelivered)."""
        if self._closed:
            return False
        was_running, self._running, self._closed = self._running, False, True
        self.subscriber.stop()
        self.log.close()
        self.store.close()
        return was_running


def pubsub_shard_actor_class(max_restarts: int = -1) -> Any:
    """:class:`PubSubAgentShard` as a Ray actor: restarted on failure; unacked messages are redelivered to it."""
    import ray  # lazy: Ray is heavy

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(PubSubAgentShard)
