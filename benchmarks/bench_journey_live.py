"""The served journey policy live, in the closed loop: over seeds, the journey agent serves the policy to every
customer of a seeded market, and again the best tuned heuristic to the same customers of the same market (the
market draws the same random numbers whatever is decided, so the two runs are paired). Profit per customer and the
unsubscribe share are read from the log alone (:func:`policies.ope_log.customer_outcomes`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from rich.progress import Progress

from agents.journey import JourneyAgent, JourneyConfig
from ame.closed_loop import in_process_agents, run_closed_loop
from benchmarks.common import BenchResult
from data.log import open_log
from environment.config import load_market_config
from environment.stream import SimulatedMarket
from policies.evaluate import mean_ci
from policies.ope_log import customer_outcomes
from policies.slots import SERVED_JOURNEY_POLICY, builtin_journey_policy

AREA = "journey_live"
BASELINE = "offer_every_k"
FIRST_SEED = 10_000  # the seeds `ame evaluate` and bench_policies judge on, so live and prediction share customers


def live(policy_name: str, seed: int, customers: int, days: int, workdir: Path) -> tuple[float, float]:
    """(profit per customer, share of customers who unsubscribed) of the closed loop serving ``policy_name`` to
    every customer, from the log."""
    config = load_market_config()
    run = workdir / f"{policy_name}-{seed}"
    log_url = f"sqlite:///{run}.db"
    agent = JourneyAgent(JourneyConfig(holdout_share=0.0), policy=builtin_journey_policy(policy_name))
    log = open_log(log_url)
    try:
        with in_process_agents(agent, log_url, run, shards=1) as engine:
            run_closed_loop(log, SimulatedMarket(customers, days, seed, config), engine, days)
        outcomes = customer_outcomes(log, config.journey)
    finally:
        log.close()
    return float(np.mean([o.profit for o in outcomes])), float(np.mean([o.unsubscribes > 0 for o in outcomes]))


def run(quick: bool = False) -> list[BenchResult]:
    name = os.environ.get("AME_BENCH_JOURNEY_POLICY", SERVED_JOURNEY_POLICY)
    seeds, customers, days = (2, 300, 20) if quick else (10, 1_000, 60)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Progress() as progress:
        task = progress.add_task(f"closed loop, {name} and {BASELINE} on the same markets", total=2 * seeds)
        for seed in range(FIRST_SEED, FIRST_SEED + seeds):
            for policy in (name, BASELINE):
                rows.append(live(policy, seed, customers, days, Path(tmp)))
                progress.advance(task)
    served, base = np.array(rows[0::2]), np.array(rows[1::2])
    diff, half = mean_ci(served[:, 0] - base[:, 0])
    note = f"{seeds} seeds x {customers:,} customers x {days} days, the same markets; paired {diff:+.3f} ± {half:.3f}"
    return [
        BenchResult(AREA, f"live profit/customer, {name}", float(served[:, 0].mean()), "$", f"{BASELINE} (same markets)",
                    float(base[:, 0].mean()), ">= +6%, paired CI > 0",
                    bool(served[:, 0].mean() >= 1.06 * base[:, 0].mean() and diff - half > 0), note),
        BenchResult(AREA, f"live unsubscribe share, {name}", float(served[:, 1].mean()), "share",
                    f"{BASELINE} (same markets)", float(base[:, 1].mean()), "<= baseline",
                    bool(served[:, 1].mean() <= base[:, 1].mean()), note),
    ]
