"""The served journey policy live, in the closed loop: over seeds, the journey agent serves the belief planner to
treated customers and the best tuned heuristic to a holdout of half the customers; profit and unsubscribes are
read from the log alone (:func:`policies.lift.live_lift`). The baseline is the heuristic on the other half of the
same market, the same days."""

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
from policies.lift import live_lift
from policies.slots import SERVED_JOURNEY_POLICY, builtin_journey_policy

AREA = "journey_live"
HOLDOUT = "offer_every_k"


def _one_seed(policy_name: str, seed: int, customers: int, days: int, workdir: Path) -> tuple[float, float, float, float]:
    """(treated profit, holdout profit, treated unsubscribe share, holdout unsubscribe share) per customer."""
    config = load_market_config()
    log_url = f"sqlite:///{workdir / f'events-{seed}.db'}"
    agent = JourneyAgent(JourneyConfig(holdout_share=0.5, holdout_policy=HOLDOUT),
                         policy=builtin_journey_policy(policy_name))
    log = open_log(log_url)
    try:
        with in_process_agents(agent, log_url, workdir / f"agents-{seed}", shards=1) as engine:
            run_closed_loop(log, SimulatedMarket(customers, days, seed, config), engine, days)
        lift = live_lift(log, config.journey)
    finally:
        log.close()
    return (lift.treated.profit.value, lift.holdout.profit.value, lift.treated.unsubscribe.value,
            lift.holdout.unsubscribe.value)


def run(quick: bool = False) -> list[BenchResult]:
    name = os.environ.get("AME_BENCH_JOURNEY_POLICY", SERVED_JOURNEY_POLICY)
    seeds, customers, days = (2, 300, 20) if quick else (10, 1_000, 60)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Progress() as progress:
        task = progress.add_task(f"closed loop, {name} against {HOLDOUT}", total=seeds)
        for seed in range(20_000, 20_000 + seeds):
            rows.append(_one_seed(name, seed, customers, days, Path(tmp)))
            progress.advance(task)
    treated, held, unsub_t, unsub_h = (np.array(c) for c in zip(*rows, strict=True))
    diff, half = mean_ci(treated - held)
    note = (f"{seeds} seeds x {customers} customers x {days} days, half held out; paired by seed {diff:+.3f} ± {half:.3f}")
    return [
        BenchResult(AREA, "live profit/customer", float(treated.mean()), "$", f"{HOLDOUT} (holdout)", float(held.mean()),
                    ">= +6%, CI > 0", bool(treated.mean() >= 1.06 * held.mean() and diff - half > 0), note),
        BenchResult(AREA, "live unsubscribe share", float(unsub_t.mean()), "share", f"{HOLDOUT} (holdout)",
                    float(unsub_h.mean()), "<= holdout", bool(unsub_t.mean() <= unsub_h.mean()), note),
    ]
