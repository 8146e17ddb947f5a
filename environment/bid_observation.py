"""The bid observation: the one function that turns a campaign's facts into the 10 columns a bidder sees.

The auction simulator (``AuctionMarket.observe``, so ``AuctionEnv`` and ``AuctionVectorEnv``), the bidding agent
and ``/v1/bid`` all call :func:`bid_observation`, on facts folded by :mod:`environment.bid_facts` from the same
events. At the start of global slot ``g`` ("now"):

| col | name | value |
|---|---|---|
| 0 | slot | slot of day / slots per day |
| 1 | day | min(days since the campaign's first event, days - 1) / days |
| 2 | budget_left | budget left today / daily budget |
| 3 | last_spend | last slot's spend / (daily budget / slots) |
| 4 | last_win_rate | last slot's wins / max(its auctions, 1) |
| 5 | last_volume | last slot's auctions / (opportunities per day / slots) |
| 6 | last_estimate | last slot's mean estimate / the market's median value |
| 7 | last_price | last slot's mean price paid / the market's median value |
| 8 | last_conversion_value | conversion value attributed in the last slot / (daily budget / slots) |
| 9 | volume_to_come | share of the day's volume still to come (the hour-of-day profile) |

"Last slot" is global slot ``g - 1`` (the day's last slot at the start of a day); where nothing happened in
it, its columns are 0.
"""

from __future__ import annotations

import numpy as np

from environment.bid_facts import BidSpec, CampaignFacts

N_SLOT_OBS = 10
COLUMNS = ("slot", "day", "budget_left", "last_spend", "last_win_rate", "last_volume", "last_estimate", "last_price",
           "last_conversion_value", "volume_to_come")


def bid_observation(facts: CampaignFacts, g: int, spec: BidSpec) -> np.ndarray:
    """(E, 10) float32: the bid observation of every campaign in ``facts`` at the start of global slot ``g``."""
    slots = spec.slots_per_day
    day, slot = divmod(int(g), slots)
    spend, wins, opps, estimate, conversions = facts.slot_stats(g - 1)
    per_slot_budget = facts.budget / slots
    seen = np.maximum(opps, 1.0)
    first = np.where(facts.first_day >= 0, facts.first_day, day)
    obs = np.empty((len(facts.budget), N_SLOT_OBS), dtype=np.float32)
    obs[:, 0] = slot / slots
    obs[:, 1] = np.clip(day - first, 0, spec.days - 1) / spec.days
    obs[:, 2] = facts.budget_left(day) / facts.budget
    obs[:, 3] = spend / per_slot_budget
    obs[:, 4] = wins / seen
    obs[:, 5] = opps / (spec.opportunities_per_day / slots)
    obs[:, 6] = estimate / seen / spec.value_scale
    obs[:, 7] = spend / np.maximum(wins, 1.0) / spec.value_scale
    obs[:, 8] = conversions / per_slot_budget
    obs[:, 9] = float(spec.volume[slot:].sum())
    return obs
