"""The pacing controller on campaign facts: the LP multiplier and spend curve read from the bid sketch against the
exact plan on the raw auctions, the day's rollover, a jump of several slots or days, a fresh start, the record."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from environment.auction_market import resolve_auctions
from environment.bid_facts import CampaignFacts, fold_auctions
from environment.bounds import hindsight_lp
from environment.vector import AuctionVectorEnv
from policies.bid_pacer import PacerState, PacingParams, advance, lp_multiplier, spend_curve

PARAMS = PacingParams()


def _day(budget: float = 2.0, auction_type: str = "second_price", seed: int = 0):
    """One simulated day of 2 campaigns folded into facts, with its raw auctions."""
    env = AuctionVectorEnv(2, opportunities_per_day=20_000, days=2, auction_type=auction_type)
    env.reset(seed=seed)
    market, day = env.market, env.market.day_data
    spec = market.spec
    facts = CampaignFacts.empty(2, budget, spec)
    price = np.maximum(day.competing, market.model.reserve_price)
    for s in range(spec.slots_per_day):
        sl = day.slot_range(s)
        fold_auctions(facts, spec, s, day.env[sl], day.estimate[sl], price[sl], np.zeros(sl.stop - sl.start, bool),
                      np.zeros(sl.stop - sl.start))
    return spec, facts, day, price


@pytest.mark.parametrize("budget", [0.5, 2.0, 8.0])
def test_the_sketch_lp_multiplier_is_close_to_the_exact_one(budget: float) -> None:
    """Within the error of spreading a bin's auctions evenly (bins of 0.125 in log ratio: a few percent)."""
    spec, facts, day, price = _day(budget)
    ours = lp_multiplier(facts.sketch, facts.budget, spec)
    for e in range(2):
        idx = day.env == e
        exact = 1.0 / hindsight_lp(day.estimate[idx], price[idx], budget).threshold
        assert ours[e] == pytest.approx(exact, rel=0.03)
    assert not np.allclose(ours, lp_multiplier(facts.sketch, facts.budget * 1.5, spec), rtol=0.03)


@pytest.mark.parametrize("auction_type", ["second_price", "first_price"])
def test_the_sketch_spend_curve_is_close_to_the_replayed_one(auction_type: str) -> None:
    spec, facts, day, _ = _day(8.0, auction_type)
    mult = lp_multiplier(facts.sketch, facts.budget, spec)
    curve = spend_curve(facts.sketch, mult, spec)
    assert curve.shape == (2, spec.slots_per_day) and curve.sum(axis=1) == pytest.approx(1.0)
    for e in range(2):
        idx = np.flatnonzero(day.env == e)
        bids = np.minimum(mult[e] * day.estimate[idx], spec.max_bid)
        _, cost = resolve_auctions(bids, day.competing[idx], np.zeros(len(idx), np.int64), np.array([np.inf]),
                                   spec.reserve_price, auction_type == "first_price")
        exact = np.bincount(day.slot[idx], weights=cost, minlength=spec.slots_per_day)
        hourly = np.abs(curve[e] - exact / exact.sum()).reshape(24, 4).sum(axis=1)
        assert 0.5 * hourly.sum() < 0.05  # total variation over hours: the two days' spend agree within 5%
        assert 0.5 * np.abs(curve[e] - spec.volume).sum() > 0.1  # and neither is the traffic curve


def test_a_new_day_plans_from_yesterdays_sketch() -> None:
    spec, facts, _, _ = _day(2.0)
    facts.today[1:] = [[30.0, 10.0], [100.0, 100.0]]  # wins and auctions
    state = PacerState.empty(2, spec)
    advance(state, facts, 0, spec, PARAMS)
    facts.cur[0] = spec.slots_per_day - 1  # the day's last slot had the latest event
    advance(state, facts, 40, spec, PARAMS)
    log_m_day0 = state.log_m.copy()
    advance(state, facts, spec.slots_per_day, spec, PARAMS)
    assert state.day.tolist() == [1, 1] and state.g.tolist() == [96, 96]
    assert state.log_m_start == pytest.approx(np.log(lp_multiplier(facts.sketch, facts.budget, spec)))
    assert state.log_m == pytest.approx(state.log_m_start) and not np.allclose(state.log_m, log_m_day0)
    assert state.y_win == pytest.approx([0.3, 0.1])
    assert state.curve.sum(axis=1) == pytest.approx(1.0) and not np.allclose(state.curve, spec.volume)


def test_one_jump_is_the_same_as_slot_by_slot() -> None:
    spec, facts, _, _ = _day(2.0)
    facts.cur[0] = 10
    one, many = PacerState.empty(2, spec), PacerState.empty(2, spec)
    advance(one, facts, 10, spec, PARAMS)
    advance(many, facts, 10, spec, PARAMS)
    advance(one, facts, 3 * spec.slots_per_day + 30, spec, PARAMS)  # two quiet days, then 30 quiet slots
    for g in range(11, 3 * spec.slots_per_day + 31):
        advance(many, facts, g, spec, PARAMS)
    for name in PacerState.__dataclass_fields__:
        assert np.allclose(getattr(one, name), getattr(many, name)), name
    assert one.y_win.tolist() == [0.0, 0.0]  # nothing happened yesterday
    assert (one.log_m > one.log_m_start).all()  # a quiet morning raises the multiplier


def test_a_fresh_controller_bids_the_initial_multiplier_and_an_advanced_one_stays() -> None:
    spec, _, _, _ = _day()
    empty, facts = CampaignFacts.empty(1, 5.0, spec), CampaignFacts.empty(1, 5.0, spec)
    state = PacerState.empty(1, spec)
    advance(state, empty, 500, spec, PacingParams(initial=0.7))
    assert state.multiplier == pytest.approx([0.7]) and state.g.tolist() == [500]
    advance(state, empty, 530, spec, PacingParams(initial=0.7))  # no fact yet: still fresh, at the new slot
    assert state.multiplier == pytest.approx([0.7]) and state.g.tolist() == [530]
    facts.cur[0] = 529  # a quiet slot 529 was folded: from here on the controller moves
    advance(state, facts, 540, spec, PARAMS)
    advance(state, facts, 535, spec, PARAMS)  # never backwards
    assert state.g.tolist() == [540] and state.multiplier[0] > 0.7


def test_the_pacer_record_round_trips() -> None:
    spec, facts, _, _ = _day()
    state = PacerState.empty(2, spec)
    facts.cur[0] = 5
    advance(state, facts, 5, spec, PARAMS)
    advance(state, facts, 20, spec, PARAMS)
    back = PacerState.from_record(orjson.loads(orjson.dumps(state.to_record(1))))
    for name in PacerState.__dataclass_fields__:
        assert np.array_equal(getattr(back, name)[0], getattr(state, name)[1]), name
    assert PacingParams.from_dict(PARAMS.to_dict()) == PARAMS
