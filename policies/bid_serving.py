"""The bidding agent's campaign record and ``/v1/bid``'s read path over it.

A record is JSON: the campaign's facts (:func:`environment.bid_facts.facts_to_record`), the pacing controller's
state (``pacer``), the plan the day so far gives the next one (``plan``, :func:`policies.bid_pacer.day_plan`), the
spec and controller settings it was folded with, and two derived fields for people and tools
(``remaining_today``, ``multiplier``): a few kB. The day's bid sketch (tens of thousands of numbers, bounded) is a
second record under :func:`sketch_key`, which only the agent reads. The agent writes both with
:func:`campaign_record` and reads them back with :func:`campaign_state`.

Serving never rebuilds what the agent folded: :func:`campaign_view` moves a copy of the record's controller from
its last slot to now (:func:`policies.bid_pacer.advance`, the code the simulator's controller runs, with the
stored plan where a new day has begun) and builds the bid observation
(:func:`environment.bid_observation.bid_observation`, the simulator's own); :func:`view_multiplier` asks the
served bidder for its multiplier on that view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.bid_facts import BidSpec, CampaignFacts, facts_from_record, facts_to_record, global_slot
from environment.bid_observation import bid_observation
from policies.bid_pacer import DayPlan, PacerState, PacingParams, advance, day_plan
from policies.bidder import PacedBidder


def current_record(record: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The record if it is in this format; None for none or one written before it (read as a fresh campaign)."""
    return record if record is not None and "pacer" in record else None


def sketch_key(campaign_id: str) -> str:
    """The state key of a campaign's bid sketch (beside its record, in the same shard)."""
    return f"{campaign_id}#sketch"


def campaign_record(
    campaign_id: str, facts: CampaignFacts, pacer: PacerState, spec: BidSpec, params: PacingParams, updated_us: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record and the sketch record of campaign 0 of ``facts`` / ``pacer`` (E = 1)."""
    record = {"campaign_id": campaign_id, **facts_to_record(facts), "pacer": pacer.to_record(),
              "plan": day_plan(facts, spec).to_record()}
    record["remaining_today"] = float(facts.budget_left(int(facts.day[0]))[0])
    record["multiplier"] = float(pacer.multiplier[0])
    record |= {"spec": spec.to_dict(), "pacing": params.to_dict(), "updated_us": int(updated_us)}
    return record, {"campaign_id": campaign_id, "day": int(facts.day[0]), "sketch": facts.sketch[0].ravel().tolist()}


def campaign_state(
    record: Mapping[str, Any], sketch: Mapping[str, Any] | None = None,
) -> tuple[CampaignFacts, PacerState, DayPlan, BidSpec, PacingParams]:
    """The facts (with the sketch where given), controller, stored plan, spec and settings of a record (E = 1
    arrays; the record is left untouched)."""
    spec = BidSpec.from_dict(record["spec"])
    facts = facts_from_record(record, spec, None if sketch is None else sketch["sketch"])
    return (facts, PacerState.from_record(record["pacer"]), DayPlan.from_record(record["plan"]), spec,
            PacingParams.from_dict(record["pacing"]))


@dataclass(frozen=True, slots=True)
class CampaignView:
    """What a bidder sees of one campaign at one moment: the (1, 10) bid observation and the controller there."""

    g: int  # the global slot of the moment
    observation: np.ndarray
    pacer: PacerState
    spec: BidSpec
    budget_left: float


def campaign_view(
    record: Mapping[str, Any] | None, now_us: int, spec: BidSpec, params: PacingParams | None = None,
) -> CampaignView:
    """The view of a campaign at ``now_us`` from the bidding agent's record. A campaign with no record yet (no
    auction folded) is a fresh one under ``spec`` and ``params``: its controller bids the initial multiplier."""
    plan, record = None, current_record(record)
    if record is None:
        facts, pacer, params = CampaignFacts.empty(1, 1.0, spec), PacerState.empty(1, spec), params or PacingParams()
    else:
        facts, pacer, plan, spec, params = campaign_state(record)
    g = global_slot(now_us, spec.slots_per_day)
    advance(pacer, facts, g, spec, params, plan)
    left = float(facts.budget_left(g // spec.slots_per_day)[0])
    return CampaignView(g, bid_observation(facts, g, spec), pacer, spec, left)


def view_multiplier(bidder: Any, view: CampaignView) -> float:
    """The bid multiplier of ``bidder`` on ``view``: a paced bidder's from its controller state (pacing applied
    once, inside it), any other policy's from the bid observation alone."""
    if isinstance(bidder, PacedBidder):
        return float(bidder.multipliers(view.pacer, view.observation, view.spec)[0])
    action, _ = bidder.predict(view.observation, deterministic=True)
    return float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, view.spec.max_multiplier))
