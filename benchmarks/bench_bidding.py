"""Bidding benchmark (issue 4): the bidder beside linear bidding (previous day, hindsight), dual pacing and its own
controller alone, as a share of the hindsight LP, at budgets 1/2, 1/8 and 1/32 of the spend that wins every
auction, in second and first price, over seeds (mean ± 95% t-interval).

It also measures what planning from the bid sketch costs (the bounded summary the bidding agent folds, so that
the served controller is the trained one): the controller as served beside the same controller planning each
day from every auction of yesterday (the complete log only the simulator has), on the same markets.

    python -m benchmarks.bench_bidding [--seeds 10] [--quick] [--policy NAME]

The bidder is the registered ``AME_BENCH_BIDDING_POLICY`` (default ``bidding-residual-sac``, trained with
``ame train bidder``); without one its rows are left out with a note. Markets use seeds 10000.. (the training
runs use other seeds), 4 campaigns x 100,000 auctions a day x 7 days.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks.common import BenchResult
from environment.auction_market import resolve_auctions
from environment.bounds import hindsight_lp
from environment.config import load_market_config
from policies.bid_pacer import MIN_MULTIPLIER, DayPlan, smooth_curve
from policies.bidder import ProfilePacing
from policies.evaluate import BIDDING_BASELINES, bidding_suite, budget_config, mean_ci, run_bidding, win_all_spend
from policies.registry import PolicyRegistry

AREA = "policies"
BUDGETS = (1 / 2, 1 / 8, 1 / 32)
AUCTIONS = ("second_price", "first_price")
CONTROLLER = "profile_pacing"
SKETCH_BUDGETS = (1 / 8, 1 / 32)


def bidder_name() -> str:
    return os.environ.get("AME_BENCH_BIDDING_POLICY", "bidding-residual-sac")


def _policies(bidder: str | None) -> list[str]:
    return [*BIDDING_BASELINES, CONTROLLER, *([bidder] if bidder else [])]


def bidding_tables(seeds: int, opportunities: int = 100_000, bidder: str | None = None, registry: str | None = None) -> dict[str, Any]:
    """``{auction_type: bidding_suite results}`` for every policy, budget and auction type."""
    return {
        auction: bidding_suite(_policies(bidder), seeds, BUDGETS, auction, opportunities_per_day=opportunities, registry=registry)
        for auction in AUCTIONS
    }


def full_log_pacing() -> Any:
    """A :class:`policies.bidder.ProfilePacing` whose :meth:`day_plan` is the exact LP multiplier and replayed
    spend curve on yesterday's complete auctions (what the controller did before it planned from the sketch)."""
    class _FullLog(ProfilePacing):
        def day_plan(self, market: Any) -> DayPlan | None:
            day, facts, spec = market.yesterday, market.facts, market.spec
            if day is None or self._state is None or not (self._state.day < market.day).any():
                return None
            n, slots = market.n_env, spec.slots_per_day
            log_m, curve = np.zeros(n), np.zeros((n, slots))
            for e in range(n):
                idx = np.flatnonzero(day.env == e)
                price = np.maximum(day.competing[idx], spec.reserve_price)
                lp = hindsight_lp(day.estimate[idx], price, float(facts.budget[e]))
                mult = float(np.clip(1.0 / lp.threshold if np.isfinite(lp.threshold) and lp.threshold > 0 else spec.max_multiplier,
                                     MIN_MULTIPLIER, spec.max_multiplier))
                bids = np.minimum(mult * day.estimate[idx], spec.max_bid)
                _, cost = resolve_auctions(bids, day.competing[idx], np.zeros(len(idx), np.int64), np.array([np.inf]),
                                           spec.reserve_price, spec.auction_type == "first_price")
                spend = np.bincount(day.slot[idx], weights=cost, minlength=slots)
                log_m[e], curve[e] = np.log(mult), spend / spend.sum() if spend.sum() > 0 else spec.volume
            _, wins, opportunities = facts.today
            return DayPlan(facts.day.copy(), np.ones(n, bool), log_m, smooth_curve(curve), wins / np.maximum(opportunities, 1.0))

    return _FullLog(name="profile_pacing_full_log")


def sketch_cost(seeds: int, opportunities: int = 100_000) -> dict[float, tuple[list[float], list[float]]]:
    """{budget: (LP shares planning from the sketch, from the complete log)} in second price, same markets."""
    base = load_market_config()
    over = {"opportunities_per_day": opportunities, "days": 7, "auction_type": "second_price"}
    out: dict[float, tuple[list[float], list[float]]] = {f: ([], []) for f in SKETCH_BUDGETS}
    for seed in range(10_000, 10_000 + seeds):
        spend_all = win_all_spend(base, 4, seed, **over)
        for frac in SKETCH_BUDGETS:
            cfg = budget_config(base, frac * spend_all, "second_price")
            for k, policy in enumerate((ProfilePacing(), full_log_pacing())):
                out[frac][k].append(run_bidding(policy, cfg, 4, seed, frac, **over).lp_share)
    return out


def sketch_rows(cost: dict[float, tuple[list[float], list[float]]]) -> list[BenchResult]:
    """The controller as served (planning from the sketch) beside the same controller on the complete log."""
    rows = []
    for frac, (sketch, full) in cost.items():
        s, f = float(np.mean(sketch)), float(np.mean(full))
        rows.append(BenchResult(AREA, f"controller from the bid sketch 1/{round(1 / frac)} % of LP (second price)", s, "of LP",
                                "same controller on the complete log", f, "report", None,
                                f"ratio {s / f:.4f}; paired difference {_ci([a - b for a, b in zip(sketch, full, strict=True)])} points"))
    return rows


def _ci(values: list[float], scale: float = 100.0) -> str:
    m, h = mean_ci(values)
    return f"{scale * m:.1f} ± {scale * h:.1f}" if np.isfinite(h) else f"{scale * m:.1f}"


def table_rows(results: dict[tuple[str, float], list[Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(budget, policy, % of LP, spend % of budget, overspent runs, value vs previous-day linear %) per row."""
    rows = []
    for frac in BUDGETS:
        base = results.get(("linear_previous_day", frac))
        for (name, f), ms in results.items():
            if f != frac:
                continue
            lift = "" if base is None else _ci([m.value / b.value - 1 for m, b in zip(ms, base, strict=True)])
            rows.append((f"1/{round(1 / frac)}", name, _ci([m.lp_share for m in ms]), _ci([m.spend_share for m in ms]),
                         f"{sum(m.overspent for m in ms)}/{len(ms)}", lift))
    return rows


def print_tables(tables: dict[str, Any], seeds: int, out: Any = sys.stdout) -> None:
    head = ("budget", "policy", "% of hindsight LP", "spend % of budget", "overspent", "value vs prev-day linear %")
    for auction, results in tables.items():
        out.write(f"\nbidding, {auction}: {seeds} seeds x 4 campaigns x 7 days (mean ± 95% CI over seeds)\n")
        rows = [head, *table_rows(results)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for r in rows:
            out.write("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) + "\n")


def targets(tables: dict[str, Any], bidder: str) -> list[BenchResult]:
    """The issue's must-show figures for ``bidder`` (second price), plus first price reported."""
    second = tables["second_price"]

    def share(name: str, frac: float, auction: str = "second_price") -> float:
        return float(np.mean([m.lp_share for m in tables[auction][(name, frac)]]))

    out = []
    for frac, goal in ((1 / 8, 0.97), (1 / 32, 0.95)):
        s = share(bidder, frac)
        out.append(BenchResult(AREA, f"bidder 1/{round(1 / frac)} % of LP (second price)", s, "of LP", "linear_hindsight",
                               share("linear_hindsight", frac), f">= {goal:.0%}", bool(s >= goal),
                               f"dual pacing {share('dual_pacing', frac):.3f}"))
    ours = second[(bidder, 1 / 32)]
    prev = second[("linear_previous_day", 1 / 32)]
    lift = float(np.mean([m.value for m in ours]) / np.mean([m.value for m in prev]) - 1)
    out.append(BenchResult(AREA, "bidder 1/32 value vs previous-day linear", lift, "lift", "linear_previous_day", 0.0, ">= +5%",
                           bool(lift >= 0.05), ""))
    spends = [m.spend_share for auction in tables.values() for f in BUDGETS for m in auction[(bidder, f)]]
    over = sum(m.overspent for auction in tables.values() for f in BUDGETS for m in auction[(bidder, f)])
    out.append(BenchResult(AREA, "bidder spend share of budget (min over runs)", float(min(spends)), "share", "", None, "0.95-1.00",
                           bool(min(spends) >= 0.95 and max(spends) <= 1.0 + 1e-9), f"max {max(spends):.4f}; overspent runs {over}"))
    for frac in BUDGETS:
        out.append(BenchResult(AREA, f"bidder 1/{round(1 / frac)} % of LP (first price)", share(bidder, frac, "first_price"), "of LP",
                               "linear_hindsight", share("linear_hindsight", frac, "first_price"), "report", None, ""))
    return out


def run(quick: bool = False) -> list[BenchResult]:
    """The must-show rows for the registered bidder (or the controller alone when none is registered)."""
    bidder = bidder_name() if bidder_name() in PolicyRegistry().names() else None
    seeds, opp = (2, 20_000) if quick else (10, 100_000)
    tables = bidding_tables(seeds, opp, bidder)
    print_tables(tables, seeds)
    rows = targets(tables, bidder or CONTROLLER)
    if bidder is None:
        rows = [replace(r, note=f"no registered {bidder_name()!r}: controller alone; {r.note}") for r in rows]
    return rows + sketch_rows(sketch_cost(seeds, opp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="2 seeds x 20,000 auctions a day")
    parser.add_argument("--policy", default=None, help="registered bidder (default AME_BENCH_BIDDING_POLICY or bidding-residual-sac)")
    parser.add_argument("--registry", default=None)
    args = parser.parse_args()

    name = args.policy or bidder_name()
    bidder = name if name in PolicyRegistry(args.registry).names() else None
    if bidder is None:
        sys.stdout.write(f"no registered {name!r} (train it: `ame train bidder`); showing the controller alone\n")
    seeds, opp = (2, 20_000) if args.quick else (args.seeds, args.opportunities)
    start = time.perf_counter()
    tables = bidding_tables(seeds, opp, bidder, args.registry)
    print_tables(tables, seeds)
    sys.stdout.write(f"\ntargets ({bidder or CONTROLLER}), {time.perf_counter() - start:.0f} s:\n")
    for r in targets(tables, bidder or CONTROLLER) + sketch_rows(sketch_cost(seeds, opp)):
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        sys.stdout.write(f"  {r.name:60s} {r.value:8.4f}  target {r.target:10s} met {met:3s}  "
                         f"({r.baseline_name} {r.baseline_value}) {r.note}\n")


if __name__ == "__main__":
    main()
