"""The engine-wide figures the alerting rules read, on the API's ``GET /metrics``: the agents' lag and liveness,
the dead-letter store, each campaign's spend against its daily budget and pacing plan, and the latest drift check.

They are read when Prometheus scrapes (a custom collector), from the code that knows them: the agents' own
status (the shard actors, over Ray), the log's dead-letter store, the bidding agent's campaign records (the ones
this replica bids from) and the drift checks ``ame models drift`` records. A source that cannot answer leaves its
metrics out of that scrape (and is logged), so one missing source never fails ``/metrics``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from agents.supervisor import AgentSupervisor
from environment.bid_facts import global_slot, slot_start_us
from policies.bid_serving import current_record
from policies.scoring.drift_record import DriftCheck

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    """A campaign's day at one moment: its daily budget, its spend today and what its plan spends by now."""

    budget: float
    spend_today: float
    planned_spend_today: float


def campaign_figures(record: Mapping[str, Any] | None, now_us: int) -> CampaignFigures | None:
    """The figures of a bidding-agent record at ``now_us`` (None for no record). Spend is the record's when its
    day is today's, else 0; the plan is the budget times the share of the controller's spend curve up to now
    (the slot under way in proportion)."""
    record = current_record(record)
    if record is None:
        return None
    slots = int(record["spec"]["slots_per_day"])
    g = global_slot(now_us, slots)
    day, slot = divmod(g, slots)
    start, end = slot_start_us(g, slots), slot_start_us(g + 1, slots)
    curve = np.asarray(record["pacer"]["curve"], dtype=np.float64)
    curve = curve / curve.sum() if curve.sum() > 0 else np.full(slots, 1.0 / slots)
    share = float(curve[:slot].sum() + curve[slot] * (now_us - start) / max(end - start, 1))
    budget = float(record["budget"])
    spend = float(record["spend_today"]) if int(record["day"]) == day else 0.0
    return CampaignFigures(budget, spend, budget * min(share, 1.0))


@dataclass(frozen=True, slots=True)
class OpsSources:
    """Where the collector reads each figure (each a callable, so a test can hand in its own).

    :param agent_statuses: every agent shard's status (:meth:`agents.runtime.AgentShard.status`).
    :param dead_letters: the dead-letter store's (pending, redriven) counts (:func:`dead_letter_counts`).
    :param campaign_records: campaign id -> the bidding agent's record.
    :param drift_checks: the latest drift check of each model kind.
    :param now_us: the clock the campaign figures are read at (µs since the epoch).
    """

    agent_statuses: Callable[[], Sequence[Mapping[str, Any]]] = list
    dead_letters: Callable[[], tuple[int, int] | None] = lambda: None
    campaign_records: Callable[[], Mapping[str, Any]] = dict
    drift_checks: Callable[[], Sequence[DriftCheck]] = list
    now_us: Callable[[], int] = lambda: time.time_ns() // 1_000


class OpsCollector:
    """A prometheus_client collector of the figures in :class:`OpsSources`, labelled with the API replica."""

    def __init__(self, sources: OpsSources, replica: str) -> None:
        self.sources = sources
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        for name, build in (("agents", self._agents), ("dead letters", self._dead_letters),
                            ("campaigns", self._campaigns), ("drift", self._drift)):
            try:
                families = list(build())
            except Exception:  # a source that cannot answer is left out of this scrape
                logger.warning("metrics: the %s figures are unavailable", name, exc_info=True)
                continue
            yield from families

    def describe(self) -> list[Metric]:
        return []  # the families depend on what the sources hold at scrape time

    def _agents(self) -> Iterator[Metric]:
        labels = ["agent", "shard", "replica"]
        lag = GaugeMetricFamily("ame_agent_lag_events", "Events in the log the agent shard has not read yet.", labels=labels)
        up = GaugeMetricFamily("ame_agent_up", "1 while the agent shard answers and its loop runs, else 0.", labels=labels)
        restarts = CounterMetricFamily("ame_agent_restarts", "Restarts of the agent shard's actor.", labels=labels)
        errors = CounterMetricFamily("ame_agent_errors", "Failed batches of the agent shard (each retried).", labels=labels)
        for s in self.sources.agent_statuses():
            key = [str(s["agent"]), str(s["shard"]), self.replica]
            up.add_metric(key, 1.0 if s.get("running") else 0.0)
            if "lag" in s:
                lag.add_metric(key, float(s["lag"]))
                restarts.add_metric(key, float(s["restarts"]))
                errors.add_metric(key, float(s["errors"]))
        yield from (lag, up, restarts, errors)

    def _dead_letters(self) -> Iterator[Metric]:
        counts = self.sources.dead_letters()
        if counts is None:
            return
        pending = GaugeMetricFamily("ame_dead_letters_pending", "Dead letters not yet redriven.", labels=["replica"])
        pending.add_metric([self.replica], float(counts[0]))
        total = CounterMetricFamily("ame_dead_letters", "Inputs the log refused, stored as dead letters (pending "
                                    "and redriven).", labels=["replica"])
        total.add_metric([self.replica], float(counts[0] + counts[1]))
        yield from (pending, total)

    def _campaigns(self) -> Iterator[Metric]:
        labels = ["campaign", "replica"]
        budget = GaugeMetricFamily("ame_campaign_budget_daily", "The campaign's daily budget.", labels=labels)
        spend = GaugeMetricFamily("ame_campaign_spend_today", "What the campaign has spent today.", labels=labels)
        planned = GaugeMetricFamily("ame_campaign_planned_spend_today",
                                    "What the campaign's pacing plan spends by now today.", labels=labels)
        now_us = self.sources.now_us()
        for campaign, record in sorted(self.sources.campaign_records().items()):
            figures = campaign_figures(record, now_us)
            if figures is None:
                continue
            key = [campaign, self.replica]
            budget.add_metric(key, figures.budget)
            spend.add_metric(key, figures.spend_today)
            planned.add_metric(key, figures.planned_spend_today)
        yield from (budget, spend, planned)

    def _drift(self) -> Iterator[Metric]:
        psi = GaugeMetricFamily("ame_model_psi", "Population stability index of the model's scores (input=score) "
                                "and top inputs at its latest drift check.", labels=["model", "version", "input", "replica"])
        for check in self.sources.drift_checks():
            for name, value in check.psi.items():
                psi.add_metric([check.model, check.version, name, self.replica], value)
        yield psi


def agent_statuses_over_ray(namespace: str = "ame", timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """Every agent shard's status from the actors running in ``namespace`` (none when this process is not in a
    Ray cluster); a shard that does not answer within ``timeout_s`` reads as not running."""
    import ray  # lazy: Ray is heavy

    if not ray.is_initialized():
        return []
    return with_missing_shards(AgentSupervisor.attach(namespace).status(timeout_s))


def with_missing_shards(statuses: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``statuses`` plus a not-running entry for each shard its agent's other shards count but nobody reported
    (an actor killed for good has no name left to be found by)."""
    seen = {(s["agent"], int(s["shard"])) for s in statuses}
    expected = {(s["agent"], i) for s in statuses for i in range(int(s.get("shards", 1)))}
    missing = [{"agent": agent, "shard": shard, "running": False, "last_error": "no actor"}
               for agent, shard in sorted(expected - seen)]
    return [*statuses, *missing]
