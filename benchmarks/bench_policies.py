"""Policy benchmarks: the served journey policy against the best tuned heuristic, the belief-lookahead planner and
the oracle, the bidders against the hindsight LP, and off-policy evaluation against on-policy truth (simulator) and
on Hillstrom.

The journey rows judge ``AME_BENCH_JOURNEY_POLICY`` (default: the servable belief planner the engine ships; a
registered policy by name also works). The bidding table (bidder, linear baselines,
pacing, both auction types) is :mod:`benchmarks.bench_bidding`.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from benchmarks.common import BenchResult
from data.datasets import dataset_path
from environment.belief import parse_planner_name, planner_name
from environment.heuristics import EmailEveryK
from policies.evaluate import JOURNEY_HEURISTICS, journey_suite, mean_ci
from policies.ope_data import hillstrom_ope, simulator_ope
from policies.registry import PolicyRegistry
from policies.slots import SERVED_JOURNEY_POLICY

logger = logging.getLogger(__name__)
AREA = "policies"


def _journey(quick: bool) -> list[BenchResult]:
    """The served journey policy against the best tuned heuristic (paired by seed), the information-limited
    reference (the exact belief-lookahead planner at the same unsubscribe price) and the oracle."""
    name = os.environ.get("AME_BENCH_JOURNEY_POLICY", SERVED_JOURNEY_POLICY)
    planner = parse_planner_name(name)
    if planner is None and name not in PolicyRegistry().names():
        return [BenchResult(AREA, "journey policy profit/customer", float("nan"), "$", "best heuristic", None, ">= +6%", None,
                            f"no registered {name!r}: run `ame train journey` first, or name a belief planner")]
    reference = planner_name(True, planner.unsub_price if planner else 1.0)
    seeds, n = (2, 300) if quick else (10, 1_000)
    res = journey_suite([*JOURNEY_HEURISTICS, reference, name], seeds, n)
    best = max(JOURNEY_HEURISTICS, key=lambda h: np.mean([m.profit for m in res[h]]))
    ours, base, ref = res[name], res[best], res[reference]
    p, hp, rp = (float(np.mean([m.profit for m in r])) for r in (ours, base, ref))
    u, hu = (float(np.mean([m.unsubscribe_rate for m in r])) for r in (ours, base))
    diff, half = mean_ci([a.profit - b.profit for a, b in zip(ours, base, strict=True)])
    share, ci = mean_ci([m.oracle_share for m in ours])
    of_ref, ref_ci = mean_ci([a.profit / b.profit for a, b in zip(ours, ref, strict=True)])
    note = f"{seeds} seeds x {n} customers; best heuristic {best}; paired {diff:+.3f} ± {half:.3f}"
    return [
        BenchResult(AREA, "journey profit/customer", p, "$", best, hp, ">= +6%, paired CI > 0",
                    bool(p >= 1.06 * hp and diff - half > 0), note),
        BenchResult(AREA, "journey unsubscribe rate", u, "share", best, hu, "<= heuristic", bool(u <= hu), note),
        BenchResult(AREA, "journey % of belief lookahead", of_ref, "share", reference, rp, ">= 0.95", bool(of_ref >= 0.95),
                    f"± {ref_ci:.3f}, same unsubscribe price"),
        BenchResult(AREA, "journey % of oracle", float(share), "share", "oracle", 1.0, "reference", None,
                    f"± {ci:.3f}; the oracle sees the hidden state"),
    ]


def _ope(quick: bool) -> list[BenchResult]:
    sim = simulator_ope(EmailEveryK(), n_customers=30_000 if quick else 200_000, seed=0, n_boot=200)
    out = []
    for k in ("snips", "dr"):
        e = sim["estimates"][k]
        out.append(BenchResult(AREA, f"OPE simulator {k}", e.value, "$/customer", "on-policy value", sim["true"], "within 5%",
                               bool(abs(e.value / sim["true"] - 1) <= 0.05), f"CI [{e.ci_low:.3f}, {e.ci_high:.3f}]"))
    h = hillstrom_ope(dataset_path("hillstrom", "hillstrom.csv"), seed=0, n_boot=200 if quick else 1000)
    mens = h["single_arms"]["Mens E-Mail"].value
    none = h["single_arms"]["No E-Mail"].value
    for k in ("snips", "dr"):
        e = h["estimates"][k]
        out.append(BenchResult(AREA, f"OPE Hillstrom personalized {k}", e.value, "$/customer", "best single arm (mens), same half", mens,
                               "",
                               None, f"CI [{e.ci_low:.2f}, {e.ci_high:.2f}]; no e-mail {none:.2f}; full-data mens 1.42, none 0.65"))
    return out


def run(quick: bool = False) -> list[BenchResult]:
    """Journey and OPE figures, each beside its baseline (bidding: :mod:`benchmarks.bench_bidding`)."""
    return _journey(quick) + _ope(quick)


if __name__ == "__main__":
    for r in run(quick="--quick" in __import__("sys").argv):
        logger.warning("%s", r)
        __import__("sys").stdout.write(
            f"{r.name:55s} {r.value:10.4f} {r.unit:10s} vs {r.baseline_name} {r.baseline_value} {r.target} {r.met} {r.note}\n")
