"""The engine in a closed-loop market: each simulated day the engine decides, the market's customers receive its
decisions and respond by the market model, and the engine sees only the events.

Each day: the daily tick goes into the log; the journey agent (its shards, in this process or as Ray actors) folds
everything before it and decides for every customer, treated customers by the policy the journey slot serves and
held-out ones by the holdout's policy; the market reads those decisions back from the log and carries them out
(the messages name the engine's decision), and the customers' responses go into the log. The market is seeded and the
agent's draws derive from the decisions' ids, so a rerun writes the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson

from agents.journey import JourneyAgent
from agents.runtime import AgentShard, ShardConfig
from data.log import EventLog
from data.ticks import tick_decision_id, tick_event
from environment.market_events import DayDecisions
from environment.population import ACTIONS, WAIT
from environment.stream import SimulatedMarket


class ClosedLoopError(RuntimeError):
    """The engine did not decide for the market's customers."""


class Engine(Protocol):
    """Agents running on the log: ``catch_up`` returns once they have read everything appended so far."""

    def catch_up(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ClosedLoopReport:
    customers: int
    days: int
    events: int
    decisions: int
    contacts: int
    reward: float  # what the market paid, per customer (the simulator's count, for reference only)


@contextmanager
def in_process_agents(agent: JourneyAgent, log_url: str, state_dir: Path, shards: int = 2,
                      batch_size: int = 5_000) -> Iterator[Engine]:
    """The journey agent's shards as plain classes in this process (no Ray)."""
    base = ShardConfig(log_url=log_url, state_dir=state_dir, batch_size=batch_size)
    running = [AgentShard(agent, base.model_copy(update={"shard": i, "shards": shards}), start=False) for i in range(shards)]

    class _Shards:
        def catch_up(self) -> None:
            for shard in running:
                shard.catch_up()

    try:
        yield _Shards()
    finally:
        for shard in running:
            shard.close()


def run_closed_loop(log: EventLog, market: SimulatedMarket, engine: Engine, days: int,
                    on_day: Callable[[int, int], None] | None = None) -> ClosedLoopReport:
    """Run ``days`` days of ``market`` with ``engine`` deciding (see the module docstring)."""
    events = log.append(list(market.arrivals())).appended
    position = log.head()
    decisions = contacts = 0
    reward = 0.0
    for day in range(days):
        tick = tick_event(market.date(day))
        events += log.append([tick]).appended
        engine.catch_up()
        executed, ids, position = engine_decisions(log, position, market, day)
        outcome, day_events = market.step(day, executed, DayDecisions(np.ones(len(executed)), None, ids))
        events += log.append(list(day_events)).appended
        decisions += len(ids)
        contacts += int((outcome.action != WAIT).sum())
        reward += float(outcome.reward.sum())
        if on_day is not None:
            on_day(day, events)
    engine.catch_up()
    return ClosedLoopReport(len(market.ids), days, events, decisions, contacts, reward / len(market.ids))


def engine_decisions(log: EventLog, after: int, market: SimulatedMarket, day: int) -> tuple[np.ndarray, list[str], int]:
    """The action the journey agent decided for every customer on ``day``'s tick, read from the log after ``after``:
    (actions, decision ids, the log position read to)."""
    wanted = {tick_decision_id(market.date(day), "journey", cid): i for i, cid in enumerate(market.ids)}
    actions = np.full(len(market.ids), -1, dtype=np.int64)
    position = after
    while True:
        page = log.read(position, 50_000, ["decision_made"])
        if page.next_after == position:
            break
        position = page.next_after
        for e in page.events:
            i = wanted.get(e.event_id)
            if i is not None:
                actions[i] = ACTIONS.index(orjson.loads(e.properties_json)["action"])
    missing = np.flatnonzero(actions < 0)
    if missing.size:
        raise ClosedLoopError(f"the journey agent decided for {len(market.ids) - missing.size:,} of {len(market.ids):,} "
                              f"customers on day {day} (first without a decision: {market.ids[missing[0]]}); are the "
                              "agents running on this log?")
    ids = [""] * len(market.ids)
    for decision_id, i in wanted.items():
        ids[i] = decision_id
    return actions, ids, position
