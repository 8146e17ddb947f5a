"""The bid observation and the campaign facts it reads: each column from folded auctions and conversions, quiet
slots and new days, events without the bidder's estimate, late events, the record round trip, slot times."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from environment.bid_facts import (
    BidSpec,
    CampaignFacts,
    facts_from_record,
    facts_to_record,
    fold_auctions,
    fold_conversions,
    global_slot,
    slot_start_us,
)
from environment.bid_observation import COLUMNS, N_SLOT_OBS, bid_observation

SPEC = BidSpec(slots_per_day=4, days=3, opportunities_per_day=400, value_scale=0.02, volume=np.array([0.1, 0.2, 0.3, 0.4]),
               auction_type="second_price", reserve_price=0.002, max_multiplier=10.0, max_bid=5.0, sketch_bins=8)


def _slot_one(facts: CampaignFacts) -> None:
    """Day 0, slot 1: campaign 0 sees 3 auctions (wins 2, pays 0.5 + 0.3) and a conversion of 40; campaign 1 loses one."""
    fold_auctions(facts, SPEC, 1, np.array([0, 0, 0, 1]), np.array([0.02, 0.04, 0.06, 0.01]), np.array([0.01, 0.03, 0.1, 0.05]),
                  np.array([True, True, False, False]), np.array([0.5, 0.3, 0.0, 0.0]))
    fold_conversions(facts, SPEC, 1, np.array([40.0, 0.0]))


def test_every_column_of_a_folded_slot() -> None:
    facts = CampaignFacts.empty(2, np.array([10.0, 20.0]), SPEC)
    _slot_one(facts)
    obs = bid_observation(facts, 2, SPEC)
    assert obs.shape == (2, N_SLOT_OBS) == (2, len(COLUMNS)) and obs.dtype == np.float32
    assert obs[0] == pytest.approx([2 / 4, 0.0, (10 - 0.8) / 10, 0.8 / (10 / 4), 2 / 3, 3 / 100, 0.04 / 0.02, 0.4 / 0.02,
                                    40 / (10 / 4), 0.3 + 0.4])
    assert obs[1] == pytest.approx([2 / 4, 0.0, 1.0, 0.0, 0.0, 1 / 100, 0.01 / 0.02, 0.0, 0.0, 0.7])


def test_a_quiet_slot_reads_zero_and_a_new_day_starts_with_the_whole_budget() -> None:
    facts = CampaignFacts.empty(2, np.array([10.0, 20.0]), SPEC)
    _slot_one(facts)
    quiet = bid_observation(facts, 3, SPEC)  # slot 2 had no event
    assert (quiet[:, 3:9] == 0).all() and quiet[0, 2] == pytest.approx(0.92)
    next_day = bid_observation(facts, 4, SPEC)
    assert next_day[0, :3] == pytest.approx([0.0, 1 / 3, 1.0])
    fold_auctions(facts, SPEC, 3, np.array([0]), np.array([0.02]), np.array([0.01]), np.array([True]), np.array([0.01]))
    after_last_slot = bid_observation(facts, 4, SPEC)  # the day's last slot is the next day's "last slot"
    assert after_last_slot[0, 2] == pytest.approx(1.0) and after_last_slot[0, 3] == pytest.approx(0.01 / 2.5)


def test_auctions_without_estimate_or_price_to_beat_count_but_stay_out_of_the_sketch() -> None:
    facts = CampaignFacts.empty(1, 10.0, SPEC)
    fold_auctions(facts, SPEC, 0, np.zeros(2, np.int64), np.array([np.nan, 0.02]), np.array([0.01, np.nan]),
                  np.array([True, False]), np.array([0.2, 0.0]))
    assert facts.today[:, 0].tolist() == [0.2, 1.0, 2.0]
    assert facts.cur[1:, 0].tolist() == [0.2, 1.0, 2.0, 0.02, 0.0]
    assert facts.sketch.sum() == 0.0


def test_a_late_event_counts_for_its_day_but_not_for_a_slot_two_behind() -> None:
    facts = CampaignFacts.empty(1, 10.0, SPEC)
    for g in (1, 2, 3):
        fold_auctions(facts, SPEC, g, np.zeros(1, np.int64), np.array([0.02]), np.array([0.01]), np.array([True]), np.array([0.1]))
    fold_auctions(facts, SPEC, 1, np.zeros(1, np.int64), np.array([0.02]), np.array([0.01]), np.array([True]), np.array([0.1]))
    assert facts.today[0, 0] == pytest.approx(0.4)
    assert facts.cur[:2, 0].tolist() == [3, 0.1] and facts.prev[:2, 0].tolist() == [2, 0.1]
    assert facts.sketch[0, 1, :, 0].sum() == pytest.approx(0.02)


def test_the_record_round_trip_is_exact() -> None:
    facts = CampaignFacts.empty(2, np.array([10.0, 20.0]), SPEC)
    _slot_one(facts)
    record = orjson.loads(orjson.dumps(facts_to_record(facts, 0)))
    assert "sketch" not in record  # kept apart: only the agent reads it
    back = facts_from_record(record, SPEC, orjson.loads(orjson.dumps(facts.sketch[0].ravel().tolist())))
    for name in CampaignFacts.__dataclass_fields__:
        assert np.array_equal(getattr(back, name), getattr(facts, name)[..., :1] if name != "sketch" else facts.sketch[:1]), name
    assert np.array_equal(bid_observation(back, 2, SPEC), bid_observation(facts, 2, SPEC)[:1])


@pytest.mark.parametrize("slots", [96, 7, 1440])
def test_global_slot_of_an_event_time(slots: int) -> None:
    for g in (0, 1, slots - 1, slots, 20_000 * slots + 5):
        start = slot_start_us(g, slots)
        assert global_slot(start, slots) == g and global_slot(start - 1, slots) == g - 1


def test_the_market_observes_its_own_folded_slot() -> None:
    from environment.vector import AuctionVectorEnv  # lazy: loads torch and stable-baselines3

    env = AuctionVectorEnv(2, opportunities_per_day=2_000, days=1)
    env.reset(seed=0)
    model = env.model
    for _ in range(40):
        obs, _, _, _, info = env.step(np.full((2, 1), 0.5))
    assert obs[:, 0] == pytest.approx(40 / 96)
    assert obs[:, 3] == pytest.approx(info["spend"] / (model.daily_budget / 96), rel=1e-5)
    assert obs[:, 4] == pytest.approx(info["wins"] / np.maximum(info["opportunities"], 1), rel=1e-5)
    assert obs[:, 5] == pytest.approx(info["opportunities"] / (model.opportunities_per_day / 96), rel=1e-5)
    assert np.array_equal(obs, bid_observation(env.market.facts, env.market.global_slot, env.market.spec))
