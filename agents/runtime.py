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

import hashlib
import logging
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from data.events import EventBase
from data.hotpath import cyclic_gc_paused
from data.log import EventLog, StoredEvent, open_log
from data.projections.store import SqliteStateStore
from data.sharding import BROADCAST_CUSTOMER, Shard, shard_of, stable_hash

log = logging.getLogger(__name__)

SYSTEM_CUSTOMER = BROADCAST_CUSTOMER
"""The customer id of broadcast events (the daily tick): every shard of an agent handles them."""

Record = dict[str, Any]
"""One key's state: a JSON-ready dict. Agents never mutate a record they read; they ``put`` a new one."""

_STATE_SCHEMA = """
create table if not exists agent_state (
    consumer  text not null,
    key       text not null,
    record    blob not null,
    primary key (consumer, key)
);
create table if not exists agent_restarts (
    consumer  text primary key,
    restarts  integer not null
)
"""


# ---- stable hashing -----------------------------------------------------------------------------------


def in_holdout(customer_id: str, share: float) -> bool:
    """Whether a customer is in the holdout group: a stable hash, independent of the shard hash."""
    return share > 0 and stable_hash(customer_id, "ame-holdout") % 1_000_000 < round(share * 1_000_000)


# ---- what a concrete agent fills in -------------------------------------------------------------------


class StateView:
    """The state an agent reads and writes while deciding one batch: committed records plus this batch's
    changes. Nothing reaches the store until the batch commits, so a failed batch leaves no trace."""

    def __init__(self, cache: dict[str, Record], load: Any, all_keys: Any) -> None:
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
    batch_size: int = Field(2_000, ge=1, le=100_000, description="Most events read per batch (bounds memory).")
    poll_interval_s: float = Field(0.01, gt=0, le=10, description="Wait when caught up.")
    snapshot_every: int = Field(0, ge=0, description="Snapshot the whole state every N positions (0: never).")
    max_rate: float | None = Field(None, gt=0, description="Most events per second this shard reads (None: no limit).")


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


def consumer_name(agent: str, shard: int, shards: int) -> str:
    return f"agent:{agent}:{shard}of{shards}"


def state_store_url(state_dir: Path, agent: str, shard: int, shards: int) -> str:
    return f"sqlite:///{(Path(state_dir) / f'{agent}-{shard}of{shards}.db').resolve()}"


def encode_records(records: Mapping[str, Record]) -> bytes:
    """Canonical bytes of a whole state (sorted keys), for snapshots and hashes."""
    return orjson.dumps(dict(sorted(records.items())), option=orjson.OPT_SORT_KEYS)


def state_hash(records: Mapping[str, Record]) -> str:
    return hashlib.sha256(encode_records(records)).hexdigest()


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
        self.log: EventLog = open_log(config.log_url)
        self.store = SqliteStateStore(state_store_url(config.state_dir, agent.name, config.shard, config.shards))
        with self.store.transaction() as conn:
            for statement in filter(str.strip, _STATE_SCHEMA.split(";")):
                conn.execute(statement)
            self._restarts = self._count_restart(conn)
        self._cache: dict[str, Record] = {}
        self._position = self.store.position(self.consumer)
        self._head = self._position
        self._events = self._appended = self._duplicates = self._errors = 0
        self._last_error: str | None = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._types = sorted(agent.event_types) if agent.event_types else None
        self._log_shard = (  # the log filters this shard's customers itself (they keep their hash in the log)
            Shard(config.shard, config.shards) if config.shards > 1 and agent.keyed_by_customer else None
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one batch at a time (the loop thread and direct step() calls)
        self._thread: threading.Thread | None = None
        if start or self._reconstructed:  # a restarted shard resumes on its own
            self.start()

    def _count_restart(self, conn: sqlite3.Connection) -> int:
        reconstructed = False
        ray = sys.modules.get("ray")  # only inside a Ray worker; never import Ray for a plain shard
        if ray is not None and ray.is_initialized():
            try:
                context = ray.get_runtime_context()
                reconstructed = context.get_actor_id() is not None and context.was_current_actor_reconstructed
            except Exception:  # not in an actor
                reconstructed = False
        row = conn.execute("select restarts from agent_restarts where consumer = ?", (self.consumer,)).fetchone()
        self._reconstructed = reconstructed
        restarts = (row[0] if row else 0) + (1 if reconstructed else 0)
        conn.execute("insert or replace into agent_restarts (consumer, restarts) values (?, ?)", (self.consumer, restarts))
        return restarts

    # -- state ------------------------------------------------------------------------------------------

    def _load(self, keys: Sequence[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        conn = self.store.read()
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            with self.store._lock:
                rows = conn.execute(
                    f"select key, record from agent_state where consumer = ? and key in ({marks})", (self.consumer, *chunk)
                ).fetchall()
            out.update((k, orjson.loads(r)) for k, r in rows)
        return out

    def _all_keys(self) -> list[str]:
        with self.store._lock:
            return [r[0] for r in self.store.read().execute("select key from agent_state where consumer = ?", (self.consumer,))]

    def records(self) -> dict[str, Record]:
        """The whole committed state of this shard."""
        with self.store._lock:
            rows = self.store.read().execute("select key, record from agent_state where consumer = ?", (self.consumer,)).fetchall()
        return {k: orjson.loads(r) for k, r in rows}

    def record(self, key: str) -> Record | None:
        """One committed record (what the bid endpoint reads from the bidding agent)."""
        got = self._load([key])
        return got.get(key)

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
        position = self.store.position(self.consumer)
        batch = self.log.read(position, self.config.batch_size, self._types, self._log_shard)
        self._head = max(self._head, batch.next_after)
        if batch.next_after == position:
            self._position = position
            return 0
        mine = self._mine(batch.events)
        view = StateView(self._cache, self._load, self._all_keys)
        outputs = self.agent.decide(mine, view) if mine else []
        if outputs:
            result = self.log.append(outputs)
            self._appended += result.appended
            self._duplicates += result.duplicates
        with self.store.transaction() as conn:
            if view.changes:
                conn.executemany(
                    "insert or replace into agent_state (consumer, key, record) values (?, ?, ?)",
                    [(self.consumer, k, orjson.dumps(r, option=orjson.OPT_SORT_KEYS)) for k, r in view.changes.items()],
                )
            self.store.commit_position(conn, self.consumer, batch.next_after)
        self._cache.update(view.changes)
        every = self.config.snapshot_every
        if every and batch.next_after // every > position // every:
            self.snapshot()
        self._position = batch.next_after
        self._events += len(mine)
        self._rate.append((time.monotonic(), self._events))
        return batch.next_after - position

    def catch_up(self, max_batches: int | None = None) -> int:
        """Process batches until caught up with the log's head (tests, serial replays). Returns positions."""
        done = batches = 0
        while max_batches is None or batches < max_batches:
            moved = self.step()
            if moved == 0:
                break
            done += moved
            batches += 1
        return done

    def _loop(self) -> None:
        backoff = self.config.poll_interval_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                moved = self.step()
                backoff = self.config.poll_interval_s
            except Exception as error:  # keep consuming; the batch is retried from the last commit
                self._errors += 1
                self._last_error = f"{type(error).__name__}: {error}"
                log.exception("%s: batch failed, retrying from position %d", self.consumer, self._position)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if moved == 0:
                self._stop.wait(self.config.poll_interval_s)
            elif self.config.max_rate:
                spare = moved / self.config.max_rate - (time.monotonic() - started)
                if spare > 0:
                    self._stop.wait(spare)

    def start(self) -> bool:
        """Start the background loop (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.consumer, daemon=True)
            self._thread.start()
        return True

    def stop(self) -> bool:
        """Stop the background loop after the current batch (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return True

    # -- snapshots and status ---------------------------------------------------------------------------

    def snapshot(self) -> str:
        """Write the whole state at the committed position as a snapshot; returns its hash."""
        with self.store.transaction() as conn:
            position = self.store.position(self.consumer)
            rows = conn.execute("select key, record from agent_state where consumer = ?", (self.consumer,)).fetchall()
            data = encode_records({k: orjson.loads(r) for k, r in rows})
            digest = hashlib.sha256(data).hexdigest()
            self.store.save_snapshot(conn, self.consumer, position, data, digest)
        return digest

    def status(self) -> dict[str, Any]:
        """Position, lag, events/s over the last seconds, restarts and errors (idempotent, cheap)."""
        rate = 0.0
        if len(self._rate) >= 2:
            (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
            if time.monotonic() - t1 < 5 and t1 > t0:
                rate = (n1 - n0) / (t1 - t0)
        try:
            head = self.log.head()
        except Exception:
            head = self._head
        return ShardStatus(
            agent=self.agent.name,
            shard=self.config.shard,
            shards=self.config.shards,
            position=self._position,
            head=head,
            lag=max(0, head - self._position),
            events=self._events,
            events_per_s=rate,
            appended=self._appended,
            duplicates=self._duplicates,
            restarts=self._restarts,
            errors=self._errors,
            running=self._thread is not None and self._thread.is_alive(),
            last_error=self._last_error,
        ).to_dict()

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.stop()
        self.store.close()
        self.log.close()


def iter_shard_configs(base: ShardConfig, shards: int) -> Iterator[ShardConfig]:
    for shard in range(shards):
        yield base.model_copy(update={"shard": shard, "shards": shards})


def shard_actor_class(max_restarts: int = -1) -> Any:
    """:class:`AgentShard` as a Ray actor class: restarted on failure, its calls retried (they are idempotent)."""
    import ray

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(AgentShard)


def read_records(state_dir: Path, agent: str, shards: int) -> dict[str, Record]:
    """The committed state of every shard of an agent, read from their stores (actors may be down)."""
    out: dict[str, Record] = {}
    for shard in range(shards):
        url = state_store_url(state_dir, agent, shard, shards)
        if not Path(url[len("sqlite:///") :]).exists():
            continue
        store = SqliteStateStore(url)
        try:
            rows = store.read().execute("select key, record from agent_state where consumer = ?", (consumer_name(agent, shard, shards),))
            out.update((k, orjson.loads(r)) for k, r in rows)
        finally:
            store.close()
    return out


def replay_serially(agent: Agent, log_url: str, state_dir: Path, batch_size: int = 5_000) -> tuple[dict[str, Record], int, int]:
    """Run ``agent`` as one shard over the whole log in this process (the reference run of the fault tests).

    Returns the final state, and how many of its outputs were new and already in the log.
    """
    shard = AgentShard(agent, ShardConfig(log_url=log_url, state_dir=state_dir, batch_size=batch_size), start=False)
    try:
        shard.catch_up()
        return shard.records(), shard._appended, shard._duplicates
    finally:
        shard.close()
