"""Simulator benchmarks: the vectorized journey env against the single-env loop, and the vectorized auction env,
each figure measured beside its baseline in the same run."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import BenchResult
from environment.config import load_market_config
from environment.journey import JourneyEnv
from environment.vector import AuctionVectorEnv, JourneyVectorEnv


def _journey_vector(n: int, steps: int) -> float:
    env = JourneyVectorEnv(n, load_market_config())
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 6, size=(steps, n))
    env.step(actions[0])  # warm-up
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return n * steps / (time.perf_counter() - start)


def _journey_single(steps: int) -> float:
    env = JourneyEnv(load_market_config())
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 6, size=steps)
    start = time.perf_counter()
    for a in actions:
        *_, truncated, _ = env.step(int(a))
        if truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def _auctions(n_env: int, per_day: int, days: int, auction_type: str) -> tuple[float, float]:
    """Auctions per second over whole days (generation of the days' opportunities included), and the same
    auctions resolved one campaign at a time (the single env's multiplier mode: a batch of one)."""
    env = AuctionVectorEnv(n_env, opportunities_per_day=per_day, days=days, auction_type=auction_type)
    env.reset(seed=0)
    action = np.full((n_env, 1), 0.4, dtype=np.float32)
    total = 0.0
    start = time.perf_counter()
    for _ in range(days * env.model.slots_per_day):
        *_, info = env.step(action)
        total += info["opportunities"].sum()
    vector_rate = total / (time.perf_counter() - start)
    single = AuctionVectorEnv(1, opportunities_per_day=per_day // 10, days=1, auction_type=auction_type)
    single.reset(seed=0)
    total = 0.0
    start = time.perf_counter()
    for _ in range(single.model.slots_per_day):
        *_, info = single.step(action[:1])
        total += info["opportunities"].sum()
    return vector_rate, total / (time.perf_counter() - start)


def run(quick: bool = False) -> list[BenchResult]:
    n = 10_000
    steps = 60 if quick else 180
    vector = _journey_vector(n, steps)
    single = _journey_single(1_000 if quick else 3_000)
    per_day = 250_000 if quick else 1_000_000
    auctions, auctions_small = _auctions(4, per_day, 1 if quick else 2, "second_price")
    first_price, _ = _auctions(4, per_day, 1, "first_price")
    return [
        BenchResult("environment", f"journey vector env, N={n:,} customers", vector, "customer-steps/s",
                    "single JourneyEnv loop (gymnasium step)", single, ">= 1,000,000/s", vector >= 1_000_000,
                    f"{vector / single:,.0f}x the single env"),
        BenchResult("environment", f"auction vector env, 4 campaigns x {per_day:,} auctions/day, second price",
                    auctions, "auctions/s", f"one campaign x {per_day // 10:,}/day (batch of one)", auctions_small,
                    ">= 2,000,000/s", auctions >= 2_000_000, "day generation included"),
        BenchResult("environment", "auction vector env, first price", first_price, "auctions/s",
                    "second price", auctions, ">= 2,000,000/s", first_price >= 2_000_000),
    ]


if __name__ == "__main__":
    from rich.console import Console
    from rich.table import Table

    table = Table(title="environment benchmarks")
    for col in ("name", "value", "unit", "baseline", "baseline value", "target", "met", "note"):
        table.add_column(col)
    for r in run():
        table.add_row(r.name, f"{r.value:,.0f}", r.unit, r.baseline_name,
                      "" if r.baseline_value is None else f"{r.baseline_value:,.0f}", r.target, str(r.met), r.note)
    Console().print(table)
