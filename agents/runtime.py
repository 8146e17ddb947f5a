"""The agents' runtime: sharding, the consume-decide-append-commit loop, snapshots and restarts.

One agent type runs as N shards; shard ``i`` owns the keys (customer ids, or campaign ids for bidding) whose
stable hash mod N is ``i``. A shard is a consumer of the log. For each batch it:

1. reads up to ``batch_size`` events after its committed position (only the types its agent cares about);
2. keeps its own keys (and broadcast events such as the daily tick, which every shard handles);
3. calls the concrete agent's :meth:`Agent.decide`, the only method an agent fills in;
4. appends the output events, whose ids are derived from the triggering event (append is idempotent on them);
5. commits the changed state records and the new position in one transaction of its state store.

A crash anywhere re-reads the batch from the last commit and re-derives the same outputs with the same ids:
they are skipped as duplicates, so no event is lost and no decision is duplicated. The plain class
:class:`AgentShard` is wrapped for Ray by :func:`shard_actor_class` (``max_restarts``, ``max_task_retries=-1``);
a restarted actor reopens its store and resumes from its last commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agents.polling import LoopTiming, PollingLoop, RateMeter, catch_up, was_reconstructed
from agents.state_repository import AgentStateRepository, Record, consumer_name, shared_state_url, state_store_url
from data.events import EventBase
from data.hotpath import cyclic_gc_paused
from data.log import PositionalLog, StoredEvent, open_log, positional
from data.settings import get_settings
from data.sharding import BROADCAST_CUSTOMER, Shard, shard_of, stable_hash

log = logging.getLogger(__name__)

SYSTEM_CUSTOMER = BROADCAST_CUSTOMER
"""The customer id of broadcast events (the daily tick): every shard of an agent handles them."""

__all__ = ["SYSTEM_CUSTOMER", "Agent", "AgentShard", "Record", "ShardConfig", "ShardStatus", "StateView",
           "in_holdout", "iter_shard_configs", "replay_serially", "shard_actor_class"]


# ---- stable hashing -----------------------------------------------------------------------------------


def in_holdout(customer_id: str, share: float) -> bool:
    """Whether a customer is in the holdout group: a stable hash, independent of the shard hash."""
    return share > 0 and stable_hash(customer_id, "ame-holdout") % 1_000_000 < round(share * 1_000_000)


# ---- what a concrete agent fills in -------------------------------------------------------------------


class StateView:
    """The state an agent reads and writes while deciding one batch: committed records plus this batch's
    changes. Nothing reaches the store until the batch commits, so a failed batch leaves no trace."""

    def __init__(self, cache: dict[str, Record], load: Callable[[Sequence[str]], dict[str, Record]],
                 all_keys: Callable[[], list[str]]) -> None:
        self._cache = cache
        self._load = load
        self._all_keys = all_keys
        self.changes: dict[str, Record] = {}

    def get(self, key: str) -> Record | None:
        if key in self.changes:
            return self.changes[key]
        if key not in self._cache:
            self.prefetch([key])
        return self._cache.get(key)

    def prefetch(self, keys: Iterable[str]) -> None:
        missing = [k for k in set(keys) if k not in self._cache and k not in self.changes]
        if missing:
            found = self._load(missing)
            self._cache.update(dict.fromkeys(missing))  # remember the keys that have no record yet (None)
            self._cache.update(found)

    def put(self, key: str, record: Record) -> None:
        self.changes[key] = record

    def keys(self) -> list[str]:
        """Every key this shard holds (for broadcast events such as the daily tick)."""
        return sorted(set(self._all_keys()) | set(self.changes))


class Agent:
    """Base of every agent: says which events it reads and how they map to keys, and fills in :meth:`decide`.

    :cvar name: the agent's name (``scoring``, ``journey``, ``bidding``); part of every derived event id.
    :cvar event_types: the event types it reads (the log filters on them).
    """

    name: ClassVar[str] = "agent"
    event_types: ClassVar[frozenset[str]] = frozenset()
    keyed_by_customer: ClassVar[bool] = True
    """True when :meth:`key_of` is the customer id, so the log itself can filter a shard's events."""

    def key_of(self, event: StoredEvent) -> str:
        """The key whose state this event changes (the shard key): the customer by default."""
        return event.customer_id

    def is_broadcast(self, event: StoredEvent) -> bool:
        """Whether every shard handles this event (the daily tick)."""
        return event.customer_id == SYSTEM_CUSTOMER

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        """Fold ``batch`` (this shard's events, in log order) into ``state`` and return the events to append.

        Must be deterministic given the state and the events (no wall clock, no randomness without a seed
        derived from the events), and derive output ids with :func:`data.events.derive_event_id`.
        """
        raise NotImplementedError


# ---- configuration and status -------------------------------------------------------------------------


class ShardConfig(BaseModel):
    """Where a shard reads and keeps its state, and how it paces itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    shard: int = Field(0, ge=0)
    shards: int = Field(1, ge=1)
    log_url: str
    state_dir: Path = Field(description="Folder of the shards' state stores (one SQLite file per shard).")
    state_store: str = Field(default_factory=shared_state_url,
                             description="A postgresql:// URL every shard shares instead (AME_STATE_STORE); empty: SQLite.")
    batch_size: int = Field(2_000, ge=1, le=100_000, description="Most events read per batch (bounds memory).")
    poll_interval_s: float = Field(0.01, gt=0, le=10, description="Wait when caught up.")
    snapshot_every: int = Field(0, ge=0, description="Snapshot the whole state every N positions (0: never).")
    max_rate: float | None = Field(None, gt=0, description="Most events per second this shard reads (None: no limit).")
    max_backoff_s: float = Field(default_factory=lambda: get_settings().agent_max_backoff_s, gt=0,
                                 description="Longest wait before retrying a failed batch (AME_AGENT_MAX_BACKOFF_S).")
    stop_timeout_s: float = Field(default_factory=lambda: get_settings().agent_stop_timeout_s, gt=0,
                                  description="How long stopping waits for the batch in hand (AME_AGENT_STOP_TIMEOUT_S).")
    rate_window: int = Field(default_factory=lambda: get_settings().agent_rate_window, ge=2,
                             description="Batches the reported events/s is measured over (AME_AGENT_RATE_WINDOW).")
    rate_idle_s: float = Field(default_factory=lambda: get_settings().agent_rate_idle_s, gt=0,
                               description="events/s reads 0 after this long without a batch (AME_AGENT_RATE_IDLE_S).")
    state_read_chunk: int = Field(default_factory=lambda: get_settings().agent_state_read_chunk, ge=1,
                                  description="Keys per state read (AME_AGENT_STATE_READ_CHUNK).")

    def timing(self) -> LoopTiming:
        return LoopTiming(self.poll_interval_s, self.max_backoff_s, self.stop_timeout_s, self.max_rate)


@dataclass(frozen=True, slots=True)
class ShardStatus:
    agent: str
    shard: int
    shards: int
    position: int
    head: int
    lag: int
    events: int
    events_per_s: float
    appended: int
    duplicates: int
    restarts: int
    errors: int
    running: bool
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the shard ----------------------------------------------------------------------------------------


class AgentShard:
    """One shard of one agent: a consumer of the log with its own state store (see the module docstring).

    :param agent: the concrete agent (pickled into the actor).
    :param config: where to read and keep state.
    :param start: start the background loop now (actors do; tests and serial replays call :meth:`step`).
    """

    def __init__(self, agent: Agent, config: ShardConfig, start: bool = True) -> None:
        self.agent = agent
        self.config = config
        self.consumer = consumer_name(agent.name, config.shard, config.shards)
        self.log: PositionalLog = positional(open_log(config.log_url), f"agent shard {agent.name}")
        url = state_store_url(config.state_dir, agent.name, config.shard, config.shards, config.state_store)
        self.state = AgentStateRepository.open(url, self.consumer, config.state_read_chunk)
        reconstructed = was_reconstructed()
        self._restarts = self.state.count_restart(reconstructed)
        self._cache: dict[str, Record] = {}
        self._position = self.state.position()
        self._head = self._position
        self._appended = self._duplicates = 0
        self._rate = RateMeter(config.rate_window, config.rate_idle_s)
        self._types = sorted(agent.event_types) if agent.event_types else None
        self._log_shard = (  # the log filters this shard's customers itself (they keep their hash in the log)
            Shard(config.shard, config.shards) if config.shards > 1 and agent.keyed_by_customer else None
        )
        self._lock = threading.Lock()  # one batch at a time (the loop thread and direct step() calls)
        self._loop = PollingLoop(self.consumer, self.step, config.timing())
        if start or reconstructed:  # a restarted shard resumes on its own
            self.start()

    @property
    def appended(self) -> int:
        """Output events this shard appended that were new to the log."""
        return self._appended

    @property
    def duplicates(self) -> int:
        """Output events this shard appended that the log already held (a replay re-deriving them)."""
        return self._duplicates

    # -- state ------------------------------------------------------------------------------------------

    def records(self) -> dict[str, Record]:
        """The whole committed state of this shard."""
        return self.state.records()

    def record(self, key: str) -> Record | None:
        """One committed record (what the bid endpoint reads from the bidding agent)."""
        return self.state.load([key]).get(key)

    # -- the loop ---------------------------------------------------------------------------------------

    def _mine(self, events: Iterable[StoredEvent]) -> list[StoredEvent]:
        agent, shard, shards = self.agent, self.config.shard, self.config.shards
        if shards == 1 or self._log_shard is not None:
            return list(events)
        return [e for e in events if agent.is_broadcast(e) or shard_of(agent.key_of(e), shards) == shard]

    def step(self) -> int:
        """Process one batch; returns the positions it moved past (0 when caught up). The cyclic garbage
        collector waits while a batch is decided (it allocates thousands of acyclic objects, and each
        generation-2 pass would walk every cached record); it runs between batches."""
        with self._lock, cyclic_gc_paused():
            return self._step()

    def _step(self) -> int:
        position = self.state.position()
        batch = self.log.read(position, self.config.batch_size, self._types, self._log_shard)
        self._head = max(self._head, batch.next_after)
        if batch.next_after == position:
            self._position = position
            return 0
        mine = self._mine(batch.events)
        view = StateView(self._cache, self.state.load, self.state.keys)
        outputs = self.agent.decide(mine, view) if mine else []
        if outputs:
            result = self.log.append(outputs)
            self._appended += result.appended
            self._duplicates += result.duplicates
        self.state.save(view.changes, batch.next_after)
        self._cache.update(view.changes)
        every = self.config.snapshot_every
        if every and batch.next_after // every > position // every:
            self.snapshot()
        self._position = batch.next_after
        self._rate.add(len(mine))
        return batch.next_after - position

    def catch_up(self, max_batches: int | None = None) -> int:
        """Process batches until caught up with the log's head (tests, serial replays). Returns positions."""
        return catch_up(self.step, max_batches)

    def start(self) -> bool:
        """Start the background loop (idempotent)."""
        return self._loop.start()

    def stop(self) -> bool:
        """Stop the background loop after the current batch (idempotent)."""
        return self._loop.stop()

    # -- snapshots and status ---------------------------------------------------------------------------

    def snapshot(self) -> str:
        """Write the whole state at the committed position as a snapshot; returns its hash."""
        return self.state.snapshot()

    def status(self) -> dict[str, Any]:
        """Position, lag, events/s over the last seconds, restarts and errors (idempotent, cheap)."""
        try:
            head = self.log.head()
        except Exception:  # noqa: BLE001 - a busy log must not fail the status
            head = self._head
        return ShardStatus(
            agent=self.agent.name,
            shard=self.config.shard,
            shards=self.config.shards,
            position=self._position,
            head=head,
            lag=max(0, head - self._position),
            events=self._rate.total,
            events_per_s=self._rate.per_second(),
            appended=self._appended,
            duplicates=self._duplicates,
            restarts=self._restarts,
            errors=self._loop.errors,
            running=self._loop.running,
            last_error=self._loop.last_error,
        ).to_dict()

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.stop()
        self.state.close()
        self.log.close()


def iter_shard_configs(base: ShardConfig, shards: int) -> Iterator[ShardConfig]:
    for shard in range(shards):
        yield base.model_copy(update={"shard": shard, "shards": shards})


def shard_actor_class(max_restarts: int = -1) -> Any:
    """:class:`AgentShard` as a Ray actor class: restarted on failure, its calls retried (they are idempotent)."""
    import ray  # lazy: Ray is heavy

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(AgentShard)


def replay_serially(agent: Agent, log_url: str, state_dir: Path, batch_size: int = 5_000) -> tuple[dict[str, Record], int, int]:
    """Run ``agent`` as one shard over the whole log in this process (the reference run of the fault tests).

    Returns the final state, and how many of its outputs were new and already in the log.
    """
    shard = AgentShard(agent, ShardConfig(log_url=log_url, state_dir=state_dir, batch_size=batch_size), start=False)
    try:
        shard.catch_up()
        return shard.records(), shard.appended, shard.duplicates
    finally:
        shard.close()
