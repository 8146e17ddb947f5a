"""``ame demo``: the whole engine on the embedded defaults, in one command.

It starts Ray, a fresh event log, state and warehouse under ``$AME_HOME/demo/``; the agents (scoring, journey,
bidding) and the Serve decision API come up; the simulated market streams customers over days into the log
while the agents act on it; then the warehouse is built, an audience is activated to a CSV file, the policies
are compared in the seeded simulator (trained ones from the registry when present, the tuned heuristics
otherwise), and ``report.html`` is written. Serve, the agents and Ray are always shut down at the end (Ray
only when the demo started it).

This is the composition root of the demo: it may import every package; it adds no logic of its own beyond
gathering figures.
"""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ame.report import (
    COMPARISON_HEADERS,
    LearningCurve,
    PolicyRow,
    ReportData,
    ScoreSample,
    comparison_rows,
    write_report,
)

logger = logging.getLogger(__name__)
console = Console()
err = Console(stderr=True)

START = datetime(2024, 1, 1, tzinfo=UTC)
"""First simulated day (the stream's default)."""
APP_NAME = "ame-demo"
NAMESPACE = "ame"  # the Serve replica's pacing cache finds the bidding agent's shards here
AGENTS = ("scoring", "journey", "bidding")
BASELINE = "email_every_k"  # the agents' holdout policy: what the others are compared with
AUDIENCE_SYNC = "demo_engaged_csv"


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """What one demo run does.

    :param customers: simulated customers streamed into the log.
    :param days: simulated days.
    :param seed: seed of the stream and of the evaluation.
    :param port: HTTP port of the Serve API (on 127.0.0.1).
    :param eval_customers: customers per seed of the simulator evaluation.
    :param eval_seeds: seeds of the simulator evaluation.
    :param auctions_per_day: auctions of the simulated day of the pacing plot.
    :param report: where report.html goes.
    :param keep_serving: keep the API up until Ctrl-C at the end.
    :param folder: the demo's folder (default ``$AME_HOME/demo``); emptied first.
    """

    customers: int = 10_000
    days: int = 30
    seed: int = 7
    port: int = 8000
    eval_customers: int = 2_000
    eval_seeds: int = 3
    auctions_per_day: int = 100_000
    report: Path = Path("report.html")
    keep_serving: bool = False
    folder: Path | None = None

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """The ``--quick`` run: small enough for under 2 minutes on 2 shared cores."""
        base = cls(customers=1_000, days=10, eval_customers=500, eval_seeds=2, auctions_per_day=20_000)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class DemoResult:
    """What the run produced (the test reads it)."""

    folder: Path
    log_url: str
    warehouse_url: str
    report: Path
    events_by_source: dict[str, int] = field(default_factory=dict)
    stream_events: int = 0
    activation_file: Path | None = None
    marts: dict[str, int] = field(default_factory=dict)
    nba: dict[str, Any] | None = None
    bid: dict[str, Any] | None = None
    comparison: list[PolicyRow] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


# ---- small helpers -----------------------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False, disable=not err.is_terminal)


@contextmanager
def _step(result: DemoResult, name: str, title: str) -> Iterator[None]:
    console.rule(title)
    started = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[name] = round(time.perf_counter() - started, 2)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _request(port: int, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        kind = response.getheader("content-type", "")
        return response.status, (json.loads(data) if data and kind.startswith("application/json") else None)
    finally:
        conn.close()


def _fresh_folder(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


# ---- the steps ---------------------------------------------------------------------------------------------


def start_ray() -> bool:
    """Start a local 2-CPU Ray unless one is already initialized (a test's session cluster). Returns whether
    the demo owns it (and so shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=NAMESPACE)
    return True


def start_agents(log_url: str, state_dir: Path, state_url: str) -> Any:
    """The agents, and the projector that keeps the profiles (consent) Serve reads current."""
    from agents.cli import build_agents
    from agents.projector import ProjectorConfig
    from agents.supervisor import AgentSupervisor
    from data.settings import get_settings

    settings = get_settings()
    sup = AgentSupervisor(log_url, state_dir, build_agents(list(AGENTS)), shards=1, namespace=NAMESPACE,
                          batch_size=settings.agent_batch_size,
                          projector=ProjectorConfig.from_settings(log_url, state_url, settings))
    sup.up()
    return sup


def new_demo_key(path: Path) -> str:
    """A key with the ingest and decide scopes, stored hashed in ``path`` (as ``ame serve keys new`` does)."""
    import orjson

    from serve.auth import generate_key

    token, key = generate_key("demo", ["decide", "ingest"])
    path.write_bytes(orjson.dumps({"keys": [key.model_dump(mode="json")]}, option=orjson.OPT_INDENT_2))
    return token


def start_serve(port: int, args: dict[str, Any]) -> None:
    from ray import serve

    from serve.app import build_app

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args, num_replicas=1, user_config={"poll_interval_s": 1.0}), name=APP_NAME, route_prefix="/")


def stop_serve() -> None:
    try:
        from ray import serve

        serve.delete(APP_NAME)
        serve.shutdown()
    except Exception:
        logger.debug("serve shutdown", exc_info=True)


def stream(log: Any, config: DemoConfig, on_day: Callable[[int, int], None]) -> Any:
    """The simulated market under the policy the journey slot serves, with the engine's daily tick each day (the
    journey agent decides then, in shadow: its decisions are logged beside the market's)."""
    from ame.parity import serving_policy
    from data.settings import get_settings
    from environment.stream import stream_market

    served = serving_policy(None, get_settings().policies_dir)
    return stream_market(log, config.customers, config.days, policy=served.policy, seed=config.seed, start=START,
                         on_day=on_day, ticks=True, policy_version=served.version)


def wait_for_agents(sup: Any, log: Any, timeout_s: float) -> None:
    """Wait (with a bar of the slowest shard's position) until every shard has read the log's head and the head
    stopped moving."""
    deadline = time.monotonic() + timeout_s
    last_head = -1
    with _progress() as progress:
        task = progress.add_task("agents catch up", total=max(log.head(), 1))
        while time.monotonic() < deadline:
            head = log.head()
            states = sup.status()
            slowest = min((s.get("position", 0) for s in states), default=0)
            progress.update(task, total=max(head, 1), completed=slowest)
            if head == last_head and all(s.get("running") and s.get("position") == head for s in states):
                return
            broken = [s for s in states if s.get("last_error") and not s.get("running")]
            if broken:
                raise DemoError(f"agent shard {broken[0]['agent']} is down: {broken[0]['last_error']}")
            last_head = head
            time.sleep(0.3)
    raise DemoError(f"the agents did not catch up with the log within {timeout_s:.0f} s; "
                    "the machine may be overloaded: try `ame demo --quick`")


def project_profiles(log: Any, state_url: str) -> int:
    from data.projections.base import Projector
    from data.projections.profile import ProfileProjection
    from data.projections.store import open_state_store
    from data.settings import get_settings

    settings = get_settings()
    projector = Projector(log, open_state_store(state_url), ProfileProjection(), settings.read_batch_size, 0)
    with _progress() as progress:
        task = progress.add_task("profile projection", total=max(projector.lag(), 1))
        return projector.catch_up(progress=lambda n: progress.advance(task, n))


def events_by_source(log: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    after = 0
    while True:
        batch = log.read(after=after, limit=50_000)
        for e in batch.events:
            counts[e.source] = counts.get(e.source, 0) + 1
        if not batch.events:
            break
        after = batch.next_after
    return counts


def build_warehouse(log: Any, warehouse_url: str) -> dict[str, int]:
    from data.warehouse import open_warehouse
    from data.warehouse.build import WarehouseProject
    from data.warehouse.loader import load_events

    store = open_warehouse(warehouse_url)
    try:
        with _progress() as progress:
            task = progress.add_task("load raw_events", total=max(log.head(), 1))
            load_events(log, store, progress=lambda n: progress.advance(task, n))
    finally:
        store.close()
    console.print("building staging and marts (SQLMesh plan + run, with audits) …")
    project = WarehouseProject(warehouse_url)
    try:
        project.build()
    finally:
        project.close()
    store = open_warehouse(warehouse_url)
    try:
        return {name: int(store.query(f"SELECT COUNT(*) FROM {store.dataset}.{name}").rows[0][0])
                for name in ("raw_events", "marts_marketing_customer_360", "marts_marketing_campaign_performance",
                             "marts_sales_lead_scores")}
    finally:
        store.close()


def activate_audience(folder: Path, warehouse_url: str, state_url: str) -> tuple[Any, Path | None]:
    """The engaged audience (buyers and clickers), with segment and scores, to a CSV file (the file destination)."""
    from data.activation.config import parse_syncs
    from data.activation.runner import WarehouseSource, run_sync
    from data.activation.state import SyncState

    out = folder / "exports" / "audiences"
    syncs = parse_syncs({"syncs": [{
        "name": AUDIENCE_SYNC, "model": "marts_marketing_customer_360", "identity_key": "customer_id",
        "filter": "total_purchases > 0 OR email_clicks > 0 OR sms_clicks > 0 OR ad_clicks > 0",
        "mapping": {"customer_id": "customer_id", "segment": "customer_segment", "revenue": "total_revenue",
                    "lead_score": "lead_score", "churn_risk": "churn_risk_score", "clv": "predicted_clv"},
        "mode": "mirror", "schedule": "0 6 * * *", "destination": {"type": "csv", "path": str(out)},
    }]}, source="ame demo")
    report = run_sync(syncs.syncs[0], WarehouseSource(warehouse_url), SyncState.from_url(state_url),
                      report_dir=folder / "activation" / "reports")
    files = sorted((out / AUDIENCE_SYNC).glob("*.csv"))
    return report, (files[-1] if files else None)


# ---- figures -----------------------------------------------------------------------------------------------


def _trained_journey_policies(registry: Any) -> list[str]:
    names = []
    for name in registry.names():
        try:
            if registry.metadata(name).task == "journey":
                names.append(name)
        except Exception:  # noqa: BLE001 - a broken entry is skipped, not fatal to the demo
            logger.warning("policy %s skipped: unreadable metadata", name)
    return names


def evaluate_policies(config: DemoConfig, progress: Progress | None = None) -> tuple[list[PolicyRow], str]:
    """Every available journey policy on the same seeded simulated customers (60-day episodes): revenue,
    purchases, spend (channel cost and discounts), unsubscribes per 1,000 customers, profit per customer."""
    from policies.evaluate import JOURNEY_HEURISTICS, mean_ci, resolve_policy, run_journey
    from policies.registry import PolicyRegistry

    trained = _trained_journey_policies(PolicyRegistry())
    names = [BASELINE] + [n for n in JOURNEY_HEURISTICS if n != BASELINE] + trained
    task = progress.add_task("simulator evaluation", total=len(names) * config.eval_seeds) if progress else None
    rows: list[PolicyRow] = []
    n = config.eval_customers
    for name in names:
        policy = resolve_policy(name)
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
    note = (f"Simulator rows: per 1,000 customers over a 60-day episode, mean of {config.eval_seeds} seeds of "
            f"{n:,} customers (the same customers for every policy); spend = channel cost + discounts; profit per "
            f"customer with its 95% CI. {'Trained: ' + ', '.join(trained) + '.' if trained else 'No trained journey policy in the registry: tuned heuristics only.'}")
    return rows, note


def live_row(warehouse_url: str, stream_report: Any, customers: int, days: int) -> PolicyRow:
    """The live stream's figures from the marts, per 1,000 customers over the demo's days."""
    from data.warehouse import open_warehouse
    from environment.config import load_market_config
    from environment.population import EMAIL, OFFER, PUSH, SMS

    store = open_warehouse(warehouse_url)
    try:
        ds = store.dataset
        revenue, purchases, unsubscribed = store.query(
            f"SELECT COALESCE(SUM(total_revenue), 0), COALESCE(SUM(total_purchases), 0), "
            f"COALESCE(SUM(CASE WHEN consent_email = false OR consent_sms = false OR consent_push = false THEN 1 ELSE 0 END), 0) "
            f"FROM {ds}.marts_marketing_customer_360").rows[0]
        media = store.query(f"SELECT COALESCE(SUM(spend), 0) FROM {ds}.marts_marketing_campaign_performance").rows[0][0]
        discounts = store.query(
            f"SELECT COALESCE(SUM(TRY_CAST(json_extract_string(properties, '$.discount') AS DOUBLE)), 0) "
            f"FROM {ds}.raw_events WHERE event_type = 'purchase'").rows[0][0]
    finally:
        store.close()
    cost = load_market_config().journey.cost
    sent = stream_report.by_type
    channel_cost = (sent.get("email_sent", 0) * cost[EMAIL] + sent.get("sms_sent", 0) * cost[SMS]
                    + sent.get("push_sent", 0) * cost[PUSH] + sent.get("offer_sent", 0) * cost[OFFER])
    scale = 1_000 / customers
    return PolicyRow(policy=stream_report.policy, source=f"live {days} d",
                     revenue=float(revenue) * scale, conversions=float(purchases) * scale,
                     spend=(float(media) + channel_cost + float(discounts)) * scale,
                     unsubscribes=float(unsubscribed) * scale)


def learning_curves() -> list[LearningCurve]:
    import pandas as pd

    from policies.registry import PolicyRegistry

    registry = PolicyRegistry()
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


def pacing_over_a_day(config: DemoConfig) -> tuple[dict[str, np.ndarray], str]:
    """Cumulative share of the daily budget spent through the second simulated day, by bidder (the first
    day warms up the bidders that learn from yesterday)."""
    from environment.bidding import DualPacing, LinearPreviousDay
    from environment.config import load_market_config
    from environment.vector import AuctionVectorEnv
    from policies.evaluate import budget_config, win_all_spend

    base = load_market_config()
    over = {"opportunities_per_day": config.auctions_per_day, "days": 2}
    budget = win_all_spend(base, 1, config.seed, **over) / 8
    market = budget_config(base, budget)
    out: dict[str, np.ndarray] = {}
    for bidder in (DualPacing(), LinearPreviousDay()):
        env = AuctionVectorEnv(1, market, **over)
        obs, _ = env.reset(seed=config.seed)
        if hasattr(bidder, "bind"):
            bidder.bind(env)
        spend: list[float] = []
        while True:
            action, _ = bidder.predict(obs)
            obs, _, _, truncated, info = env.step(action)
            spend.append(float(np.asarray(info["spend"]).sum()))
            if truncated.all():
                break
        day2 = np.asarray(spend[len(spend) // 2:])
        out[bidder.name] = np.cumsum(day2) / budget
    note = (f"One campaign, {config.auctions_per_day:,} auctions a day in 96 slots, second price, daily budget = 1/8 of "
            f"the spend that would win every auction ({budget:,.2f}); day 2 of a seeded market. The dotted line is "
            "the budget; dual pacing spreads it over the day, the previous-day linear bidder spends by yesterday's "
            "multiplier.")
    return out, note


def score_samples(warehouse_url: str, days: int) -> tuple[list[ScoreSample], str]:
    """Each customer's latest score (0-100) at the middle of the simulated days against at the end, per model."""
    from data.warehouse import open_warehouse
    from policies.scoring.drift import numeric_bins, numeric_shares, psi, status_of

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
    from data.warehouse import open_warehouse

    store = open_warehouse(warehouse_url)
    try:
        result = store.query(
            f"SELECT event_date, campaign_id, impressions, sends, clicks, spend, conversions, revenue, roas "
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


# ---- the run -----------------------------------------------------------------------------------------------


def run_demo(config: DemoConfig) -> DemoResult:
    """Run the whole demo; always stops Serve and the agents, and Ray when the demo started it."""
    from data.log import open_log
    from data.settings import get_settings

    settings = get_settings()
    folder = (config.folder or settings.home / "demo").resolve()
    if not port_is_free(config.port):
        raise DemoError(f"port {config.port} on 127.0.0.1 is in use; pass another with --port")
    _fresh_folder(folder)
    log_url = f"sqlite:///{folder / 'events.db'}"
    state_url = f"sqlite:///{folder / 'state.db'}"
    warehouse_url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    result = DemoResult(folder=folder, log_url=log_url, warehouse_url=warehouse_url, report=Path(config.report).resolve())
    started = time.perf_counter()
    owns_ray = False
    sup = None
    serving = False
    log = open_log(log_url)
    try:
        with _step(result, "start", "1. Ray, the agents and the decision API"):
            owns_ray = start_ray()
            sup = start_agents(log_url, folder / "agents", state_url)
            token = new_demo_key(folder / "api-keys.json")
            serving = True
            start_serve(config.port, {"event_log": log_url, "state_store": state_url,
                                      "api_keys_file": str(folder / "api-keys.json"), "pacing_from_agents": True,
                                      "agent_state_dir": str(folder / "agents"), "agent_shards": 1})
            console.print(f"Ray {'started (2 CPUs)' if owns_ray else 'already running: reused'}; agents "
                          f"{', '.join(AGENTS)} (1 shard each); API on http://127.0.0.1:{config.port} (OpenAPI at /docs)")
            console.print(f"log {log_url}\nwarehouse {warehouse_url}")

        with _step(result, "stream", f"2. the simulated market: {config.customers:,} customers over {config.days} days"):
            with _progress() as progress:
                task = progress.add_task("simulated days", total=config.days)

                def on_day(day: int, events: int) -> None:
                    progress.update(task, completed=day + 1, description=f"simulated days ({events:,} events)")

                report = stream(log, config, on_day)
            result.stream_events = report.events
            console.print(f"{report.events:,} simulator events appended ({report.appended:,} new)")
            wait_for_agents(sup, log, timeout_s=max(120.0, config.customers * config.days / 500))
            result.events_by_source = events_by_source(log)
            table = Table(title="events in the log by source")
            table.add_column("source")
            table.add_column("events", justify="right")
            for source, count in sorted(result.events_by_source.items(), key=lambda kv: -kv[1]):
                table.add_row(source, f"{count:,}")
            console.print(table)

        with _step(result, "serve", "3. the decision API answers"):
            project_profiles(log, state_url)
            customer = f"sim{config.seed}-c0000000"
            status, nba = _request(config.port, token, "POST", "/v1/next-best-action", {"customer_id": customer})
            bid_body = {"id": "demo-1", "imp": [{"id": "1", "bidfloor": 0.05, "ext": {"value": 2.0}}],
                        "user": {"id": customer}, "tmax": 100, "ext": {"campaign_id": "sim-journey"}}
            bid_status, bid = _request(config.port, token, "POST", "/v1/bid", bid_body)
            if status != 200 or bid_status not in (200, 204):
                raise DemoError(f"the API answered {status} to /v1/next-best-action and {bid_status} to /v1/bid: "
                                f"{nba or bid}; see the Serve logs under /tmp/ray/session_latest/logs/serve")
            result.nba, result.bid = nba, bid or {"status": 204, "detail": "no bid"}
            console.print(f"POST /v1/next-best-action → {json.dumps(nba)}")
            console.print(f"POST /v1/bid → {json.dumps(result.bid)}")
            console.print("try it:")
            console.print(f"curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
                          f"-d '{{\"customer_id\": \"{customer}\"}}' http://127.0.0.1:{config.port}/v1/next-best-action",
                          soft_wrap=True, markup=False, highlight=False)

        with _step(result, "warehouse", "4. the warehouse: raw → staging → marts"):
            result.marts = build_warehouse(log, warehouse_url)
            console.print(", ".join(f"{k} {v:,} rows" for k, v in result.marts.items()))

        with _step(result, "activation", "5. activation: the engaged audience (buyers, clickers) to a CSV file"):
            sync, result.activation_file = activate_audience(folder, warehouse_url, state_url)
            if sync.status != "ok":
                raise DemoError(f"the activation run failed: {sync.fatal or sync.errors[:3]}")
            console.print(f"{sync.succeeded:,} of {sync.model_rows:,} rows sent to {result.activation_file}"
                          if result.activation_file else "the audience is empty: no file written")

        with _step(result, "evaluate", "6. the policies in the seeded simulator, and the live stream"):
            with _progress() as progress:
                rows, note = evaluate_policies(config, progress)
            rows.append(live_row(warehouse_url, report, config.customers, config.days))
            result.comparison = rows
            (console if console.is_terminal else Console(width=140)).print(summary_table(rows))
            console.print(note + " Live row: revenue, purchases and unsubscribed customers from "
                          "marts_marketing_customer_360, media spend from marts_marketing_campaign_performance plus "
                          "the stream's channel costs and discounts.", style="dim", highlight=False)

        with _step(result, "report", "7. report.html"):
            pacing, pacing_note = pacing_over_a_day(config)
            columns, campaigns = campaign_table(warehouse_url)
            scores, scores_note = score_samples(warehouse_url, config.days)
            data = ReportData(
                title="Autonomous Marketing Engine: demo report",
                facts={"customers": f"{config.customers:,}", "days": str(config.days), "seed": str(config.seed),
                       "events in the log": f"{sum(result.events_by_source.values()):,}",
                       "events by source": ", ".join(f"{k} {v:,}" for k, v in sorted(result.events_by_source.items())),
                       "activation file": str(result.activation_file), "log": log_url, "warehouse": warehouse_url},
                comparison=rows, comparison_note=note, curves=learning_curves(), pacing=pacing, pacing_note=pacing_note,
                campaign_columns=columns, campaign_rows=campaigns, scores=scores, scores_note=scores_note)
            write_report(data, result.report)
            console.print(f"wrote {result.report}")
        result.seconds["total"] = round(time.perf_counter() - started, 1)
        console.print(f"demo done in {result.seconds['total']:.0f} s "
                      f"({', '.join(f'{k} {v:.0f} s' for k, v in result.seconds.items() if k != 'total')})")
        if config.keep_serving:
            console.print(f"the API stays up on http://127.0.0.1:{config.port}; Ctrl-C to stop")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                console.print("stopping")
        return result
    finally:
        log.close()
        if serving:
            stop_serve()
        if sup is not None:
            sup.down()
        if owns_ray:
            import ray

            ray.shutdown()


def demo_command(
    quick: Annotated[bool, typer.Option("--quick", help="A small run (about 1,000 customers, 10 days): under 2 minutes.")] = False,
    customers: Annotated[int | None, typer.Option(min=10, help="Simulated customers (default 10,000; 1,000 with --quick).")] = None,
    days: Annotated[int | None, typer.Option(min=2, max=365, help="Simulated days (default 30; 10 with --quick).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulator and the evaluation.")] = 7,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the decision API on 127.0.0.1.")] = 8000,
    keep_serving: Annotated[bool, typer.Option("--keep-serving", help="Keep the API up at the end, until Ctrl-C.")] = False,
    report: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("report.html"),
    eval_customers: Annotated[int | None, typer.Option(min=10, help="Customers per seed of the simulator evaluation.")] = None,
    eval_seeds: Annotated[int | None, typer.Option(min=1, help="Seeds of the simulator evaluation.")] = None,
) -> None:
    """Run the whole engine on the embedded defaults: Ray, the agents, the decision API, the simulated market,
    the warehouse, an activation, a policy comparison and report.html."""
    overrides = {"customers": customers, "days": days, "seed": seed, "port": port, "keep_serving": keep_serving,
                 "report": report, "eval_customers": eval_customers, "eval_seeds": eval_seeds}
    if quick:
        config = DemoConfig.quick(**overrides)
    else:
        config = replace(DemoConfig(), **{k: v for k, v in overrides.items() if v is not None})
    try:
        run_demo(config)
    except KeyboardInterrupt:
        err.print("interrupted: Serve, the agents and Ray were shut down")
        raise typer.Exit(130) from None
    except DemoError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from None
