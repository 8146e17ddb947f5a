"""A campaign's bidding facts: what its events carry, folded, for E campaigns at once.

The auction simulator folds each slot's auctions and conversions into :class:`CampaignFacts`; the bidding agent
folds ``auction_result`` and attributed ``purchase`` events into the same arrays (one campaign, one run of
events of a slot at a time, with the same functions) and keeps them in its record. The bid observation
(:mod:`environment.bid_observation`) and the pacing controller (:mod:`policies.bid_pacer`) read only these facts.

Time is cut into ``slots_per_day`` slots: the global slot of an event is ``day x slots + slot of day``, with the
slot of day = time of day / (24 h / slots). A fact belongs to the slot of its event time.

The **bid sketch** is the bounded summary of a day's auctions the controller plans from: per (slot, bin of
log(estimate / price to beat)), the sum of the prices to beat and the sum of the estimates. It has
``slots x bins x 2`` numbers whatever the number of auctions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY_US = 86_400_000_000
SLOT_STATS = ("spend", "wins", "opportunities", "estimate_sum", "conversion_value")
"""The per-slot counters (after the slot's global index) of ``CampaignFacts.cur`` and ``.prev``."""


@dataclass(frozen=True, slots=True, eq=False)
class BidSpec:
    """The fixed numbers the facts, the bid observation and the controller are read with (from the market's
    :class:`~environment.config.AuctionModel`; see :func:`environment.auction_market.bid_spec`)."""

    slots_per_day: int
    days: int
    opportunities_per_day: int
    value_scale: float  # the market's median value per impression ($)
    volume: np.ndarray  # (slots,) the hour-of-day share of the day's volume, sums to 1
    auction_type: str
    reserve_price: float
    max_multiplier: float
    max_bid: float
    sketch_low: float = -5.0  # log(estimate / price to beat) range of the sketch's bins (the end bins take the rest)
    sketch_high: float = 5.0
    sketch_bins: int = 80

    @property
    def bin_width(self) -> float:
        return (self.sketch_high - self.sketch_low) / self.sketch_bins

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["volume"] = [float(v) for v in self.volume]
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> BidSpec:
        return BidSpec(**{**data, "volume": np.asarray(data["volume"], dtype=np.float64)})


def global_slot(t_us: int, slots_per_day: int) -> int:
    """The global slot (day x slots + slot of day) of an event time in µs since the epoch."""
    day, in_day = divmod(int(t_us), DAY_US)
    return day * slots_per_day + in_day * slots_per_day // DAY_US


def slot_start_us(g: int, slots_per_day: int) -> int:
    """The first µs of global slot ``g``."""
    day, slot = divmod(int(g), slots_per_day)
    return day * DAY_US + -(-slot * DAY_US // slots_per_day)


def sketch_bins(estimate: np.ndarray, price_to_beat: np.ndarray, spec: BidSpec) -> np.ndarray:
    """The sketch bin of each auction: log(estimate / price to beat) in ``spec.sketch_bins`` equal bins."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.asarray(estimate, dtype=np.float64)) - np.log(np.asarray(price_to_beat, dtype=np.float64))
    b = np.floor((ratio - spec.sketch_low) / spec.bin_width)
    return np.clip(np.nan_to_num(b, nan=0.0, posinf=spec.sketch_bins - 1, neginf=0), 0, spec.sketch_bins - 1).astype(np.int64)


@dataclass(slots=True)
class CampaignFacts:
    """The folded facts of E campaigns (see the module docstring).

    ``cur`` is the latest slot with an event and ``prev`` the one before it: (6, E) rows of the global slot
    (-1: none) and :data:`SLOT_STATS`. ``today`` (spend, wins, opportunities) and ``sketch`` are of ``day``.
    """

    budget: np.ndarray  # (E,) daily budget
    first_day: np.ndarray  # (E,) day of the first event (-1: none yet)
    day: np.ndarray  # (E,) day of ``today`` and ``sketch`` (-1: none yet)
    today: np.ndarray  # (3, E)
    total: np.ndarray  # (3, E) spend, wins, opportunities since the first event
    cur: np.ndarray  # (6, E)
    prev: np.ndarray  # (6, E)
    sketch: np.ndarray = field(repr=False)  # (E, slots, bins, 2): price-to-beat sum, estimate sum

    @staticmethod
    def empty(n: int, budget: float | np.ndarray, spec: BidSpec) -> CampaignFacts:
        none = np.zeros((6, n))
        none[0] = -1
        return CampaignFacts(
            np.broadcast_to(np.asarray(budget, dtype=np.float64), (n,)).copy(), np.full(n, -1, np.int64),
            np.full(n, -1, np.int64), np.zeros((3, n)), np.zeros((3, n)), none, none.copy(),
            np.zeros((n, spec.slots_per_day, spec.sketch_bins, 2)),
        )

    @property
    def started(self) -> np.ndarray:
        """(E,) whether the campaign has any fact yet."""
        return self.cur[0] >= 0

    def today_at(self, day: int) -> np.ndarray:
        """(3, E) spend, wins, opportunities on ``day`` (zeros where the counters are of another day)."""
        return np.where(self.day == day, self.today, 0.0)

    def budget_left(self, day: int) -> np.ndarray:
        """(E,) the budget left on ``day``."""
        return np.maximum(self.budget - self.today_at(day)[0], 0.0)

    def slot_stats(self, g: int) -> np.ndarray:
        """(5, E) the :data:`SLOT_STATS` of global slot ``g`` (zeros where no event fell in it)."""
        return np.where(self.cur[0] == g, self.cur[1:], np.where(self.prev[0] == g, self.prev[1:], 0.0))

    def copy(self) -> CampaignFacts:
        return CampaignFacts(*(getattr(self, name).copy() for name in self.__dataclass_fields__))


def _open_slot(facts: CampaignFacts, g: int, mask: np.ndarray, spec: BidSpec) -> None:
    """Make ``g`` the current slot (and its day the current day) for the campaigns in ``mask`` that are behind."""
    day = g // spec.slots_per_day
    new_day = mask & (facts.day < day)
    facts.today[:, new_day] = 0.0
    facts.sketch[new_day] = 0.0
    facts.day[new_day] = day
    facts.first_day[mask & (facts.first_day < 0)] = day
    later = mask & (facts.cur[0] < g)
    facts.prev[:, later] = facts.cur[:, later]
    facts.cur[:, later] = 0.0
    facts.cur[0, later] = g


def _add_to_slot(facts: CampaignFacts, g: int, stats: np.ndarray, mask: np.ndarray) -> None:
    """Add (5, E) slot counters to slot ``g`` where it is the current or the previous slot (a later event keeps
    its day's counters but no slot counters once two newer slots exist)."""
    in_cur = mask & (facts.cur[0] == g)
    in_prev = mask & ~in_cur & (facts.prev[0] == g)
    facts.cur[1:, in_cur] += stats[:, in_cur]
    facts.prev[1:, in_prev] += stats[:, in_prev]


def fold_auctions(
    facts: CampaignFacts, spec: BidSpec, g: int, env: np.ndarray, estimate: np.ndarray, price_to_beat: np.ndarray,
    won: np.ndarray, cost: np.ndarray,
) -> None:
    """Fold auctions of global slot ``g`` (campaign index ``env`` each, in order) into ``facts``, in place.

    ``estimate`` and ``price_to_beat`` may be NaN where an event does not carry them: such an auction counts
    as an opportunity (and a win and its cost) but adds nothing to the estimate sum or the sketch.
    """
    n = len(facts.budget)
    env = np.asarray(env, dtype=np.int64)
    estimate = np.asarray(estimate, dtype=np.float64)
    price_to_beat = np.asarray(price_to_beat, dtype=np.float64)
    opportunities = np.bincount(env, minlength=n).astype(np.float64)
    present = opportunities > 0
    if not present.any():
        return
    _open_slot(facts, g, present, spec)
    known = np.isfinite(estimate)
    stats = np.stack([
        np.bincount(env, weights=cost, minlength=n), np.bincount(env, weights=won, minlength=n), opportunities,
        np.bincount(env, weights=np.where(known, estimate, 0.0), minlength=n), np.zeros(n),
    ])
    _add_to_slot(facts, g, stats, present)
    same_day = present & (facts.day == g // spec.slots_per_day)
    facts.today[:, same_day] += stats[:3, same_day]
    facts.total[:, present] += stats[:3, present]
    ok = known & np.isfinite(price_to_beat) & (price_to_beat > 0) & same_day[env]
    if ok.any():
        bins = spec.sketch_bins
        flat = env[ok] * bins + sketch_bins(estimate[ok], price_to_beat[ok], spec)
        slot = g % spec.slots_per_day
        facts.sketch[:, slot, :, 0] += np.bincount(flat, weights=price_to_beat[ok], minlength=n * bins).reshape(n, bins)
        facts.sketch[:, slot, :, 1] += np.bincount(flat, weights=estimate[ok], minlength=n * bins).reshape(n, bins)


def fold_conversions(facts: CampaignFacts, spec: BidSpec, g: int, value: np.ndarray) -> None:
    """Fold the (E,) conversion value attributed to each campaign in global slot ``g``, in place."""
    value = np.asarray(value, dtype=np.float64)
    present = value > 0
    if not present.any():
        return
    _open_slot(facts, g, present, spec)
    stats = np.zeros((5, len(value)))
    stats[4] = value
    _add_to_slot(facts, g, stats, present)


# ---- the agent's record (JSON) ------------------------------------------------------------------------

def facts_to_record(facts: CampaignFacts, e: int = 0) -> dict[str, Any]:
    """Campaign ``e``'s facts but the sketch, as JSON-ready fields of the bidding agent's record (floats
    round-trip exactly)."""
    today, total = facts.today[:, e], facts.total[:, e]
    return {
        "budget": float(facts.budget[e]), "first_day": int(facts.first_day[e]), "day": int(facts.day[e]),
        "spend_today": float(today[0]), "won_today": float(today[1]), "auctions_today": float(today[2]),
        "spend_total": float(total[0]), "won_total": float(total[1]), "auctions_total": float(total[2]),
        "slot": facts.cur[:, e].tolist(), "prev_slot": facts.prev[:, e].tolist(),
    }


def facts_from_record(record: Mapping[str, Any], spec: BidSpec, sketch: list[float] | None = None) -> CampaignFacts:
    """One campaign's facts (E = 1) from its record (the inverse of :func:`facts_to_record`) and, where given,
    its sketch (``facts.sketch[0].ravel().tolist()``, kept apart because only the agent needs it)."""
    facts = CampaignFacts.empty(1, float(record["budget"]), spec)
    facts.first_day[0], facts.day[0] = int(record["first_day"]), int(record["day"])
    facts.today[:, 0] = [record["spend_today"], record["won_today"], record["auctions_today"]]
    facts.total[:, 0] = [record["spend_total"], record["won_total"], record["auctions_total"]]
    facts.cur[:, 0], facts.prev[:, 0] = record["slot"], record["prev_slot"]
    if sketch is not None:
        facts.sketch[0] = np.asarray(sketch, dtype=np.float64).reshape(facts.sketch.shape[1:])
    return facts
