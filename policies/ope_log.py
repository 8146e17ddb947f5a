"""The engine's own decision log, as off-policy evaluation reads it: each journey decision with the reward that
followed it, grouped into one trajectory per customer and behaviour policy.

**The reward projection.** A decision's reward is what followed it within its attribution window - from the
decision until the customer's next decision by the same agent, at most ``window_days`` days: the margin on
purchases (``margin_rate x amount``) minus discounts, minus the channel cost of the action carried out, minus the
future value of a subscriber lost for every unsubscribe (``unsub_value`` of the channel). Margin, costs and
unsubscribe values are the market's (``environment/market.yaml``), so a decision's reward is the reward the
simulator's evaluation counts for that day.

**Behaviour policies** are told apart by (name, version); the holdout's decisions are a behaviour of their own.
Decisions without the logged observation (``context.obs``) are counted and left out.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from data.log.base import replay_all
from environment.belief_fold import decode_belief
from environment.config import JourneyModel
from environment.guardrails import mask_of_bits
from environment.observation import decode_observation
from environment.population import ACTIONS

DAY_US = 86_400_000_000
UNSUB_CHANNELS = ("email", "sms", "push")


class LogOPEError(ValueError):
    """The log holds no decisions that off-policy evaluation can use, as asked."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """A behaviour policy as the log names it."""

    name: str
    version: str
    holdout: bool = False

    def label(self) -> str:
        return f"{self.name}@{self.version}" + (" (holdout)" if self.holdout else "")


@dataclass(frozen=True, slots=True)
class LoggedDecisions:
    """One behaviour's decisions in trajectory order (customer, then time), with their rewards."""

    behaviour: Behaviour
    customer: np.ndarray  # (n,) int: trajectory index
    step: np.ndarray  # (n,) int: the decision's index within its trajectory
    obs: np.ndarray  # (n, 24) float32
    allowed: np.ndarray  # (n, 6) bool
    action: np.ndarray  # (n,) int: the action carried out
    propensity: np.ndarray  # (n,) its probability under the behaviour
    reward: np.ndarray  # (n,) the reward projection's value
    customers: tuple[str, ...]
    skipped: int = 0
    belief: np.ndarray | None = None  # (n, stage, intent, fatigue) where every decision logged its belief

    def subset(self, keep: np.ndarray, customer: np.ndarray, customers: tuple[str, ...]) -> LoggedDecisions:
        """The decisions where ``keep``, renumbered to the trajectories ``customer`` of ``customers``."""
        return LoggedDecisions(self.behaviour, customer, self.step[keep], self.obs[keep], self.allowed[keep],
                               self.action[keep], self.propensity[keep], self.reward[keep], customers, self.skipped,
                               None if self.belief is None else self.belief[keep])

    def __len__(self) -> int:
        return int(self.action.shape[0])


@dataclass(slots=True)
class _Decision:
    at_us: int
    behaviour: Behaviour
    obs: str | None
    allowed: int
    action: int
    propensity: float
    reward: float
    belief: str | None = None


def read_decisions(log: Any, journey: JourneyModel, agent: str = "journey", window_days: float = 1.0,
                   batch: int = 100_000) -> dict[Behaviour, LoggedDecisions]:
    """Every behaviour's decisions by ``agent`` in ``log``, each with its reward (see the module docstring)."""
    return _group(_attributed_log(log, journey, agent, window_days, batch).decisions)


@dataclass(frozen=True, slots=True)
class CustomerOutcome:
    """One customer's journey as the log shows it, from their first decision by the agent on."""

    customer_id: str
    behaviour: Behaviour
    decisions: int
    profit: float  # the sum of their decisions' rewards
    purchases: int
    unsubscribes: int


def customer_outcomes(log: Any, journey: JourneyModel, agent: str = "journey", window_days: float = 1.0,
                      batch: int = 100_000) -> list[CustomerOutcome]:
    """Per customer with a decision by ``agent``: their arm (the behaviour of their first decision), profit by the
    reward projection, and the purchases and unsubscribes that followed their first decision."""
    read = _attributed_log(log, journey, agent, window_days, batch)
    out = []
    for cid, mine in read.decisions.items():
        first = mine[0].at_us
        after = [(t, kind) for t, kind, _ in read.outcomes.get(cid, ()) if t >= first]
        out.append(CustomerOutcome(cid, mine[0].behaviour, len(mine), float(sum(d.reward for d in mine)),
                                   sum(kind == "purchase" for _, kind in after), sum(kind == "unsubscribe" for _, kind in after)))
    return out


@dataclass(frozen=True, slots=True)
class _AttributedLog:
    decisions: dict[str, list[_Decision]]  # per customer, in time order, rewards attributed
    outcomes: dict[str, list[tuple[int, str, float]]]  # per customer: (time, event type, value)


def _attributed_log(log: Any, journey: JourneyModel, agent: str, window_days: float, batch: int) -> _AttributedLog:
    decisions: dict[str, list[_Decision]] = {}
    outcomes: dict[str, list[tuple[int, str, float]]] = {}
    margin, cost, unsub_value = journey.margin_rate, np.asarray(journey.cost), dict(zip(UNSUB_CHANNELS, journey.unsub_value, strict=True))
    for e in replay_all(log, ["decision_made", "purchase", "unsubscribe"], batch=batch):
        props = orjson.loads(e.properties_json or "{}")
        if e.event_type == "decision_made":
            if props.get("agent") == agent and props.get("action") in ACTIONS:
                decisions.setdefault(e.customer_id, []).append(_decision(e.occurred_at_us, props, cost))
        elif e.event_type == "purchase":
            value = margin * float(props.get("amount") or 0.0) - float(props.get("discount") or 0.0)
            outcomes.setdefault(e.customer_id, []).append((e.occurred_at_us, e.event_type, value))
        else:
            value = -unsub_value.get(str(props.get("channel")), 0.0)
            outcomes.setdefault(e.customer_id, []).append((e.occurred_at_us, e.event_type, value))
    window = int(window_days * DAY_US)
    for cid, mine in decisions.items():
        mine.sort(key=lambda d: d.at_us)
        _attribute(mine, [(t, v) for t, _, v in outcomes.get(cid, ())], window)
    return _AttributedLog(decisions, outcomes)


def _decision(at_us: int, props: dict[str, Any], cost: np.ndarray) -> _Decision:
    context = props.get("context") or {}
    action = ACTIONS.index(props["action"])
    behaviour = Behaviour(str(props["policy_name"]), str(props["policy_version"]), bool(props.get("holdout")))
    return _Decision(at_us, behaviour, context.get("obs"), int(context.get("allowed") or 0), action,
                     float(props["propensity"]), -float(cost[action]), context.get("belief"))


def _attribute(decisions: list[_Decision], outcomes: Any, window_us: int) -> None:
    """Add each outcome to the customer's latest decision at or before it, if within that decision's window
    (``decisions`` in time order; outcomes arrive in any order)."""
    times = [d.at_us for d in decisions]
    for at_us, value in outcomes:
        k = bisect.bisect_right(times, at_us) - 1
        if k >= 0 and at_us - times[k] < window_us:
            decisions[k].reward += value


def _group(by_customer: dict[str, list[_Decision]]) -> dict[Behaviour, LoggedDecisions]:
    rows: dict[Behaviour, list[tuple[str, int, _Decision]]] = {}
    skipped: Counter[Behaviour] = Counter()
    for cid in sorted(by_customer):
        steps: Counter[Behaviour] = Counter()
        for d in by_customer[cid]:
            if d.obs is None:
                skipped[d.behaviour] += 1
                continue
            rows.setdefault(d.behaviour, []).append((cid, steps[d.behaviour], d))
            steps[d.behaviour] += 1
    return {b: _arrays(b, r, skipped[b]) for b, r in rows.items()}


def _arrays(behaviour: Behaviour, rows: list[tuple[str, int, _Decision]], skipped: int) -> LoggedDecisions:
    customers = tuple(dict.fromkeys(cid for cid, _, _ in rows))
    index = {cid: i for i, cid in enumerate(customers)}
    return LoggedDecisions(
        behaviour=behaviour,
        customer=np.fromiter((index[cid] for cid, _, _ in rows), dtype=np.int64, count=len(rows)),
        step=np.fromiter((s for _, s, _ in rows), dtype=np.int64, count=len(rows)),
        obs=np.stack([decode_observation(d.obs) for _, _, d in rows]),  # type: ignore[arg-type]
        allowed=mask_of_bits(np.fromiter((d.allowed for _, _, d in rows), dtype=np.int64, count=len(rows))),
        action=np.fromiter((d.action for _, _, d in rows), dtype=np.int64, count=len(rows)),
        propensity=np.fromiter((d.propensity for _, _, d in rows), dtype=np.float64, count=len(rows)),
        reward=np.fromiter((d.reward for _, _, d in rows), dtype=np.float64, count=len(rows)),
        customers=customers, skipped=skipped,
        belief=(np.stack([decode_belief(d.belief) for _, _, d in rows])  # type: ignore[arg-type]
                if all(d.belief is not None for _, _, d in rows) else None),
    )


def pick_behaviour(found: dict[Behaviour, LoggedDecisions], wanted: str | None = None) -> LoggedDecisions:
    """The behaviour named ``NAME@VERSION`` (default: the treated behaviour with the most decisions)."""
    if not found:
        raise LogOPEError("the log holds no journey decision with its observation (context.obs): run the journey agent "
                          "on it (`ame agents up`), or write one with `ame sim parity`")
    if wanted is None:
        treated = [d for b, d in found.items() if not b.holdout] or list(found.values())
        return max(treated, key=len)
    name, _, version = wanted.partition("@")
    matches = [d for b, d in found.items() if b.name == name and (not version or b.version == version) and not b.holdout]
    if len(matches) != 1:
        known = ", ".join(f"{b.label()} ({len(d):,})" for b, d in found.items())
        problem = "no" if not matches else "more than one"
        raise LogOPEError(f"{problem} behaviour policy in the log matches {wanted!r}; the log holds: {known}")
    return matches[0]
