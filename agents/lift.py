"""Lift against the holdout, measured in production from the log.

A customer joins an arm at the journey agent's first decision about them (``holdout`` on that decision says
which arm). The outcome is what they did afterwards: whether they bought and how much. Lift is the treated
arm's conversion rate over the holdout's, minus one.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from data.log import EventLog


@dataclass(frozen=True, slots=True)
class LiftReport:
    agent: str
    treated: int
    holdout: int
    treated_conversion: float
    holdout_conversion: float
    treated_revenue: float
    holdout_revenue: float

    @property
    def lift(self) -> float | None:
        """Relative lift in conversion (None while the holdout has no conversions to compare with)."""
        return None if self.holdout_conversion == 0 else self.treated_conversion / self.holdout_conversion - 1

    @property
    def revenue_lift_per_customer(self) -> float:
        return self.treated_revenue - self.holdout_revenue

    def line(self) -> str:
        lift = "n/a (no holdout conversions yet)" if self.lift is None else f"{self.lift:+.1%}"
        return (
            f"{self.agent} lift vs holdout: conversion {self.treated_conversion:.2%} (n={self.treated:,}) vs "
            f"{self.holdout_conversion:.2%} (n={self.holdout:,}): {lift}; revenue/customer "
            f"{self.treated_revenue:.2f} vs {self.holdout_revenue:.2f}"
        )


def holdout_lift(log: EventLog, agent: str = "journey", batch_size: int = 100_000) -> LiftReport:
    """Conversion and revenue per customer after the first decision, treated vs holdout, from the log."""
    first: dict[str, tuple[int, bool]] = {}
    bought: dict[str, float] = {}
    converted: set[str] = set()
    position = 0
    types = ["decision_made", "purchase"]
    while True:
        batch = log.replay(position, batch_size, types, properties_of=types)
        if batch.next_after == position:
            break
        for e in batch.events:
            props = orjson.loads(e.properties_json or "{}")
            if e.event_type == "decision_made":
                if props.get("agent") == agent and e.customer_id not in first:
                    first[e.customer_id] = (e.position, bool(props.get("holdout")))
            elif e.customer_id in first and e.position > first[e.customer_id][0]:
                converted.add(e.customer_id)
                bought[e.customer_id] = bought.get(e.customer_id, 0.0) + float(props.get("amount") or 0.0)
        position = batch.next_after
    arms = {True: [c for c, (_, h) in first.items() if h], False: [c for c, (_, h) in first.items() if not h]}

    def rate(cs: list[str]) -> float:
        return sum(c in converted for c in cs) / len(cs) if cs else 0.0

    def revenue(cs: list[str]) -> float:
        return sum(bought.get(c, 0.0) for c in cs) / len(cs) if cs else 0.0

    treated, held = arms[False], arms[True]
    return LiftReport(agent, len(treated), len(held), rate(treated), rate(held), revenue(treated), revenue(held))
