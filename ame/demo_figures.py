"""The demo's figures: the policies in the simulator, learning curves, the live bidding agent's pacing, the score
drift, the campaign mart, and the summary the demo prints and writes with ``--json``."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from rich.progress import Progress
from rich.table import Table

from ame.closed_loop_bid import DAY_US, START_DAY, CampaignDay
from ame.parity import START
from ame.report import COMPARISON_HEADERS, Estimate, LearningCurve, PolicyRow, ScoreSample, ThreeNumbers, comparison_rows
from ame.three_numbers import ThreeNumbers as Numbers
from data.log.base import replay_all
from data.warehouse import open_warehouse
from policies.evaluate import JOURNEY_HEURISTICS, mean_ci, resolve_policy, run_journey
from policies.registry import PolicyRegistry
from policies.scoring.drift import numeric_bins, numeric_shares, psi, status_of

logger = logging.getLogger(__name__)
BASELINE = "email_every_k"  # the agents' holdout policy: what the others are compared with


def _trained_journey_policies(registry: Any) -> list[str]:
    names = []
    for name in registry.names():
        try:
            if registry.metadata(name).task == "journey":
                names.append(name)
        except Exception:  # noqa: BLE001 - a broken entry is skipped, not fatal to the demo
            logger.warning("policy %s skipped: unreadable metadata", name)
    return names


def evaluate_policies(config: Any, registry: Path, progress: Progress | None = None) -> tuple[list[PolicyRow], str]:
    """Every available journey policy on the same seeded simulated customers (60-day episodes): revenue,
    purchases, spend (channel cost and discounts), unsubscribes per 1,000 customers, profit per customer."""
    trained = _trained_journey_policies(PolicyRegistry(registry))
    names = [BASELINE] + [n for n in JOURNEY_HEURISTICS if n != BASELINE] + trained
    task = progress.add_task("simulator evaluation", total=len(names) * config.eval_seeds) if progress else None
    rows: list[PolicyRow] = []
    n = config.eval_customers
    for name in names:
        policy = resolve_policy(name, str(registry))
        runs = []
        for seed in range(10_000 + config.seed, 10_000 + config.seed + config.eval_seeds):
            runs.append(run_journey(policy, None, n, seed))
            if progress is not None and task is not None:
                progress.advance(task)
        profit, ci = mean_ci([m.profit for m in runs])
        rows.append(PolicyRow(
            policy=name, source="sim trained" if name in trained else "sim",
            revenue=1_000 * float(np.mean([m.revenue for m in runs])),
            conversions=1_000 * float(np.mean([m.purchases for m in runs])),
            spend=1_000 * float(np.mean([m.cost for m in runs])),
            unsubscribes=1_000 * float(np.mean([m.unsubscribes for m in runs])),
            profit=profit, profit_ci=ci, baseline=name == BASELINE))
    trained_note = f"Trained: {', '.join(trained)}." if trained else "No trained journey policy: tuned heuristics only."
    note = (f"Simulator rows: per 1,000 customers over a 60-day episode, mean of {config.eval_seeds} seeds of "
            f"{n:,} customers (the same customers for every policy); spend = channel cost + discounts; profit per "
            f"customer with its 95% CI. {trained_note}")
    return rows, note


def learning_curves(registry_root: Path) -> list[LearningCurve]:
    registry = PolicyRegistry(registry_root)
    curves = []
    for name in registry.names():
        for version in registry.versions(name):
            path = registry.root / name / version / "progress.csv"
            if not path.is_file():
                continue
            frame = pd.read_csv(path)
            metric = next((m for m in ("rollout/ep_rew_mean", "rollout/episode_return") if m in frame), None)
            if metric is None or "time/total_timesteps" not in frame:
                continue
            frame = frame[["time/total_timesteps", metric]].dropna()
            if len(frame):
                curves.append(LearningCurve(f"{name} {version}", frame["time/total_timesteps"].to_numpy(),
                                            frame[metric].to_numpy(), metric))
    return curves


def live_pacing(log: Any, campaigns: list[str], budget: float, slots: int) -> tuple[dict[str, np.ndarray], str]:
    """Each campaign's cumulative share of the daily budget after each slot of the last day, from the log's
    ``auction_result`` events (what the live bidding agent and /v1/bid spent)."""
    spend: dict[str, dict[int, np.ndarray]] = {}
    for e in replay_all(log, ["auction_result"]):
        p = orjson.loads(e.properties_json)
        if p["campaign_id"] in campaigns and p.get("won"):
            day, slot = divmod(e.occurred_at_us * slots // DAY_US, slots)
            spend.setdefault(p["campaign_id"], {}).setdefault(int(day), np.zeros(slots))[int(slot)] += float(p["price_paid"] or 0.0)
    out = {}
    for campaign, days in spend.items():
        last = max(days)
        out[campaign] = np.cumsum(days[last]) / budget
    shown = max((max(d) for d in spend.values()), default=START_DAY) - START_DAY
    note = (f"The demo's ad campaigns on day {shown}, bidding what /v1/bid serves from the live bidding agent's record "
            f"(the pacing controller), {slots} slots a day; cumulative spend as a share of the daily budget "
            f"({budget:,.2f}), read from the log's auction_result events. The dotted line is the budget.")
    return out, note


def score_samples(warehouse_url: str, days: int) -> tuple[list[ScoreSample], str]:
    """Each customer's latest score (0-100) at the middle of the simulated days against at the end, per model."""
    half = max(days // 2, 1)
    split = (START + timedelta(days=half)).strftime("%Y-%m-%d %H:%M:%S")
    store = open_warehouse(warehouse_url)
    score = "TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE)"
    latest = ("SELECT score_model, arg_max({score}, occurred_at) AS score FROM {ds}.raw_events "
              "WHERE event_type = 'score_updated' {where} GROUP BY score_model, customer_id")
    try:
        early = store.query(latest.format(score=score, ds=store.dataset, where=f"AND occurred_at < TIMESTAMP '{split}'")).rows
        end = store.query(latest.format(score=score, ds=store.dataset, where="")).rows
    finally:
        store.close()
    out = []
    for model in sorted({r[0] for r in end if r[0]}):
        ref = np.array([r[1] for r in early if r[0] == model and r[1] is not None], dtype=np.float64)
        rec = np.array([r[1] for r in end if r[0] == model and r[1] is not None], dtype=np.float64)
        if ref.size < 10 or rec.size < 10:
            continue
        edges = numeric_bins(ref)
        value = psi(numeric_shares(ref, edges), numeric_shares(rec, edges))
        out.append(ScoreSample(model, ref, rec, value, status_of(value), f"after day {half}", f"after day {days}"))
    note = ("Each customer's latest score from the scoring agent's score_updated events (in the warehouse), after the "
            "first half of the simulated days against at the end; PSI over the first distribution's deciles "
            "(< 0.1 stable, 0.1-0.25 moderate, > 0.25 major; policies/scoring/drift.py). Models with fewer than 10 "
            "scored customers in a window are left out.")
    return out, note


def campaign_table(warehouse_url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    store = open_warehouse(warehouse_url)
    try:
        result = store.query(
            f"SELECT event_date, campaign_id, campaign_name, impressions, sends, clicks, spend, conversions, revenue, roas "
            f"FROM {store.dataset}.marts_marketing_campaign_performance ORDER BY event_date, campaign_id")
    finally:
        store.close()
    rows = [tuple(float(v) if isinstance(v, float) else (str(v) if isinstance(v, date) else v) for v in row)
            for row in result.rows]
    rows = [tuple(float("nan") if v is None else v for v in row) for row in rows]
    return list(result.columns), rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if np.isnan(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return str(value)


def summary_table(rows: list[PolicyRow]) -> Table:
    table = Table(title="policies against the baseline (per 1,000 customers; profit per customer)")
    for h in COMPARISON_HEADERS:
        table.add_column(h, justify="left" if h in ("policy", "source", "vs baseline") else "right",
                         no_wrap=h in ("policy", "source"))
    for row in comparison_rows(rows):
        table.add_row(*[_cell(v) for v in row])
    return table


def bidding_summary(days: list[CampaignDay]) -> str:
    if not days:
        return "no auctions"
    spend = [d.spend_share for d in days]
    lp = [d.lp_share for d in days]
    over = sum(d.spend > d.budget * (1 + 1e-9) for d in days)
    return (f"bidding, from the log: spend {min(spend):.1%}-{max(spend):.1%} of the daily budget, {over} campaign-days "
            f"over it; value won {min(lp):.1%}-{max(lp):.1%} of the hindsight LP ({len(days)} campaign-days)")


def report_numbers(n: Numbers) -> ThreeNumbers:
    lifts = [Estimate("predicted", n.predicted_lift.value, n.predicted_lift.low, n.predicted_lift.high),
             Estimate("live", n.live.lift.value, n.live.lift.low, n.live.lift.high)]
    values = [Estimate("predicted", n.predicted_served.value, n.predicted_served.low, n.predicted_served.high)]
    values += [Estimate(f"OPE {k}", v.value, v.low, v.high) for k, v in n.ope.items()]
    live = n.live.treated.profit
    values.append(Estimate("live", live.value, live.low, live.high))
    return ThreeNumbers(n.served, n.control, n.days, lifts, values)


def summary(result: Any) -> dict[str, Any]:
    """The demo's figures, as ``--json`` writes them."""
    n, step = result.numbers, result.learning
    out: dict[str, Any] = {"seconds": result.seconds}
    if step is not None:
        out["serving"] = step.serving.label()
        out["learning"] = {"candidate": step.candidate.label(), "origin": step.origin, "train_seconds": step.train_seconds,
                           "outcome": step.outcome, "gate": [c.as_dict() for c in step.gate.checks]}
    if n is not None:
        out |= {"live_lift": {"value": n.live.lift.value, "low": n.live.lift.low, "high": n.live.lift.high},
                "live_value_per_treated": n.live.treated.profit.value,
                "offline_prediction": {"lift": n.predicted_lift.value, "low": n.predicted_lift.low, "high": n.predicted_lift.high,
                                       "served": n.predicted_served.value, "control": n.predicted_control.value},
                "ope": {k: {"value": v.value, "low": v.low, "high": v.high, "relative_to_live": n.ope_error(k)}
                        for k, v in n.ope.items()},
                "prediction_within_live_ci": n.prediction_agrees}
    if result.bidding:
        out["bidding"] = {"spend_share": [d.spend_share for d in result.bidding], "lp_share": [d.lp_share for d in result.bidding],
                          "overspent_days": sum(d.spend > d.budget * (1 + 1e-9) for d in result.bidding),
                          "value": sum(d.value for d in result.bidding), "spend": sum(d.spend for d in result.bidding)}
    return out


def events_table(counts: dict[str, int]) -> Table:
    table = Table(title="events in the log by source")
    table.add_column("source")
    table.add_column("events", justify="right")
    for source, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(source, f"{count:,}")
    return table
