"""The market stream: simulated customers, written to the event log as the product's events.

:class:`SimulatedMarket` is the market stepped one day at a time: given the actions carried out for its customers
that day, they respond by the market model and their events follow (:mod:`environment.market_events`). Two things
drive it:

- :func:`stream_market`: the simulator's own policy decides, acting as the engine acts
  (:func:`environment.acting.choose`; a sampling policy draws from the id of the decision the engine's journey agent
  takes for that customer on that day's tick, :func:`data.ticks.tick_decision_id`, so agents running the same policy
  on this stream choose the same actions);
- the closed loop (``ame sim run --closed-loop``): the engine decides, and the market carries its decisions out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from data.events import EventBase
from data.ticks import tick_decision_id, tick_event
from environment.acting import Choice, Predictor, acting_mode, choose, draws_of
from environment.belief import parse_planner_name
from environment.belief_planner import ActsOnBelief, FollowedBelief, ServedPlanner
from environment.config import MarketConfig, load_market_config
from environment.dynamics import StepOutcome, Tables, legal_mask, observe, reset_batch, step_batch
from environment.heuristics import heuristic_policy
from environment.market_events import DayDecisions, arrival_events, day_events
from environment.population import AD, sample_profiles

logger = logging.getLogger(__name__)


DecisionHook = Callable[[int, np.ndarray, np.ndarray, Choice], None]
"""Called each day with (day, observation, allowed actions, the choice) before the day is simulated."""


def resolve_policy(name: str) -> Predictor:
    """A journey policy the stream can run, by name: a tuned heuristic, ``no_contact``, ``<name>-eps<e>``, or a
    servable belief planner (``belief_lookahead_u<price>_grid``)."""
    if name == "wait":
        name = "no_contact"
    planner = parse_planner_name(name)
    if planner is not None and planner.grid:
        return ServedPlanner(planner)
    return heuristic_policy(name)


@dataclass(frozen=True, slots=True)
class StreamReport:
    customers: int
    days: int
    events: int
    appended: int
    duplicates: int
    by_type: dict[str, int]
    total_reward: float
    policy: str = ""


class _Appender:
    """Appends events to a log in batches and counts them."""

    def __init__(self, log: Any, batch_size: int) -> None:
        self.log, self.batch_size = log, batch_size
        self.buffer: list[EventBase] = []
        self.appended = self.duplicates = self.events = 0
        self.by_type: dict[str, int] = {}

    def add(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.buffer.append(event)
            self.by_type[event.event_type] = self.by_type.get(event.event_type, 0) + 1
            self.events += 1
            if len(self.buffer) >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        if self.buffer:
            result = self.log.append(self.buffer)
            self.appended += result.appended
            self.duplicates += result.duplicates
            self.buffer.clear()


def _draws(policy: Predictor, market: SimulatedMarket, day: int) -> np.ndarray | None:
    """The draws of a sampling policy: those of the engine's decisions on this day's tick."""
    if acting_mode(policy) != "sample":
        return None
    when = market.date(day)
    return draws_of([tick_decision_id(when, "journey", cid) for cid in market.ids])


class SimulatedMarket:
    """``customers`` simulated customers of ``seed``, stepped one day at a time (the same seed, the same customers
    and responses). Day 0 starts at ``start``; the journey horizon is at least ``days``."""

    def __init__(self, customers: int, days: int, seed: int = 0, config: MarketConfig | None = None,
                 start: datetime | None = None) -> None:
        if customers < 1 or days < 1:
            raise ValueError("customers and days must be at least 1")
        config = config or load_market_config()
        journey = config.journey.model_copy(update={"horizon_days": max(days, config.journey.horizon_days)})
        self.config = config.model_copy(update={"journey": journey})
        self.tables = Tables.of(journey)
        self.rng = np.random.default_rng(seed)
        self.time_rng = np.random.default_rng([seed, 1])
        self.start = start or datetime(2024, 1, 1, tzinfo=UTC)
        self.run = f"sim-{seed}"
        self.ids = [f"sim{seed}-c{n:07d}" for n in range(customers)]
        self.profiles = sample_profiles(self.config.profile, customers, self.rng)
        self.state = reset_batch(self.config, customers, self.rng, profiles=self.profiles)

    def arrivals(self) -> Iterable[EventBase]:
        return arrival_events(self.run, self.start, self.ids, self.profiles, self.state.consent)

    def observation(self) -> tuple[np.ndarray, np.ndarray]:
        """(observation, allowed actions) of every customer at the start of the current day."""
        return observe(self.state, self.tables.spec), legal_mask(self.state)

    def date(self, day: int) -> Any:
        return (self.start + timedelta(days=day)).date()

    def step(self, day: int, executed: np.ndarray, decisions: DayDecisions) -> tuple[StepOutcome, Iterable[EventBase]]:
        """Day ``day`` with these actions carried out: what the customers did, and its events."""
        self.state, outcome = step_batch(self.state, executed, self.rng, self.tables)
        journey = self.config.journey
        events = day_events(self.run, day, self.start, self.ids, outcome, decisions, self.time_rng, journey.discount_pct,
                            journey.cost[AD])
        return outcome, events


def stream_market(
    log: Any, customers: int, days: int, policy: str | Predictor = "offer_every_k", seed: int = 0,
    config: MarketConfig | None = None, start: datetime | None = None, batch_size: int = 5_000,
    on_day: Callable[[int, int], None] | None = None, ticks: bool = False, on_decisions: DecisionHook | None = None,
    policy_version: str = "builtin", before_day: Callable[[int], None] | None = None,
    on_outcome: Callable[[int, StepOutcome], None] | None = None,
) -> StreamReport:
    """Simulate ``customers`` for ``days`` days under ``policy`` and append their events to ``log`` (an
    :class:`~data.log.base.EventLog`) in batches; ``on_day(day, events_so_far)`` reports progress.

    :param ticks: append the engine's daily tick before each day's events (for agents that run on this log).
    :param on_decisions: see :data:`DecisionHook` (the parity check reads the simulator's observations there).
    :param before_day: called with each day before its tick, everything before it appended (agents catch up there).
    :param on_outcome: called with each day's outcome (what every customer did, and the reward it paid).
    :param policy_version: the version logged with the simulator's decisions (a registry version, or builtin).
    """
    market = SimulatedMarket(customers, days, seed, config, start)
    predictor = resolve_policy(policy) if isinstance(policy, str) else policy
    label = (getattr(predictor, "name", type(predictor).__name__), policy_version)
    believer = FollowedBelief(market.config, market.tables) if isinstance(predictor, ActsOnBelief) else None
    out = _Appender(log, batch_size)
    out.add(market.arrivals())
    total_reward = 0.0
    for day in range(days):
        out.flush()
        if before_day is not None:
            before_day(day)
        if ticks:
            out.add([tick_event(market.date(day))])
        obs, allowed = market.observation()
        acting = believer.bound(predictor, obs, market.state) if believer is not None else predictor
        choice = choose(acting, obs, allowed, _draws(predictor, market, day))
        if on_decisions is not None:
            on_decisions(day, obs, allowed, choice)
        before = market.state
        outcome, events = market.step(day, choice.executed, DayDecisions(choice.propensity, label))
        if believer is not None:
            believer.saw(before, outcome)
        total_reward += float(outcome.reward.sum())
        if on_outcome is not None:
            on_outcome(day, outcome)
        out.add(events)
        out.flush()
        if on_day is not None:
            on_day(day, out.events)
    return StreamReport(customers, days, out.events, out.appended, out.duplicates, out.by_type, total_reward, label[0])
