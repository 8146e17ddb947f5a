"""Policy benchmarks (issue 4): the trained journey policy against the best tuned heuristic and the oracle, the
bidders against the hindsight LP, and off-policy evaluation against on-policy truth (simulator) and on Hillstrom.

The journey rows need a registered policy (``AME_BENCH_JOURNEY_POLICY``, default ``journey-ppo``, trained with
``ame train journey``); without one they are skipped with a note. The bidding table (bidder, linear baselines,
pacing, both auction types) is :mod:`benchmarks.bench_bidding`.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from benchmarks.common import BenchResult
from data.datasets import dataset_path
from environment.heuristics import EmailEveryK
from policies.evaluate import JOURNEY_HEURISTICS, journey_suite, mean_ci
from policies.ope_data import hillstrom_ope, simulator_ope
from policies.registry import PolicyRegistry

logger = logging.getLogger(__name__)
AREA = "policies"


def _journey(quick: bool) -> list[BenchResult]:
    name = os.environ.get("AME_BENCH_JOURNEY_POLICY", "journey-ppo")
    if name not in PolicyRegistry().names():
        return [BenchResult(AREA, "journey policy profit/customer", float("nan"), "$", "best heuristic", None, ">= +10%", None,
                            f"no registered {name!r}: run `ame train journey` first")]
    seeds, n = (2, 500) if quick else (10, 1_000)
    res = journey_suite([*JOURNEY_HEURISTICS, "belief_planner", name], seeds, n)
    best = max(JOURNEY_HEURISTICS, key=lambda h: np.mean([m.profit for m in res[h]]))
    ours, base = res[name], res[best]
    p, hp = np.mean([m.profit for m in ours]), np.mean([m.profit for m in base])
    u, hu = np.mean([m.unsubscribe_rate for m in ours]), np.mean([m.unsubscribe_rate for m in base])
    share, ci = mean_ci([m.oracle_share for m in ours])
    planner, planner_ci = mean_ci([m.oracle_share for m in res["belief_planner"]])
    gap = np.mean([(a.profit - b.profit) / (a.oracle - b.profit) for a, b in zip(ours, base, strict=True)])
    note = f"{seeds} seeds x {n} customers; best heuristic {best}"
    return [
        BenchResult(AREA, "journey profit/customer", float(p), "$", best, float(hp), ">= +10%", bool(p >= 1.1 * hp), note),
        BenchResult(AREA, "journey unsubscribe rate", float(u), "share", best, float(hu), "<= heuristic", bool(u <= hu), note),
        BenchResult(AREA, "journey % of oracle", float(share), "share", "oracle", 1.0, ">= 0.85", bool(share >= 0.85), f"± {ci:.3f}"),
        BenchResult(AREA, "journey gap closed", float(gap), "share", best, 0.0, "", None, "(policy-heur)/(oracle-heur)"),
        BenchResult(AREA, "journey belief planner (QMDP) % of oracle", float(planner), "share", "oracle", 1.0, "reference",
                    None, f"± {planner_ci:.3f}; the engine's information with the true model, no learning"),
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
