"""The evaluation harness: every policy (heuristic, oracle, trained) scored on the same simulated customers
and auction days, over several seeds, with 95% confidence intervals across seeds.

- Journey: profit per customer, conversion rate, cost per customer, unsubscribe rate, % of the oracle (the
  exact DP value of the same customers), gap closed over the best heuristic.
- Bidding: value won, spend (share of budget), % of the hindsight LP, at budgets set as a fraction of the
  spend that would win every auction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from environment import bidding, heuristics
from environment.acting import EnvBound, choose
from environment.belief import parse_planner_name
from environment.belief_planner import ActsOnBelief, BeliefObserving, BeliefPlanner, FollowedBelief, ServedPlanner
from environment.bidding import evaluate_bidding
from environment.bounds import OraclePolicy
from environment.config import load_market_config
from policies.bidder import ProfilePacing
from policies.registry import PolicyRegistry

logger = logging.getLogger(__name__)

__all__ = ["BiddingMetrics", "JourneyMetrics", "mean_ci", "oracle_value", "run_bidding", "run_journey", "win_all_spend"]


@dataclass(frozen=True, slots=True)
class JourneyMetrics:
    """One policy on one seed's customers (per customer over the 60-day horizon)."""

    policy: str
    seed: int
    profit: float
    conversion_rate: float  # share of customers who bought at least once
    cost: float  # channel cost plus discounts given, per customer
    unsubscribe_rate: float  # share of customers who unsubscribed from at least one channel
    oracle: float  # the oracle's expected profit per customer on the same customers
    revenue: float = float("nan")  # purchase amounts per customer
    purchases: float = float("nan")  # purchases per customer
    unsubscribes: float = float("nan")  # unsubscribes per customer

    @property
    def oracle_share(self) -> float:
        return self.profit / self.oracle if self.oracle > 0 else float("nan")


def oracle_value(config: Any, n_customers: int, seed: int) -> float:
    """The exact expected return per customer of the DP oracle on the customers of ``seed``."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    env = JourneyVectorEnv(n_customers, config)
    env.reset(seed=seed)
    return float(OraclePolicy(env).expected_value().mean())


def run_journey(policy: Any, config: Any = None, n_customers: int = 2_000, seed: int = 0, oracle: float = float("nan"),
                days: int | None = None) -> JourneyMetrics:
    """One 60-day episode (or its first ``days`` days) of ``policy`` on the customers of ``seed``, acting as the
    engine acts (:func:`environment.acting.choose`: its recorded acting mode, the guardrails; the draws of a sampling
    policy come from ``seed``, so a rerun is identical)."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    config = config or load_market_config()
    env = JourneyVectorEnv(n_customers, config)
    obs, info = env.reset(seed=seed)
    if isinstance(policy, EnvBound):
        policy.bind(env)
    believer = FollowedBelief(config, env.tables) if isinstance(policy, ActsOnBelief) else None
    draws = np.random.default_rng([seed, 0xA7])
    cost_table = np.asarray(config.journey.cost)
    profit, cost, revenue, purchases, unsubscribes = (np.zeros(n_customers) for _ in range(5))
    bought, unsub = np.zeros(n_customers, bool), np.zeros(n_customers, bool)
    for _ in range(min(days or env.horizon, env.horizon)):
        acting = believer.bound(policy, obs, env.state) if believer is not None else policy
        choice = choose(acting, obs, info["action_mask"], draws.random(n_customers))
        before = env.state
        obs, reward, _, _, info = env.step(choice.executed)
        out = env.last_outcome
        if believer is not None:
            believer.saw(before, out)
        profit += reward
        cost += cost_table[out.action] + out.discount
        revenue += np.where(out.purchased, out.amount, 0.0)
        purchases += out.purchased
        unsubscribes += out.unsubscribed
        bought |= out.purchased.astype(bool)
        unsub |= out.unsubscribed.astype(bool)
    name = getattr(policy, "name", type(policy).__name__)
    return JourneyMetrics(name, seed, float(profit.mean()), float(bought.mean()), float(cost.mean()), float(unsub.mean()),
                          oracle, float(revenue.mean()), float(purchases.mean()), float(unsubscribes.mean()))


def mean_ci(values: list[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t confidence interval across seeds."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()) if v.size else float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(half)


# ---- bidding ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BiddingMetrics:
    """One bidder on one seed's market at one budget (averaged over campaigns, whole episode)."""

    policy: str
    seed: int
    budget_fraction: float
    auction_type: str
    value: float
    hindsight: float
    spend: float
    budget: float  # total budget over the episode
    overspent: bool

    @property
    def lp_share(self) -> float:
        return self.value / self.hindsight if self.hindsight > 0 else float("nan")

    @property
    def spend_share(self) -> float:
        return self.spend / self.budget if self.budget > 0 else float("nan")


def win_all_spend(config: Any, n_campaigns: int, seed: int, **overrides: Any) -> float:
    """The daily spend that would win every auction of a campaign (mean over campaigns, day 1 of ``seed``):
    the sum of max(competing bid, reserve)."""
    from environment.vector import AuctionVectorEnv  # lazy: loads torch and stable-baselines3

    env = AuctionVectorEnv(n_campaigns, config, **overrides)
    env.reset(seed=seed)
    day, model = env.market.day_data, env.model
    price = np.maximum(day.competing, model.reserve_price)
    return float(np.bincount(day.env, weights=price, minlength=n_campaigns).mean())


def budget_config(config: Any, daily_budget: float, auction_type: str | None = None) -> Any:
    """``config`` with the auction's daily budget (and optionally auction type) replaced."""
    update: dict[str, Any] = {"daily_budget": float(daily_budget)}
    if auction_type:
        update["auction_type"] = auction_type
    auction = config.auction.model_validate(config.auction.model_dump() | update)
    return config.model_copy(update={"auction": auction})


def run_bidding(policy: Any, config: Any, n_campaigns: int, seed: int, budget_fraction: float, **overrides: Any) -> BiddingMetrics:
    """One episode of a bidder; the budget in ``config`` is used as is (see :func:`budget_config`)."""
    score = evaluate_bidding(policy, config, n_campaigns=n_campaigns, seed=seed, **overrides)
    days = overrides.get("days") or config.auction.days
    budget = config.auction.daily_budget * days
    return BiddingMetrics(
        score.policy, seed, budget_fraction, config.auction.auction_type, score.expected_value, score.hindsight, score.spend,
        budget, bool(score.spend > budget * (1 + 1e-9)),
    )


# ---- suites over seeds (what ``ame evaluate`` and the benchmark run) ----------------------------------

JOURNEY_HEURISTICS = ("email_every_k", "engagement_ladder", "propensity_threshold", "offer_every_k")
BIDDING_BASELINES = ("linear_previous_day", "linear_hindsight", "dual_pacing")


def resolve_policy(name: str, registry: str | None = None) -> Any:
    """A heuristic or baseline by name (journey heuristics may take ``-eps<e>``, see
    :func:`environment.heuristics.heuristic_policy`), or a registered policy as ``name`` or ``name@version``."""
    if name.partition("-eps")[0] in heuristics.HEURISTICS:  # a journey heuristic, maybe with exploration
        return heuristics.heuristic_policy(name)
    makers = {
        "linear_previous_day": bidding.LinearPreviousDay,
        "linear_hindsight": bidding.LinearHindsight, "dual_pacing": bidding.DualPacing, "profile_pacing": ProfilePacing,
    }

    planner = parse_planner_name(name)
    if planner is not None:
        if planner.grid:  # the servable planner: the very object the slot serves
            return ServedPlanner(planner)
        return BeliefPlanner(lookahead=planner.lookahead, unsub_price=planner.unsub_price)
    if name in makers:
        return makers[name]()

    base, _, version = name.partition("@")
    policy = PolicyRegistry(registry).load(base, version or None)
    policy.name = base
    options = policy.metadata.env_options
    if options.get("residual_of") == "profile_pacing":  # the bidder: the controller with the learned residual
        return ProfilePacing(eta=float(options.get("eta", 0.08)), curve_memory=float(options.get("curve_memory", 0.5)),
                             initial=float(options.get("initial", 0.4)), residual=policy, name=base)
    # it acts by its recorded mode (ExportedPolicy.acting: sample, or argmax where validation preferred it)
    if options.get("belief"):  # it observes the Bayes filter's belief too, as the journey agent serves it
        return BeliefObserving(policy, name=base)
    return policy


def journey_suite(
    names: list[str], seeds: int = 10, n_customers: int = 2_000, registry: str | None = None, config: Any = None, first_seed: int = 10_000
) -> dict[str, list[JourneyMetrics]]:
    """Every named policy on the customers of seeds ``first_seed .. first_seed + seeds - 1`` (never the
    training seeds), each metric beside the oracle's exact value on the same customers."""
    config = config or load_market_config()
    policies = {n: resolve_policy(n, registry) for n in names}
    out: dict[str, list[JourneyMetrics]] = {n: [] for n in names}
    for seed in range(first_seed, first_seed + seeds):
        bound = oracle_value(config, n_customers, seed)
        for n, p in policies.items():
            m = run_journey(p, config, n_customers, seed, bound)
            fields = ("seed", "profit", "conversion_rate", "cost", "unsubscribe_rate", "oracle")
            out[n].append(JourneyMetrics(n, *[getattr(m, f) for f in fields]))
    return out


def bidding_suite(
    names: list[str], seeds: int = 10, budgets: tuple[float, ...] = (1 / 2, 1 / 8, 1 / 32), auction_type: str = "second_price",
    n_campaigns: int = 4, opportunities_per_day: int = 100_000, days: int = 7, registry: str | None = None, config: Any = None,
    first_seed: int = 10_000,
) -> dict[tuple[str, float], list[BiddingMetrics]]:
    """Every bidder at every budget fraction (of the spend that wins everything) on the same seeded markets."""
    base = config or load_market_config()
    over = {"opportunities_per_day": opportunities_per_day, "days": days, "auction_type": auction_type}
    out: dict[tuple[str, float], list[BiddingMetrics]] = {}
    for seed in range(first_seed, first_seed + seeds):
        spend_all = win_all_spend(base, n_campaigns, seed, **over)
        for frac in budgets:
            cfg = budget_config(base, frac * spend_all, auction_type)
            for n in names:
                m = run_bidding(resolve_policy(n, registry), cfg, n_campaigns, seed, frac, **over)
                out.setdefault((n, frac), []).append(m)
    return out


def plot_journey(results: dict[str, list[JourneyMetrics]], path: Any, curves: dict[str, Any] | None = None) -> None:
    """PNG: profit per customer with 95% CIs (and the oracle line), and the learning curves when given."""
    import matplotlib  # lazy: matplotlib is heavy

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy

    ncols = 2 if curves else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    names = list(results)
    stats_ = [mean_ci([m.profit for m in results[n]]) for n in names]
    ax.bar(names, [s[0] for s in stats_], yerr=[s[1] for s in stats_], capsize=4, color="tab:blue")
    ax.axhline(np.mean([m.oracle for m in results[names[0]]]), color="tab:red", linestyle="--", label="oracle")
    ax.set_ylabel("profit per customer (60 days)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    if curves:
        ax2 = axes[0, 1]
        for n, csv in curves.items():
            df = pd.read_csv(csv)
            col = "rollout/episode_return"
            if col in df:
                ax2.plot(df["time/total_timesteps"], df[col], label=n)
        ax2.set_xlabel("timesteps")
        ax2.set_ylabel("training return per customer")
        ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
