"""Agents benchmark: events/s through the scoring and journey agents on Ray (2 CPUs), the journey agent's decisions/s
at the daily tick, append-to-decision lag at a steady 5,000 events/s (the journey agent deciding on engagement
events), and the bare log read rate measured in the same run as the baseline."""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from agents.journey import JourneyAgent, JourneyConfig
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor, tick_event
from benchmarks.common import BenchResult
from data.log import open_log
from data.synthetic import synthetic_dicts
from policies.slots import SERVED_JOURNEY_POLICY, builtin_journey_policy

log = logging.getLogger(__name__)
AREA = "agents"
ENGAGEMENT = frozenset({"page_view", "content_download", "email_open", "email_click", "sms_click", "ad_click"})


def _bare_read_rate(log_) -> float:
    start, position, n = time.perf_counter(), 0, 0
    while True:
        batch = log_.read(position, 2_000)
        if batch.next_after == position:
            break
        n += len(batch)
        position = batch.next_after
    return n / (time.perf_counter() - start)


def _throughput(folder: Path, n: int, shards: int) -> tuple[float, float, int]:
    url = f"sqlite:///{folder / 'throughput.db'}"
    log_ = open_log(url)
    stream = list(synthetic_dicts(n, customers=max(1_000, n // 20), seed=11))
    for i in range(0, n, 5_000):
        log_.append(stream[i : i + 5_000])
    bare = _bare_read_rate(log_)
    sup = AgentSupervisor(url, folder / "state-throughput", [ScoringAgent(), JourneyAgent()], shards=shards,
                          namespace="bench-throughput", batch_size=5_000)
    sup.up(start=False)
    try:
        start = time.perf_counter()
        sup.start()
        if not sup.wait_caught_up(timeout_s=600, settle_s=0.05):
            raise RuntimeError("the agents did not catch up within 10 minutes")
        elapsed = time.perf_counter() - start
        outputs = log_.head() - n
    finally:
        sup.down()
    return n / elapsed, bare, outputs


def _lag(folder: Path, rate: float, seconds: float, shards: int) -> tuple[float, float, int]:
    url = f"sqlite:///{folder / 'lag.db'}"
    log_ = open_log(url)
    n = int(rate * seconds)
    stream = list(synthetic_dicts(n, customers=5_000, seed=12, source="lagbench"))
    on_events = JourneyAgent(JourneyConfig(decide_on=ENGAGEMENT))  # decisions on events, not only at the tick
    sup = AgentSupervisor(url, folder / "state-lag", [ScoringAgent(), on_events], shards=shards, namespace="bench-lag",
                          batch_size=2_000, poll_interval_s=0.005)
    sup.up()
    try:
        chunk = max(1, int(rate / 100))  # 100 appends a second
        start = time.perf_counter()
        for k, i in enumerate(range(0, n, chunk)):
            log_.append(stream[i : i + chunk])
            wait = start + (k + 1) / 100 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        sup.wait_caught_up(timeout_s=120, settle_s=0.1)
    finally:
        sup.down()
    recorded: dict[str, int] = {}
    lags: list[float] = []
    position = 0
    while True:
        batch = log_.read(position, 20_000)
        if batch.next_after == position:
            break
        for e in batch.events:
            if e.source == "lagbench":
                recorded[e.event_id] = e.recorded_at_us
            elif e.source == "agent:journey" and e.causation_id in recorded:
                lags.append((e.recorded_at_us - recorded[e.causation_id]) / 1000)
        position = batch.next_after
    if not lags:
        raise RuntimeError("no journey decisions were made during the lag run")
    return float(np.percentile(lags, 50)), float(np.percentile(lags, 99)), len(lags)


def _tick_rate(folder: Path, n: int, customers: int, shards: int, agent: JourneyAgent | None = None,
               name: str = "tick") -> tuple[float, int]:
    """Decisions/s of the journey agent at one daily tick for every customer it holds (after folding ``n`` events)."""
    url = f"sqlite:///{folder / f'{name}.db'}"
    log_ = open_log(url)
    stream = list(synthetic_dicts(n, customers=customers, seed=13, source="tickbench"))
    for i in range(0, n, 5_000):
        log_.append(stream[i : i + 5_000])
    sup = AgentSupervisor(url, folder / f"state-{name}", [agent or JourneyAgent()], shards=shards, namespace=f"bench-{name}",
                          batch_size=5_000)
    sup.up()
    try:
        if not sup.wait_caught_up(timeout_s=600, settle_s=0.05):
            raise RuntimeError("the journey agent did not fold the stream within 10 minutes")
        before = log_.head()
        start = time.perf_counter()
        log_.append([tick_event(date(2027, 1, 1))])
        if not sup.wait_caught_up(timeout_s=600, settle_s=0.05):
            raise RuntimeError("the journey agent did not decide the tick within 10 minutes")
        elapsed = time.perf_counter() - start
        decisions = log_.head() - before - 1
    finally:
        sup.down()
    return decisions / elapsed, decisions


def run(quick: bool = False) -> list[BenchResult]:
    """Throughput on a backlog (2 shards per agent on a 2-CPU Ray cluster) and lag at 5,000 events/s."""
    import ray  # lazy: Ray is heavy

    n = 50_000 if quick else 200_000
    seconds = 5.0 if quick else 20.0
    shards = 2
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="ame-bench-agents-") as tmp:
            folder = Path(tmp)
            rate, bare, outputs = _throughput(folder, n, shards)
            customers = 5_000 if quick else 20_000
            tick_rate, tick_decisions = _tick_rate(folder, n // 4, customers, shards)
            with_belief, _ = _tick_rate(folder, n // 4, customers, shards, JourneyAgent(JourneyConfig(log_belief=True)),
                                        "tick-belief")
            planner = JourneyAgent(policy=builtin_journey_policy(SERVED_JOURNEY_POLICY))
            planner_rate, _ = _tick_rate(folder, n // 4, customers, shards, planner, "tick-planner")
            p50, p99, decisions = _lag(folder, 5_000.0, seconds, shards)
    finally:
        if started_here:
            ray.shutdown()
    return [
        BenchResult(AREA, f"scoring + journey end to end, {n:,} events, {shards} shards each, 2 CPUs", rate, "events/s",
                    "bare log read (same log, same run)", bare, ">= 20,000 events/s", rate >= 20_000,
                    f"{outputs:,} output events appended"),
        BenchResult(AREA, f"journey decisions at the daily tick, {shards} shards, 2 CPUs", tick_rate, "decisions/s",
                    "bare log read (same run)", bare, "-", None, f"{tick_decisions:,} customers decided on one tick"),
        BenchResult(AREA, "the same tick, the belief kept and logged (log_belief on)", with_belief, "decisions/s",
                    "log_belief off, the default (same run)", tick_rate, "-", None,
                    "a first tick: each belief catches up one horizon"),
        BenchResult(AREA, f"the same tick, serving {SERVED_JOURNEY_POLICY}", planner_rate, "decisions/s",
                    "offer_every_k (same run)", tick_rate, "-", None, "the belief planner's lookahead per customer"),
        BenchResult(AREA, "append-to-decision lag p50 at 5,000 events/s", p50, "ms", "-", None, "-", None,
                    f"{decisions:,} journey decisions"),
        BenchResult(AREA, "append-to-decision lag p99 at 5,000 events/s", p99, "ms", "-", None, "< 500 ms", p99 < 500),
    ]


if __name__ == "__main__":
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title="agents")
    for col in ("benchmark", "value", "baseline", "target", "met", "note"):
        table.add_column(col)
    for r in run(quick="--quick" in sys.argv):
        baseline = "-" if r.baseline_value is None else f"{r.baseline_name}: {r.baseline_value:,.0f}"
        table.add_row(r.name, f"{r.value:,.1f} {r.unit}", baseline, r.target, str(r.met), r.note)
    Console().print(table)
