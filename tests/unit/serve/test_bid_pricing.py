"""/v1/bid's price from a campaign record: the estimate times the served bidder's multiplier, capped, pacing applied
once (a registered residual inside its controller), no bid once the budget is spent, and the quote cache."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from environment.auction_market import bid_spec
from environment.bid_facts import CampaignFacts, fold_auctions, slot_start_us
from environment.bidding import ConstantMultiplier
from environment.config import load_market_config
from policies.bid_pacer import PacerState, PacingParams, advance
from policies.bid_serving import campaign_record
from policies.bidder import ProfilePacing
from policies.registry import PolicyMetadata, PolicyRegistry
from serve.decide import BidConfig, PacingCache, bid_multiplier, bid_prices

SPEC = bid_spec(load_market_config().auction)
G0 = 20_000 * 96  # 2024-10-04, slot 0


def _record(spend: list[float], budget: float = 10.0) -> dict:
    """A campaign that spent ``spend[k]`` in slot k of the day (one auction a slot), folded as the agent does."""
    facts, pacer = CampaignFacts.empty(1, budget, SPEC), PacerState.empty(1, SPEC)
    for k, cost in enumerate(spend):
        advance(pacer, facts, G0 + k, SPEC, PacingParams())
        fold_auctions(facts, SPEC, G0 + k, np.zeros(1, np.int64), np.array([0.03]), np.array([0.02]), np.array([cost > 0]),
                      np.array([cost]))
    return campaign_record("cmp", facts, pacer, SPEC, PacingParams(), slot_start_us(G0 + len(spend), 96) - 1)[0]


def _imps(*values: float | None) -> list[SimpleNamespace]:
    return [SimpleNamespace(ext=None if v is None else {"value": v}, model_extra={}, bidfloor=0.01) for v in values]


NOW = slot_start_us(G0 + 20, 96) + 60_000_000  # a minute into slot 20


def test_a_campaign_never_folded_bids_the_initial_multiplier() -> None:
    quote = bid_multiplier(ProfilePacing(initial=0.3), None, NOW)
    assert quote.multiplier == pytest.approx(0.3) and quote.budget_left > 0
    assert bid_prices(_imps(2.0, None), quote, BidConfig(default_value=1.0)) == [pytest.approx(0.6), pytest.approx(0.3)]


def test_the_price_is_the_estimate_times_the_controllers_multiplier_capped() -> None:
    record = _record([0.0] * 10 + [0.5] * 10)  # a quiet morning, then spending fast
    quote = bid_multiplier(ProfilePacing(), record, NOW)
    assert record["pacer"]["g"] == G0 + 19
    assert quote.multiplier < record["multiplier"]  # moved to slot 20 after spending 5% of the budget in slot 19
    again = bid_multiplier(ProfilePacing(), record, NOW + 5 * 60_000_000)
    assert again == quote  # the multiplier moves once a slot
    assert bid_prices(_imps(1.0, 1e6), quote, BidConfig(max_bid=7.0)) == [round(quote.multiplier, 4), 7.0]
    assert quote.budget_left == pytest.approx(10.0 - 5.0)


def test_no_bid_once_the_budget_is_spent_and_a_new_day_restores_it() -> None:
    record = _record([1.0] * 10, budget=10.0)
    spent = bid_multiplier(ProfilePacing(), record, slot_start_us(G0 + 10, 96))
    assert spent.budget_left == 0.0 and bid_prices(_imps(2.0), spent, BidConfig()) == [None]
    tomorrow = bid_multiplier(ProfilePacing(), record, slot_start_us(G0 + 96 + 3, 96))
    assert tomorrow.budget_left == 10.0 and bid_prices(_imps(2.0), tomorrow, BidConfig())[0] is not None


def test_a_policy_without_a_controller_reads_the_bid_observation() -> None:
    quote = bid_multiplier(ConstantMultiplier(0.7), _record([0.2] * 5), NOW)
    assert quote.multiplier == pytest.approx(0.7)  # and nothing multiplies it again


def _register_residual(root: Path, factor: float) -> object:
    """A registered bidder residual whose TorchScript export answers ``factor`` (what ``ame train bidder`` writes)."""
    import torch  # lazy: torch is heavy


    class Constant(torch.nn.Module):
        def __init__(self, m: float) -> None:
            super().__init__()
            self.m = m

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.full((obs.shape[0], 1), self.m)

    folder = root / "bidding" / "v0001"
    folder.mkdir(parents=True)
    torch.jit.save(torch.jit.script(Constant(factor)), str(folder / "policy.pt"))
    options = {"residual_of": "profile_pacing", "eta": 0.08, "curve_memory": 0.5, "initial": 0.25}
    meta = PolicyMetadata(name="bidding", version="v0001", task="bidding", algo="SAC", export_kind="continuous", observation_dim=10,
                          action_low=[0.9], action_high=[1.1], env_config_hash="t", seed=0, timesteps=0, code_version="t",
                          created_at=datetime.now(UTC).isoformat(), env_options=options)
    (folder / "metadata.json").write_text(meta.model_dump_json())
    return PolicyRegistry(root).load("bidding", "v0001")


def test_a_registered_residual_is_served_inside_its_controller_and_paces_once(tmp_path: Path) -> None:
    residual = _register_residual(tmp_path, 1.05)
    record = _record([0.1] * 12)
    controller = bid_multiplier(ProfilePacing(), record, NOW).multiplier
    assert bid_multiplier(residual, record, NOW).multiplier == pytest.approx(1.05 * controller, rel=1e-6)
    assert bid_multiplier(residual, None, NOW).multiplier == pytest.approx(1.05 * 0.25, rel=1e-6)  # its own initial


def test_the_cache_keeps_a_quote_until_the_record_slot_or_policy_changes() -> None:
    records = {"cmp": _record([0.1] * 12)}
    cache = PacingCache(lambda campaigns: {c: records[c] for c in campaigns if c in records}, interval_s=0.01)
    try:
        policy = ProfilePacing()
        first = cache.quote(policy, "cmp", NOW)  # not fetched yet: a fresh campaign
        assert first.multiplier == pytest.approx(0.4)
        deadline = time.monotonic() + 5
        while cache.get("cmp") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        quote = cache.quote(policy, "cmp", NOW)
        assert quote != first and cache.quote(policy, "cmp", NOW + 1) is quote
        assert cache.quote(policy, "cmp", NOW + 15 * 60_000_000) is not quote
        assert cache.quote(ProfilePacing(), "cmp", NOW) is not quote
    finally:
        cache.stop()


def test_a_record_of_the_former_format_reads_as_a_fresh_campaign() -> None:
    old = {"campaign_id": "cmp", "budget": 10.0, "spend_today": 2.0, "remaining_today": 8.0, "pacing_multiplier": 1.3}
    assert bid_multiplier(ProfilePacing(), old, NOW) == bid_multiplier(ProfilePacing(), None, NOW)
