"""Live lift against the holdout, from the event log alone.

A customer's arm is the one of their first journey decision (``holdout`` on it). Per arm: profit per customer (the
reward projection of :mod:`policies.ope_log`: margin on purchases minus discounts, channel costs and lost subscribers),
conversion (share of customers who bought after their first decision) and unsubscribes (share who unsubscribed from
a channel), each with a 95% interval; the lift is the treated arm's profit per customer minus the holdout's, with
Welch's interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from environment.config import JourneyModel
from policies.ope_log import CustomerOutcome, customer_outcomes


class LiftError(ValueError):
    """The log holds no journey decisions to measure a lift on (or one arm is empty)."""


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high

    def text(self, digits: int = 3, percent: bool = False) -> str:
        scale, unit = (100.0, "%") if percent else (1.0, "")
        return f"{self.value * scale:.{digits}f}{unit} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm's customers and outcomes."""

    policy: str
    customers: int
    profit: Interval
    conversion: Interval
    unsubscribe: Interval


@dataclass(frozen=True, slots=True)
class LiveLift:
    treated: Arm
    holdout: Arm
    lift: Interval  # profit per customer, treated - holdout

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_interval(values: np.ndarray, level: float = 0.95) -> Interval:
    """The mean with its t interval (a point when there are fewer than two values)."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean()) if v.size else float("nan")
    if v.size < 2:
        return Interval(mean, mean, mean)
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return Interval(mean, mean - half, mean + half)


def share_interval(hits: int, n: int, level: float = 0.95) -> Interval:
    """A share with its Wilson score interval."""
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, float(centre - half), float(centre + half))


def difference_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Interval:
    """mean(a) - mean(b) with Welch's interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else 1.0
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return Interval(diff, diff - half, diff + half)


def arm_of(outcomes: list[CustomerOutcome]) -> Arm:
    policies = sorted({o.behaviour.label().replace(" (holdout)", "") for o in outcomes})
    n = len(outcomes)
    return Arm(", ".join(policies), n, mean_interval(np.array([o.profit for o in outcomes])),
               share_interval(sum(o.purchases > 0 for o in outcomes), n),
               share_interval(sum(o.unsubscribes > 0 for o in outcomes), n))


def live_lift(log: Any, journey: JourneyModel, agent: str = "journey") -> LiveLift:
    """The live lift of the treated arm over the holdout (see the module docstring)."""
    outcomes = customer_outcomes(log, journey, agent)
    treated = [o for o in outcomes if not o.behaviour.holdout]
    holdout = [o for o in outcomes if o.behaviour.holdout]
    if len(treated) < 2 or len(holdout) < 2:
        raise LiftError(f"a lift needs customers in both arms: the log holds {len(treated)} treated and {len(holdout)} "
                        f"held-out customers with {agent} decisions (AME_AGENT_HOLDOUT_SHARE sets the holdout's share)")
    lift = difference_interval(np.array([o.profit for o in treated]), np.array([o.profit for o in holdout]))
    return LiveLift(arm_of(treated), arm_of(holdout), lift)
