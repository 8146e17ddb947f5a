"""The bidder (profile pacing with a learned residual): budget kept, budget used, training env, registry round trip,
and the benchmark table's shape."""

from __future__ import annotations

import io

import numpy as np
import pytest

from benchmarks.bench_bidding import AUCTIONS, BUDGETS, CONTROLLER, print_tables, table_rows, targets
from environment.bidding import LinearPreviousDay
from environment.config import load_market_config
from policies.bidder import N_RESIDUAL_OBS, RESIDUAL_RANGE, ProfilePacing
from policies.evaluate import BIDDING_BASELINES, bidding_suite, budget_config, resolve_policy, run_bidding, win_all_spend
from policies.registry import PolicyRegistry

SMALL = {"opportunities_per_day": 5_000, "days": 3}


def _run(policy, frac: float, auction: str, seed: int = 3, campaigns: int = 3):
    base = load_market_config()
    over = SMALL | {"auction_type": auction}
    cfg = budget_config(base, frac * win_all_spend(base, campaigns, seed, **over), auction)
    return run_bidding(policy, cfg, campaigns, seed, frac, **over)


class _Factor:
    """A residual that always answers the same factor."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        assert obs.shape[1] == N_RESIDUAL_OBS and np.isfinite(obs).all()
        return np.full((obs.shape[0], 1), self.factor, dtype=np.float32), state


@pytest.mark.parametrize("auction", ["second_price", "first_price"])
@pytest.mark.parametrize("frac", [1 / 2, 1 / 32])
def test_profile_pacing_spends_the_budget_and_never_more(frac, auction):
    m = _run(ProfilePacing(), frac, auction)
    assert not m.overspent and m.spend <= m.budget * (1 + 1e-9)
    assert 0.95 <= m.spend_share <= 1.0
    assert m.lp_share > (0.9 if auction == "second_price" else 0.6)


def test_an_aggressive_residual_cannot_overspend():
    """The budget holds whatever the residual asks: the market refuses any win past the day's budget."""
    m = _run(ProfilePacing(residual=_Factor(1.0 + RESIDUAL_RANGE), initial=8.0), 1 / 32, "first_price")
    assert not m.overspent and m.spend_share <= 1.0 + 1e-9


def test_a_neutral_residual_is_the_controller_alone():
    alone = _run(ProfilePacing(), 1 / 8, "second_price")
    neutral = _run(ProfilePacing(residual=_Factor(1.0)), 1 / 8, "second_price")
    assert neutral.value == pytest.approx(alone.value) and neutral.spend == pytest.approx(alone.spend)


def test_profile_pacing_beats_previous_day_linear_at_a_small_budget():
    ours, linear = _run(ProfilePacing(), 1 / 32, "second_price"), _run(LinearPreviousDay(), 1 / 32, "second_price")
    assert ours.value > linear.value


def test_residual_env_steps_every_budget_with_the_lagrangian_reward():
    from policies.train_bidder import ResidualPacingVecEnv  # lazy: loads torch and stable-baselines3

    env = ResidualPacingVecEnv(load_market_config(), [1 / 2, 1 / 32], 2, seed=0, opportunities_per_day=2_000, days=1)
    obs = env.reset()
    assert obs.shape == (4, N_RESIDUAL_OBS)
    lp_value, threshold = np.concatenate(env._lp, axis=1)  # the one day's LP, per campaign
    total, steps = np.zeros(4), 0
    while True:
        env.step_async(np.ones((4, 1), dtype=np.float32))
        obs, reward, done, infos = env.step_wait()
        total += reward
        steps += 1
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        if done.all():
            assert all(i["TimeLimit.truncated"] is False and "terminal_observation" in i for i in infos)
            break
    assert steps == env.slots
    # a day's return over slots is (value - lambda x spend) / LP value: at most what the LP's own set scores
    best = 1 - threshold * np.repeat([s.model.daily_budget for s in env.subs], 2) / lp_value
    assert (total / env.slots <= best + 1e-6).all() and (total / env.slots > best - 0.2).all()


def test_trained_residual_registers_exports_and_resolves_as_the_bidder(tmp_path):
    from policies.train_bidder import BidderArgs, main  # lazy: loads torch and stable-baselines3

    args = BidderArgs(
        timesteps=600, learning_starts=100, fractions=[1 / 4, 1 / 32], campaigns=2, opportunities_per_day=1_000, days=1,
        eval_campaigns=2, eval_opportunities=2_000, eval_fractions=[1 / 32], registry=str(tmp_path / "reg"),
        run_dir=str(tmp_path / "run"), progress=False, name="bidder-test",
    )
    path = main(args)
    meta = PolicyRegistry(args.registry).metadata("bidder-test")
    assert path.name == meta.version and meta.observation_dim == N_RESIDUAL_OBS and meta.export_kind == "continuous"
    assert meta.action_low == [pytest.approx(1 - RESIDUAL_RANGE)] and meta.action_high == [pytest.approx(1 + RESIDUAL_RANGE)]
    assert meta.env_options["residual_of"] == "profile_pacing" and "lp_share_b32" in meta.metrics
    bidder = resolve_policy("bidder-test", args.registry)
    assert isinstance(bidder, ProfilePacing) and bidder.residual is not None and bidder.name == "bidder-test"
    factor, _ = bidder.residual.predict(np.random.default_rng(0).random((5, N_RESIDUAL_OBS)).astype(np.float32))
    assert factor.shape == (5, 1) and ((factor >= 1 - RESIDUAL_RANGE - 1e-6) & (factor <= 1 + RESIDUAL_RANGE + 1e-6)).all()
    m = _run(bidder, 1 / 32, "second_price", campaigns=2)
    assert not m.overspent and m.spend_share >= 0.9


def test_bidding_table_has_every_budget_policy_and_auction_type():
    names = [*BIDDING_BASELINES, CONTROLLER]
    tables = {a: bidding_suite(names, 2, BUDGETS, a, n_campaigns=2, opportunities_per_day=1_000, days=2) for a in AUCTIONS}
    for results in tables.values():
        rows = table_rows(results)
        assert {(r[0], r[1]) for r in rows} == {(f"1/{d}", n) for d in (2, 8, 32) for n in names}
        assert all("±" in r[2] and "±" in r[3] and r[4].endswith("/2") for r in rows)
    figures = {r.name: r for r in targets(tables, CONTROLLER)}
    assert {"bidder 1/8 % of LP (second price)", "bidder 1/32 % of LP (second price)", "bidder 1/32 value vs previous-day linear",
            "bidder 1/2 % of LP (first price)"} <= set(figures)
    out = io.StringIO()
    print_tables(tables, 2, out)
    assert "second_price" in out.getvalue() and "first_price" in out.getvalue()
