"""Promotion with a gate: a candidate goes into its serving slot only if it is not worse than the policy serving now.

Two checks, each a paired comparison of the candidate against the policy the slot serves now, on the same data:

- **the simulator**: both run on the same simulated customers (journey) or markets (bidding) over several seeds;
  the difference per seed gives a mean and a 95% t interval;
- **the engine's own log** (journey): off-policy estimates (SNIPS and DR, :mod:`policies.ope_trajectory`) of both
  on the most recent logged decisions, the difference's 95% interval from the same bootstrap resamples.

The candidate is refused when any interval lies wholly below zero (worse beyond its confidence interval), unless
forced. Either way the outcome is appended to the event log as a ``policy_promotion`` event with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from data.events import PolicyPromotion, derive_event_id
from data.log import PositionalReader
from data.sharding import BROADCAST_CUSTOMER
from environment.belief_planner import ActsOnBelief
from environment.config import load_market_config
from policies.evaluate import budget_config, mean_ci, run_bidding, run_journey, win_all_spend
from policies.ope_log import LoggedDecisions, LogOPEError, pick_behaviour, read_decisions
from policies.ope_trajectory import compare_trajectories
from policies.slots import LoadedPolicy, SlotTarget

Outcome = Literal["promoted", "refused", "forced"]


@dataclass(frozen=True, slots=True)
class Check:
    """One paired comparison: candidate minus current, with its 95% interval."""

    name: str
    candidate: float
    current: float
    low: float
    high: float
    note: str = ""

    @property
    def difference(self) -> float:
        return self.candidate - self.current

    @property
    def worse(self) -> bool:
        """Worse beyond the interval: the whole interval of the difference lies below zero."""
        return self.high < 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "candidate": self.candidate, "current": self.current, "difference": self.difference,
                "low": self.low, "high": self.high, "worse": self.worse, "note": self.note}


@dataclass(frozen=True, slots=True)
class GateReport:
    slot: str
    candidate: SlotTarget
    current: SlotTarget
    checks: list[Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(c.worse for c in self.checks)


@dataclass(frozen=True, slots=True)
class GateSettings:
    """How much evidence the gate gathers."""

    seeds: int = 5
    customers: int = 2_000
    first_seed: int = 20_000  # never a training or benchmark seed
    recent_decisions: int = 200_000
    n_boot: int = 500


def simulator_check(slot: str, candidate: Any, current: Any, settings: GateSettings) -> Check:
    """The candidate and the current policy on the same simulated customers (or markets) of several seeds."""
    seeds = range(settings.first_seed, settings.first_seed + settings.seeds)
    if slot == "journey":
        pairs = [(run_journey(candidate, None, settings.customers, s).profit, run_journey(current, None, settings.customers, s).profit)
                 for s in seeds]
        unit = "profit per customer (simulator)"
    else:
        base = load_market_config()
        pairs = []
        for s in seeds:
            config = budget_config(base, win_all_spend(base, 4, s) / 8)
            pairs.append((run_bidding(candidate, config, 4, s, 1 / 8).value, run_bidding(current, config, 4, s, 1 / 8).value))
        unit = "value won at budget 1/8 (simulator)"
    a, b = np.array(pairs).T
    diff, half = mean_ci(a - b)
    return Check(unit, float(a.mean()), float(b.mean()), diff - half, diff + half, f"{settings.seeds} seeds, paired")


def recent(logged: LoggedDecisions, customers: int) -> LoggedDecisions:
    """The trajectories of the last ``customers`` customers in the log (by their first decision)."""
    if len(logged.customers) <= customers:
        return logged
    keep = np.isin(logged.customer, np.arange(len(logged.customers) - customers, len(logged.customers)))
    index = {old: new for new, old in enumerate(np.unique(logged.customer[keep]))}
    return logged.subset(keep, np.array([index[c] for c in logged.customer[keep]]),
                         tuple(logged.customers[i] for i in sorted(index)))


def log_checks(log: Any, candidate: Any, current: Any, settings: GateSettings) -> tuple[list[Check], str | None]:
    """SNIPS and DR of both policies on the engine's recent journey decisions (none when the log holds none)."""
    if not isinstance(log, PositionalReader):
        return [], ("off-policy evaluation skipped: the log keeps no history to read back (a Pub/Sub log); "
                    "pass --log with a positional copy of it (the embedded or PostgreSQL log) to judge on it")
    try:
        logged = pick_behaviour(read_decisions(log, load_market_config().journey))
    except LogOPEError as error:
        return [], f"off-policy evaluation skipped: {error}"
    on_belief = [p for p in (candidate, current) if isinstance(p, ActsOnBelief)]
    if on_belief and logged.belief is None:
        name = getattr(on_belief[0], "name", type(on_belief[0]).__name__)
        return [], (f"off-policy evaluation skipped: {name} decides on the belief over hidden journey states, and "
                    "the logged decisions do not carry it (the journey agent logs it unless log_belief is off)")
    customers = max(1, settings.recent_decisions // max(1, int(logged.step.max()) + 1))
    logged = recent(logged, customers)
    compared = compare_trajectories(candidate, current, logged, n_boot=settings.n_boot)
    note = f"{len(logged):,} decisions of {logged.behaviour.label()}"
    return [Check(f"{name} per customer (engine's log)", c.value, k.value, lo, hi, note)
            for name, (c, k, lo, hi) in compared.items() if name in ("snips", "dr")], None


def run_gate(slot: str, candidate: LoadedPolicy, current: LoadedPolicy, log: Any | None,
             settings: GateSettings = GateSettings()) -> GateReport:
    """Every check of the candidate against the current policy (see the module docstring)."""
    checks = [simulator_check(slot, candidate.policy, current.policy, settings)]
    skipped = []
    if slot == "journey" and log is not None:
        more, why = log_checks(log, candidate.policy, current.policy, settings)
        checks += more
        if why:
            skipped.append(why)
    elif slot != "journey":
        skipped.append("off-policy evaluation skipped: bids are deterministic, the log holds no propensities to weigh")
    return GateReport(slot, SlotTarget(candidate.name, candidate.version), SlotTarget(current.name, current.version), checks, skipped)


def promotion_event(report: GateReport, outcome: Outcome, by: str) -> PolicyPromotion:
    """The log's record of a promotion or a refusal, with the gate's figures."""
    at = datetime.now(UTC)
    context: dict[str, Any] = {"by": by[:128]}
    for i, c in enumerate(report.checks):
        context |= {f"check{i}": c.name, f"check{i}_candidate": round(c.candidate, 6), f"check{i}_current": round(c.current, 6),
                    f"check{i}_low": round(c.low, 6), f"check{i}_high": round(c.high, 6)}
    return PolicyPromotion(
        event_id=derive_event_id("promotion", report.slot, report.candidate.label(), at.isoformat(), at=at),
        customer_id=BROADCAST_CUSTOMER, occurred_at=at, source="cli:policies",
        properties={"slot": report.slot, "policy_name": report.candidate.name, "policy_version": report.candidate.version,
                    "previous_name": report.current.name, "previous_version": report.current.version,
                    "outcome": outcome, "context": context},
    )
