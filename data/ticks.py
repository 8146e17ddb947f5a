"""The daily tick and the ids of the decisions it triggers.

The tick is one broadcast ``decision_made`` event per day (agent ``scheduler``, action ``daily_tick``) at
:data:`TICK_TIME` UTC: the journey agent asks its policy again for every customer it holds. A decision's id is
derived from the event that triggered it, the agent and the customer, so a replay re-derives the same id, and
the simulator can name the decision the engine takes for a customer on a day (its random draw derives from it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from data.events import DecisionMade, DecisionMadeProperties, derive_event_id
from data.sharding import BROADCAST_CUSTOMER

TICK_ACTION = "daily_tick"
TICK_TIME = time(9, 0)
"""When the daily tick happens (UTC): the moment of the day a journey decision is taken."""


def tick_time(day: date) -> datetime:
    """The moment of ``day``'s tick."""
    return datetime.combine(day, TICK_TIME, tzinfo=UTC)


def tick_event(day: date) -> DecisionMade:
    """The daily tick: one broadcast event per day (same id for the same day, so ticking twice is harmless)."""
    at = tick_time(day)
    return DecisionMade(
        event_id=derive_event_id("tick", day.isoformat(), at=at),
        customer_id=BROADCAST_CUSTOMER,
        occurred_at=at,
        source="agent:scheduler",
        properties=DecisionMadeProperties(agent="scheduler", action=TICK_ACTION, propensity=1.0, policy_name="calendar",
                                          policy_version="1"),
    )


def decision_event_id(trigger_event_id: str, agent: str, customer_id: str, at: datetime) -> str:
    """The id of the decision ``agent`` takes for ``customer_id`` on the event ``trigger_event_id`` (at ``at``)."""
    return derive_event_id(trigger_event_id, agent, customer_id, at=at)


def tick_decision_id(day: date, agent: str, customer_id: str) -> str:
    """The id of the decision ``agent`` takes for ``customer_id`` on ``day``'s tick."""
    return decision_event_id(tick_event(day).event_id, agent, customer_id, tick_time(day))
