"""Three numbers side by side for the policy serving against the control (the holdout's policy), over the days the
log covers: what the simulator predicted (``ame evaluate`` of the same two policies on the same market), what
off-policy evaluation estimates from the engine's own log, and what the engine earned live."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from environment.config import load_market_config
from policies.evaluate import resolve_policy, run_journey
from policies.lift import Interval, LiveLift, mean_interval
from policies.ope_log import LoggedDecisions, read_decisions
from policies.ope_trajectory import evaluate_trajectories


@dataclass(frozen=True, slots=True)
class ThreeNumbers:
    served: str
    control: str
    days: int
    seeds: int
    customers: int
    predicted_served: Interval
    predicted_control: Interval
    predicted_lift: Interval
    ope: dict[str, Interval]
    live: LiveLift

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def prediction_agrees(self) -> bool:
        """The offline predicted lift lies within the live lift's 95% interval."""
        return self.live.lift.covers(self.predicted_lift.value)

    def ope_error(self, estimator: str) -> float:
        """The OPE estimate of the served policy relative to its live value per treated customer, minus 1."""
        return self.ope[estimator].value / self.live.treated.profit.value - 1


def _policy(label: str, registry: str | None) -> Any:
    name, _, version = label.partition("@")
    return resolve_policy(name if version in ("", "builtin") else f"{name}@{version}", registry)


def _logged(log: Any, lift: LiveLift) -> tuple[LoggedDecisions, LoggedDecisions]:
    found = read_decisions(log, load_market_config().journey)
    treated = [d for b, d in found.items() if not b.holdout]
    control = [d for b, d in found.items() if b.holdout]
    if len(treated) != 1 or len(control) != 1:
        labels = ", ".join(b.label() for b in found)
        raise ValueError(f"the three numbers compare one served policy with one control; the log holds: {labels}")
    return treated[0], control[0]


def three_numbers(log: Any, lift: LiveLift, seeds: int = 5, customers: int = 2_000, registry: str | None = None,
                  first_seed: int = 30_000) -> ThreeNumbers:
    """The prediction, the OPE estimate and the live figure (see the module docstring)."""
    treated, control = _logged(log, lift)
    days = int(treated.step.max()) + 1
    served_label, control_label = treated.behaviour.label(), control.behaviour.label().replace(" (holdout)", "")
    served, ctrl = _policy(served_label, registry), _policy(control_label, registry)
    runs = [(run_journey(served, None, customers, s, days=days).profit, run_journey(ctrl, None, customers, s, days=days).profit)
            for s in range(first_seed, first_seed + seeds)]
    a, b = np.array(runs).T
    estimates = evaluate_trajectories(served, treated, n_boot=500)
    ope = {k: Interval(e.value, e.ci_low, e.ci_high) for k, e in estimates.items() if k in ("snips", "dr")}
    return ThreeNumbers(served_label, control_label, days, seeds, customers, mean_interval(a), mean_interval(b),
                        mean_interval(a - b), ope, lift)
