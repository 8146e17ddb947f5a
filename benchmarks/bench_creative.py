"""Creative benchmark: the Thompson test with auto-promotion in the simulator (impressions to find the best of 10
variants in 95% of seeded tests; regret beside uniform A/B splitting over the same impressions), the Open Bandit
sample's learned policy by SNIPS/DR beside the behaviour policy's on-policy click rate, and select_creative's
latency beside a bare store read."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import BenchResult
from data.datasets import dataset_path
from policies.creative.generators import TemplateGenerator
from policies.creative.obd import obd_report
from policies.creative.pipeline import generate_for_test
from policies.creative.serving import select_creative
from policies.creative.simulate import simulate_tests
from policies.creative.store import CreativeStore

AREA = "creative"


def _simulator(quick: bool) -> list[BenchResult]:
    reps = 200 if quick else 1000
    sim = simulate_tests(reps=reps, seed=0)
    n95 = sim.impressions_for(0.95)
    return [
        BenchResult(AREA, f"impressions to promote the best of 10 in 95% of {reps} tests", float(n95 or np.nan), "impressions",
                    "horizon", float(sim.horizon), f"<= {sim.horizon:,}", n95 is not None,
                    f"wrong promotions {sim.wrong_promotions:.1%}; promoted the best by the horizon {sim.found_best_by(sim.horizon):.1%}"),
        BenchResult(AREA, f"regret over {sim.horizon:,} impressions (clicks lost), Thompson + promotion", float(sim.regret_ts.mean()),
                    "clicks",
                    "uniform A/B split", sim.regret_uniform, "< uniform", bool(sim.regret_ts.mean() < sim.regret_uniform)),
    ]


def _obd() -> list[BenchResult]:
    rows = obd_report(dataset_path("open_bandit"), n_boot=500)
    behaviour = next(r for r in rows if r.method == "on-policy" and r.policy.startswith("random"))
    bts = next(r for r in rows if r.method == "on-policy" and r.policy.startswith("Bernoulli"))
    out = []
    for r in rows:
        if r.policy.startswith("learned") and r.method in ("SNIPS", "DR"):
            out.append(BenchResult(AREA, f"OBD {r.policy} CTR by {r.method}", r.value, "CTR", "random on-policy (same half)",
                                   behaviour.value,
                                   "", None, f"95% CI [{r.ci_low:.4f}, {r.ci_high:.4f}]; bts on-policy {bts.value:.4f}"))
    return out


def _latency(quick: bool) -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as folder:
        store = CreativeStore(f"sqlite:///{Path(folder) / 'c.db'}")
        generate_for_test(TemplateGenerator(), store, "email_subject", "vip", n=10, top=3)
        rng = np.random.default_rng(0)
        n = 300 if quick else 2000
        times, bare = [], []
        for _ in range(n):
            t = time.perf_counter()
            store.arms("vip", "email_subject")
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            select_creative("vip", store=store, rng=rng)
            times.append(time.perf_counter() - t)
        store.close()
    p50, p99 = np.percentile(np.array(times) * 1e3, [50, 99])
    return [BenchResult(AREA, "select_creative latency p50 (3 arms, 2,000 draws)", float(p50), "ms", "bare store read p50",
                        float(np.percentile(np.array(bare) * 1e3, 50)), "< 5 ms", bool(p50 < 5), f"p99 {p99:.2f} ms")]


def run(quick: bool = False) -> list[BenchResult]:
    """Every creative figure with its baseline from the same run."""
    return _simulator(quick) + _obd() + _latency(quick)


if __name__ == "__main__":
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title="creative")
    for col in ("benchmark", "value", "baseline", "target", "met", "note"):
        table.add_column(col)
    for r in run(quick="--quick" in sys.argv):
        base = "-" if r.baseline_value is None else f"{r.baseline_name}: {r.baseline_value:,.4g}"
        table.add_row(r.name, f"{r.value:,.4g} {r.unit}", base, r.target, "" if r.met is None else str(r.met), r.note)
    Console().print(table)
