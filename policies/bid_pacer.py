"""The pacing controller's state and its moves, for E campaigns at once: the one implementation behind the
simulator's :class:`policies.bidder.ProfilePacing`, the bidding agent's record and ``/v1/bid``.

The controller bids ``m x estimate``. Each day it starts from the multiplier that was LP-optimal on yesterday's
auctions and paces spend to the *spend curve* that multiplier would have drawn yesterday (per slot, smoothed,
blended with the older curve), not to the traffic curve. After each slot the log multiplier moves by ``eta``
times the relative spend error against the re-planned target (the budget left spread over the curve left).

Both plans come from the day's **bid sketch** (:mod:`environment.bid_facts`), never from the raw auctions: the
LP threshold is read from the sketch's histogram of log(estimate / price to beat), assuming the auctions
spread evenly inside a bin, and so is the share of each slot's spend a multiplier would have bought.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.bid_facts import BidSpec, CampaignFacts

LOG_M_MIN, LOG_M_MAX = float(np.log(0.01)), float(np.log(10.0))
MIN_MULTIPLIER = 0.01


@dataclass(frozen=True, slots=True)
class PacingParams:
    """The controller's settings.

    :param eta: step of the log multiplier per unit of relative spend error.
    :param curve_memory: weight of the older spend curve when yesterday's is blended in.
    :param initial: the multiplier before any day has been planned.
    """

    eta: float = 0.08
    curve_memory: float = 0.5
    initial: float = 0.4

    def to_dict(self) -> dict[str, float]:
        return {"eta": self.eta, "curve_memory": self.curve_memory, "initial": self.initial}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> PacingParams:
        return PacingParams(float(data["eta"]), float(data["curve_memory"]), float(data["initial"]))


@dataclass(slots=True)
class PacerState:
    """The controller of E campaigns: ``g`` is the global slot its multiplier ``exp(log_m)`` is for (-1: not
    started), ``day`` the day of its plan (``curve``, ``log_m_start``); ``left_before`` is the budget share left
    at the start of slot ``g``, ``ratio`` the last slot's spend over its target, ``y_win`` yesterday's win rate."""

    g: np.ndarray
    day: np.ndarray
    log_m: np.ndarray
    log_m_start: np.ndarray
    left_before: np.ndarray
    ratio: np.ndarray
    y_win: np.ndarray
    curve: np.ndarray  # (E, slots) the planned share of the day's spend per slot

    @staticmethod
    def empty(n: int, spec: BidSpec) -> PacerState:
        return PacerState(np.full(n, -1, np.int64), np.full(n, -1, np.int64), *(np.zeros(n) for _ in range(5)),
                          np.tile(spec.volume, (n, 1)))

    @property
    def multiplier(self) -> np.ndarray:
        return np.exp(self.log_m)

    def copy(self) -> PacerState:
        return PacerState(*(getattr(self, name).copy() for name in self.__dataclass_fields__))

    def to_record(self, e: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name)[e].item() for name in self.__dataclass_fields__ if name != "curve"}
        out["curve"] = self.curve[e].tolist()
        return out

    @staticmethod
    def from_record(data: Mapping[str, Any]) -> PacerState:
        return PacerState(
            *(np.array([data[name]], dtype=np.int64) for name in ("g", "day")),
            *(np.array([float(data[name])]) for name in ("log_m", "log_m_start", "left_before", "ratio", "y_win")),
            np.asarray([data["curve"]], dtype=np.float64),
        )


# ---- planning from the sketch -------------------------------------------------------------------------


def lp_multiplier(sketch: np.ndarray, budget: np.ndarray, spec: BidSpec) -> np.ndarray:
    """(n,) the multiplier 1 / threshold of the hindsight LP on a day's (n, slots, bins, 2) sketch: take bins from
    the highest estimate/price ratio down until the prices to beat fill the budget (the last bin in part)."""
    width, bins = spec.bin_width, spec.sketch_bins
    upper = spec.sketch_low + width * np.arange(1, bins + 1)
    price = sketch[..., 0].sum(axis=1)[:, ::-1]  # (n, bins), highest ratio first
    cum = np.cumsum(price, axis=1)
    crossing = (cum >= budget[:, None]).argmax(axis=1)
    fills = cum[:, -1] >= budget
    before = np.where(crossing > 0, np.take_along_axis(cum, np.maximum(crossing - 1, 0)[:, None], 1)[:, 0], 0.0)
    in_bin = np.take_along_axis(price, crossing[:, None], 1)[:, 0]
    share = np.where(in_bin > 0, (budget - before) / np.where(in_bin > 0, in_bin, 1.0), 1.0)
    log_threshold = upper[bins - 1 - crossing] - share * width
    lowest = bins - 1 - np.where(price > 0, np.arange(bins), -1).max(axis=1)  # the lowest bin with an auction
    log_threshold = np.where(fills, log_threshold, upper[np.clip(lowest, 0, bins - 1)] - width)
    return np.clip(np.exp(-log_threshold), MIN_MULTIPLIER, spec.max_multiplier)


def spend_curve(sketch: np.ndarray, multiplier: np.ndarray, spec: BidSpec) -> np.ndarray:
    """(n, slots) the share of the day's spend each slot would have taken at ``multiplier`` (sums to 1; the
    traffic curve where it would have bought nothing): the part of each bin above 1/multiplier, at the price to
    beat (second price) or at the bid (first price)."""
    width = spec.bin_width
    lower = spec.sketch_low + width * np.arange(spec.sketch_bins)
    won = np.clip((lower[None, :] + width + np.log(multiplier)[:, None]) / width, 0.0, 1.0)
    if spec.auction_type == "first_price":
        cost = multiplier[:, None] * np.einsum("nsb,nb->ns", sketch[..., 1], won)
    else:
        cost = np.einsum("nsb,nb->ns", sketch[..., 0], won)
    total = cost.sum(axis=1, keepdims=True)
    return np.where(total > 0, cost / np.where(total > 0, total, 1.0), spec.volume[None, :])


def smooth_curve(curve: np.ndarray) -> np.ndarray:
    """A centred 5-slot moving average, the ends padded with their edge values."""
    padded = np.pad(curve, ((0, 0), (2, 2)), mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 5, axis=1).mean(axis=2)


@dataclass(slots=True)
class DayPlan:
    """What a finished day tells the next one, per campaign: the LP multiplier on the day's sketch (log), the
    smoothed spend curve it would have drawn, and the day's win rate. ``planned`` is False where the sketch was
    empty (the controller then keeps its plan)."""

    day: np.ndarray  # (E,) the day of the facts it was read from
    planned: np.ndarray
    log_multiplier: np.ndarray
    curve: np.ndarray  # (E, slots)
    win_rate: np.ndarray

    def to_record(self, e: int = 0) -> dict[str, Any]:
        return {"day": int(self.day[e]), "planned": bool(self.planned[e]), "log_multiplier": float(self.log_multiplier[e]),
                "curve": self.curve[e].tolist(), "win_rate": float(self.win_rate[e])}

    @staticmethod
    def from_record(data: Mapping[str, Any]) -> DayPlan:
        return DayPlan(np.array([int(data["day"])]), np.array([bool(data["planned"])]), np.array([float(data["log_multiplier"])]),
                       np.asarray([data["curve"]], dtype=np.float64), np.array([float(data["win_rate"])]))


def day_plan(facts: CampaignFacts, spec: BidSpec) -> DayPlan:
    """The plan the facts' current day gives the next one (see :class:`DayPlan`)."""
    n = len(facts.budget)
    planned = facts.sketch[..., 0].sum(axis=(1, 2)) > 0
    log_mult, curve = np.zeros(n), np.tile(spec.volume, (n, 1))
    if planned.any():
        sketch = facts.sketch[planned]
        mult = lp_multiplier(sketch, facts.budget[planned], spec)
        log_mult[planned], curve[planned] = np.log(mult), smooth_curve(spend_curve(sketch, mult, spec))
    _, wins, opportunities = facts.today
    return DayPlan(facts.day.copy(), planned, log_mult, curve, wins / np.maximum(opportunities, 1.0))


# ---- moving the controller ----------------------------------------------------------------------------


def _start(state: PacerState, mask: np.ndarray, g: int, spec: BidSpec, params: PacingParams) -> None:
    """A controller with no plan yet, at global slot ``g``: the initial multiplier, the traffic curve."""
    state.g[mask], state.day[mask] = g, g // spec.slots_per_day
    state.curve[mask] = spec.volume
    state.log_m_start[mask] = state.log_m[mask] = np.log(params.initial)
    state.left_before[mask], state.ratio[mask], state.y_win[mask] = 1.0, 1.0, 0.0


def _roll_day(state: PacerState, plan: DayPlan, mask: np.ndarray, day: int, spec: BidSpec, params: PacingParams) -> None:
    """Start ``day`` for the campaigns in ``mask`` from the plan of the controller's last day where the facts
    hold it (the day before ``day``, or earlier when no event came since); with no plan the old one is kept."""
    last = plan.day == state.day
    planned = mask & last & plan.planned
    if planned.any():
        curve = params.curve_memory * state.curve[planned] + (1 - params.curve_memory) * plan.curve[planned]
        curve = 0.9 * curve + 0.1 * spec.volume  # never plan zero spend in a slot
        state.curve[planned] = curve / curve.sum(axis=1, keepdims=True)
        state.log_m_start[planned] = plan.log_multiplier[planned]
    state.y_win[mask] = np.where(last & (state.day == day - 1), plan.win_rate, 0.0)[mask]
    state.log_m[mask] = state.log_m_start[mask]
    state.left_before[mask], state.ratio[mask] = 1.0, 1.0
    state.day[mask], state.g[mask] = day, day * spec.slots_per_day


def _step(state: PacerState, facts: CampaignFacts, mask: np.ndarray, g: int, spec: BidSpec, params: PacingParams) -> None:
    """Move from slot ``g - 1`` to ``g`` (same day): the log multiplier follows last slot's spend error."""
    t = g % spec.slots_per_day
    budget = facts.budget[mask]
    curve = state.curve[mask]
    plan_left = curve[:, t - 1 :].sum(axis=1)
    target = np.maximum(state.left_before[mask] * curve[:, t - 1] / np.maximum(plan_left, 1e-9), 1e-6)
    ratio = facts.slot_stats(g - 1)[0][mask] / budget / target
    state.ratio[mask] = ratio
    state.log_m[mask] = np.clip(state.log_m[mask] - params.eta * np.clip(ratio - 1.0, -1.0, 2.0), LOG_M_MIN, LOG_M_MAX)
    state.left_before[mask] = facts.budget_left(g // spec.slots_per_day)[mask] / budget
    state.g[mask] = g


def advance(
    state: PacerState, facts: CampaignFacts, g: int, spec: BidSpec, params: PacingParams, plan: DayPlan | None = None,
) -> None:
    """Bring the controller to the start of global slot ``g``, in place, from the facts of the slots before it.

    Call it before folding the facts of slot ``g`` (the facts must hold nothing later than ``g - 1``). A campaign
    with no fact yet starts afresh at ``g``; a controller already at or past ``g`` is left as it is. A new day
    plans from ``plan``, by default :func:`day_plan` of the facts (a reader without the sketch passes the plan
    the agent stored).
    """
    fresh = (state.g < 0) | ~facts.started
    if fresh.any():
        _start(state, fresh, g, spec, params)
    behind = state.g < g
    if not behind.any():
        return
    day = g // spec.slots_per_day
    new_day = behind & (state.day < day)
    if new_day.any():
        _roll_day(state, plan or day_plan(facts, spec), new_day, day, spec, params)
    for k in range(int(state.g[behind].min()) + 1, g + 1):
        mask = behind & (state.g == k - 1)
        if mask.any():
            _step(state, facts, mask, k, spec, params)
