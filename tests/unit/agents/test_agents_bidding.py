"""The bidding agent's fold: spend, wins and budget from auction events, conversions from attributed purchases,
the same record whatever the batch size, a bounded record, and the controller moving with the slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from agents.bidding import BiddingAgent, BiddingConfig
from agents.runtime import AgentShard, ShardConfig, StateView
from data.events import AuctionResult, EventBase, Purchase
from data.log import open_log
from data.log.base import StoredEvent
from policies.bid_serving import sketch_key

DAY0 = datetime(2024, 10, 4, tzinfo=UTC)  # a slot is 15 minutes


def _auction(i: int, at: datetime, campaign: str = "cmp-a", won: bool = True, paid: float = 0.02, **extra: float) -> EventBase:
    props = {"campaign_id": campaign, "auction_id": f"au-{i}", "bid": 0.05, "won": won, "price_paid": paid if won else 0.0,
             "estimate": 0.03, "price_to_beat": 0.02} | extra
    return AuctionResult(event_id=f"au-{i}", customer_id="anonymous", occurred_at=at, properties=props)


def _purchase(i: int, at: datetime, campaign: str | None, amount: float = 40.0) -> EventBase:
    return Purchase(event_id=f"pu-{i}", customer_id="anonymous", occurred_at=at,
                    properties={"order_id": f"o-{i}", "amount": amount, "campaign_id": campaign})


def _fold(tmp_path: Path, events: list[EventBase], batch_size: int = 2_000, name: str = "run") -> AgentShard:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    log = open_log(url)
    log.append(events)
    log.close()
    agent = BiddingAgent(BiddingConfig(daily_budgets={"cmp-a": 1.0}))
    shard = AgentShard(agent, ShardConfig(log_url=url, state_dir=tmp_path / f"{name}-state", batch_size=batch_size), start=False)
    shard.catch_up()
    return shard


def test_auctions_fold_into_spend_wins_and_the_budget_left(tmp_path: Path) -> None:
    events = [_auction(i, DAY0 + timedelta(minutes=3 * i), won=i % 2 == 0) for i in range(10)]  # minutes 0..27
    record = _fold(tmp_path, events).record("cmp-a")
    assert record["auctions_today"] == 10 and record["won_today"] == 5 and record["spend_today"] == pytest.approx(0.1)
    assert record["remaining_today"] == pytest.approx(0.9) and record["budget"] == 1.0
    g0 = 20_000 * 96  # 2024-10-04 is day 20,000 since 1970
    assert record["slot"][:4] == [g0 + 1, pytest.approx(0.04), 2, 5]  # minutes 15..27: the day's second slot
    assert record["prev_slot"][:4] == [g0, pytest.approx(0.06), 3, 5]
    assert record["pacer"]["g"] == g0 + 1 and record["multiplier"] == pytest.approx(np.exp(record["pacer"]["log_m"]))


def test_a_purchase_counts_for_a_campaign_that_bid_and_nowhere_else(tmp_path: Path) -> None:
    events = [_auction(0, DAY0), _purchase(1, DAY0 + timedelta(minutes=1), "cmp-a"), _purchase(2, DAY0, "newsletter"),
              _purchase(3, DAY0, None)]
    shard = _fold(tmp_path, events)
    assert shard.record("cmp-a")["slot"][5] == 40.0
    assert shard.record("newsletter") is None and set(shard.records()) == {"cmp-a", sketch_key("cmp-a")}


def test_a_new_day_restarts_the_counters_and_plans_from_yesterday(tmp_path: Path) -> None:
    events = [_auction(i, DAY0 + timedelta(minutes=3 * i), estimate=0.01 * (1 + i % 5)) for i in range(300)]
    events.append(_auction(999, DAY0 + timedelta(days=1, minutes=1)))
    record = _fold(tmp_path, events).record("cmp-a")
    assert record["auctions_today"] == 1 and record["auctions_total"] == 301 and record["first_day"] == record["day"] - 1
    assert record["pacer"]["day"] == record["day"] and record["pacer"]["y_win"] == pytest.approx(1.0)
    assert record["pacer"]["log_m_start"] != pytest.approx(np.log(0.4))  # planned from yesterday's sketch


def test_the_record_is_the_same_whatever_the_batch_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    events = [_auction(i, DAY0 + timedelta(seconds=int(s)), campaign=f"cmp-{'ab'[i % 2]}", won=bool(rng.random() < 0.3),
                       paid=float(rng.uniform(0.005, 0.03)), estimate=float(rng.uniform(0.005, 0.05)),
                       price_to_beat=float(rng.uniform(0.005, 0.03)))
              for i, s in enumerate(np.sort(rng.uniform(0, 2 * 86_400, 2_000)))]
    one = _fold(tmp_path, events, 10_000, "one").records()
    many = _fold(tmp_path, events, 7, "many").records()
    assert set(one) == set(many) == {"cmp-a", "cmp-b", sketch_key("cmp-a"), sketch_key("cmp-b")}
    for key in one:
        a, b = np.array(_numbers(one[key])), np.array(_numbers(many[key]))
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=1e-12), key


def _numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _numbers(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, int | float) else []


def test_the_record_stays_bounded_and_small_for_serving(tmp_path: Path) -> None:
    few = _fold(tmp_path, [_auction(i, DAY0 + timedelta(seconds=i)) for i in range(20)], name="few")
    many = _fold(tmp_path, [_auction(i, DAY0 + timedelta(seconds=4 * i)) for i in range(20_000)], name="many")
    for key in ("cmp-a", sketch_key("cmp-a")):
        small, big = (len(orjson.dumps(s.record(key))) for s in (few, many))
        assert big < 1.5 * small, key
    assert len(orjson.dumps(many.record("cmp-a"))) < 10_000  # what /v1/bid's cache fetches every second


def test_a_record_of_the_former_format_restarts_the_campaign(tmp_path: Path) -> None:
    old = {"cmp-a": {"campaign_id": "cmp-a", "day": 1, "spend_today": 2.0, "pacing_multiplier": 1.3}}
    view = StateView(dict(old), lambda keys: {}, lambda: list(old))
    agent = BiddingAgent(BiddingConfig(daily_budgets={"cmp-a": 1.0}))
    stored = [_stored(_auction(0, DAY0)), _stored(_purchase(1, DAY0, "cmp-a"))]
    agent.decide(stored, view)
    record = view.changes["cmp-a"]
    assert record["auctions_total"] == 1 and record["spend_today"] == pytest.approx(0.02) and "pacer" in record
    assert record["slot"][5] == 40.0


def _stored(event: EventBase) -> object:
    """The event as the log hands it to an agent."""
    at = int(event.occurred_at.timestamp() * 1_000_000)
    props = orjson.dumps(event.properties.model_dump(exclude_none=True)).decode()
    return StoredEvent(0, event.event_id, event.event_type, event.customer_id, at, at, event.source, 1, None, props)
