"""The next best action of ``/v1/next-best-action``: the journey decision on the journey agent's folded state.

The API does not rebuild a customer's journey: it reads the record the journey agent committed
(:class:`~agents.state_reader.AgentStateReader`) and takes the decision the agent would take at this moment
(:func:`agents.journey_decision.decide_journeys`): the same observation, guardrails, choice and logged fields. A
customer the agents have not seen yet is decided on as the simulator's fresh customer (the documented defaults).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.journey import JourneyAgent
from agents.journey_decision import JourneyDecision, JourneyRules, decide_journeys
from environment.guardrails import ACTION_CHANNEL
from environment.observation import day_of
from environment.population import ACTIONS

Record = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NextBestAction:
    """Decides for one customer at a time, from the record ``read_record`` returns (None: never seen)."""

    read_record: Callable[[str], Record | None]
    rules: JourneyRules

    def record(self, customer_id: str) -> Record:
        """The customer's journey facts as the agent committed them (a fresh record for a customer never seen)."""
        rec = self.read_record(customer_id)
        return JourneyAgent.new_record() if rec is None else rec

    def decide(self, policy: Any, record: Record, now_us: int, decision_id: str) -> JourneyDecision:
        fresh = record if record.get("first_day") is not None else {**record, "first_day": day_of(now_us)}
        return decide_journeys(policy, [fresh], [now_us], [decision_id], self.rules)[0]


def reason_of(decision: JourneyDecision) -> str | None:
    """The answer's ``reason``: why the proposal was not carried out (None when it was)."""
    if decision.suppressed is None:
        return None
    channel = ACTION_CHANNEL[ACTIONS.index(decision.proposed)]
    why = {"consent": f"no consent on {channel}", "frequency_cap": "frequency cap", "quiet_hours": "quiet hours"}
    return f"{decision.proposed} suppressed: {why.get(decision.suppressed, decision.suppressed)}"
