"""``ame demo``: the whole engine on the embedded defaults, in one command, in a closed-loop market.

It starts Ray, a fresh event log, state, registry and warehouse under ``$AME_HOME/demo/``; the agents (scoring,
journey, bidding, with the projector) and the Serve decision API come up. A journey policy is trained briefly (or the
best one in the registry is taken) and put through the promotion gate. Then the simulated market runs in a closed
loop: each day the journey agent decides for every customer and the market's customers receive its decisions and
respond; the demo's ad campaigns bid what ``/v1/bid`` serves from the bidding agent's state. The warehouse is built,
an audience activated, and what the engine earned live is set beside what the simulator predicted and what
off-policy evaluation estimates; ``report.html`` draws it (and ``--json`` writes the figures). Serve, the agents and
Ray are always shut down at the end (Ray only when the demo started it).

This is the composition root of the demo: it may import every package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ame.closed_loop import run_closed_loop
from ame.closed_loop_bid import BidLoop, CampaignDay, bid_market, bidding_from_log, run_bid_loop
from ame.demo_figures import (
    bidding_summary,
    campaign_table,
    evaluate_policies,
    events_table,
    learning_curves,
    live_pacing,
    report_numbers,
    score_samples,
    summary,
    summary_table,
)
from ame.demo_policy import LearningStep, learn
from ame.demo_services import (
    AGENTS,
    DemoError,
    RayAgents,
    bidding_record,
    fresh_folder,
    new_demo_key,
    port_is_free,
    request,
    start_agents,
    start_ray,
    start_serve,
    stop_serve,
)
from ame.demo_steps import activate_audience, build_warehouse, events_by_source, progress_bar, project_profiles
from ame.report import ReportData, write_report
from ame.sim_run import lift_table, three_numbers_table
from ame.three_numbers import ThreeNumbers as Numbers
from ame.three_numbers import three_numbers
from data.log import open_log
from data.settings import get_settings
from environment.config import load_market_config
from environment.stream import SimulatedMarket
from policies.cli_policies import gate_table
from policies.lift import live_lift
from policies.promotion import GateSettings
from policies.slots import BUILTINS, PolicySlot, RegistrySource

console = Console()
err = Console(stderr=True)

START = datetime(2024, 1, 1, tzinfo=UTC)
"""First simulated day."""

__all__ = ["DemoConfig", "DemoError", "DemoResult", "demo_command", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """What one demo run does.

    :param customers: simulated customers in the closed loop.
    :param days: simulated days.
    :param seed: seed of the market, the training and the evaluation.
    :param port: HTTP port of the Serve API (on 127.0.0.1).
    :param eval_customers: customers per seed of the simulator evaluation (and of the gate).
    :param eval_seeds: seeds of the simulator evaluation (and of the gate).
    :param campaigns: ad campaigns bidding in the closed loop.
    :param auctions_per_day: auctions per campaign and day.
    :param bid_days: days of auctions.
    :param train_steps: environment steps of the brief training (when the registry holds no journey policy).
    :param holdout_share: share of customers held out (they get the control policy): large enough to measure a lift.
    :param report: where report.html goes.
    :param json_out: where the summary figures go (None: nowhere).
    :param keep_serving: keep the API up at the end, until Ctrl-C.
    :param folder: the demo's folder (default ``$AME_HOME/demo``); emptied first.
    """

    customers: int = 10_000
    days: int = 30
    seed: int = 7
    port: int = 8000
    eval_customers: int = 2_000
    eval_seeds: int = 3
    campaigns: int = 2
    auctions_per_day: int = 20_000
    bid_days: int = 4
    train_steps: int = 300_000
    holdout_share: float = 0.25
    report: Path = Path("report.html")
    json_out: Path | None = None
    keep_serving: bool = False
    folder: Path | None = None

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """The ``--quick`` run: small enough for under 3 minutes on 2 shared cores."""
        base = cls(customers=1_000, days=10, eval_customers=500, eval_seeds=2, auctions_per_day=10_000, bid_days=2,
                   train_steps=40_000)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class DemoResult:
    """What the run produced (the test and --json read it)."""

    folder: Path
    log_url: str
    warehouse_url: str
    report: Path
    events_by_source: dict[str, int] = field(default_factory=dict)
    learning: LearningStep | None = None
    numbers: Numbers | None = None
    bidding: list[CampaignDay] = field(default_factory=list)
    activation_file: Path | None = None
    marts: dict[str, int] = field(default_factory=dict)
    nba: dict[str, Any] | None = None
    bid: dict[str, Any] | None = None
    comparison: list[Any] = field(default_factory=list)
    comparison_note: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    """The run's live parts, shut down at the end whatever happens."""

    config: DemoConfig
    result: DemoResult
    log: Any
    registry: Path
    state_url: str
    loop: BidLoop
    sup: Any = None
    owns_ray: bool = False
    serving: bool = False
    token: str = ""


@contextmanager
def _step(result: DemoResult, name: str, title: str) -> Iterator[None]:
    console.rule(title)
    started = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[name] = round(time.perf_counter() - started, 2)


# ---- the steps -----------------------------------------------------------------------------------------


def _start(run: _Run) -> None:
    config, folder = run.config, run.result.folder
    run.owns_ray = start_ray()
    budgets = dict.fromkeys(run.loop.campaigns, run.loop.budget)
    run.sup = start_agents(run.result.log_url, folder / "agents", run.state_url, run.registry, budgets, run.loop.env.model,
                           config.holdout_share)
    run.token = new_demo_key(folder / "api-keys.json")
    run.serving = True
    start_serve(config.port, {"event_log": run.result.log_url, "state_store": run.state_url, "policies_dir": str(run.registry),
                              "api_keys_file": str(folder / "api-keys.json"), "pacing_from_agents": True,
                              "agent_state_dir": str(folder / "agents"), "agent_shards": 1})
    console.print(f"Ray {'started (2 CPUs)' if run.owns_ray else 'already running: reused'}; agents {', '.join(AGENTS)} "
                  f"(1 shard each) and the projector; API on http://127.0.0.1:{config.port} (OpenAPI at /docs)")
    console.print(f"log {run.result.log_url}\nregistry {run.registry}\nwarehouse {run.result.warehouse_url}")


def _learn(run: _Run) -> None:
    config = run.config
    gate = GateSettings(seeds=max(3, config.eval_seeds), customers=max(1_000, config.eval_customers))
    step = learn(run.registry, get_settings().policies_dir, run.log, config.train_steps, config.seed, gate)
    run.result.learning = step
    console.print(f"candidate {step.candidate.label()} ({step.origin}"
                  + (f", {step.train_seconds:.0f} s of training)" if step.train_seconds else ")"))
    console.print(gate_table(step.gate))
    console.print(f"{step.outcome}: the journey slot serves {step.serving.label()}")


def _closed_loop(run: _Run) -> None:
    config = run.config
    market = SimulatedMarket(config.customers, config.days, config.seed, start=START)
    with progress_bar() as progress:
        task = progress.add_task("closed-loop days", total=config.days)
        report = run_closed_loop(run.log, market, RayAgents(run.sup, "journey"), config.days,
                                 on_day=lambda day, events: progress.update(task, completed=day + 1))
    console.print(f"{report.decisions:,} journey decisions by the engine, {report.contacts:,} contacts carried out, "
                  f"{report.events:,} events")
    slot = PolicySlot("bidding", RegistrySource(run.registry, BUILTINS))
    slot.refresh()
    with progress_bar() as progress:
        task = progress.add_task("auction slots", total=config.bid_days * run.loop.env.model.slots_per_day)
        run_bid_loop(run.log, run.loop, config.bid_days, slot.current.policy, bidding_record(run.sup),
                     RayAgents(run.sup, "bidding").catch_up, on_slot=lambda g: progress.update(task, completed=g))
    run.result.bidding = bidding_from_log(run.log, run.loop.budget, run.loop.campaigns)
    run.result.events_by_source = events_by_source(run.log)
    console.print(events_table(run.result.events_by_source))
    console.print(bidding_summary(run.result.bidding))


def _answers(run: _Run) -> None:
    config = run.config
    project_profiles(run.log, run.state_url)
    customer = f"sim{config.seed}-c0000000"
    status, nba = request(config.port, run.token, "POST", "/v1/next-best-action", {"customer_id": customer})
    bid_body = {"id": "demo-1", "imp": [{"id": "1", "bidfloor": 0.05, "ext": {"value": 2.0}}], "user": {"id": customer},
                "tmax": 100, "ext": {"campaign_id": run.loop.campaigns[0]}}
    bid_status, bid = request(config.port, run.token, "POST", "/v1/bid", bid_body)
    if status != 200 or bid_status not in (200, 204):
        raise DemoError(f"the API answered {status} to /v1/next-best-action and {bid_status} to /v1/bid: {nba or bid}; "
                        "see the Serve logs under /tmp/ray/session_latest/logs/serve")
    run.result.nba, run.result.bid = nba, bid or {"status": 204, "detail": "no bid"}
    console.print(f"POST /v1/next-best-action → {json.dumps(nba)}")
    console.print(f"POST /v1/bid → {json.dumps(run.result.bid)}")
    console.print(f"curl -s -H 'Authorization: Bearer {run.token}' -H 'Content-Type: application/json' "
                  f"-d '{{\"customer_id\": \"{customer}\"}}' http://127.0.0.1:{config.port}/v1/next-best-action",
                  soft_wrap=True, markup=False, highlight=False)


def _warehouse_and_activation(run: _Run) -> None:
    result = run.result
    result.marts = build_warehouse(run.log, result.warehouse_url)
    console.print(", ".join(f"{k} {v:,} rows" for k, v in result.marts.items()))
    sync, result.activation_file = activate_audience(result.folder, result.warehouse_url, run.state_url)
    if sync.status != "ok":
        raise DemoError(f"the activation run failed: {sync.fatal or sync.errors[:3]}")
    console.print(f"{sync.succeeded:,} of {sync.model_rows:,} engaged customers sent to {result.activation_file}"
                  if result.activation_file else "the audience is empty: no file written")


def _three_numbers(run: _Run) -> None:
    config = run.config
    lift = live_lift(run.log, load_market_config().journey)
    numbers = three_numbers(run.log, lift, seeds=max(5, config.eval_seeds), customers=max(1_000, config.eval_customers),
                            registry=str(run.registry))
    run.result.numbers = numbers
    console.print(lift_table(lift))
    console.print(three_numbers_table(numbers))
    with progress_bar() as progress:
        rows, note = evaluate_policies(config, run.registry, progress)
    run.result.comparison, run.result.comparison_note = rows, note
    (console if console.is_terminal else Console(width=140)).print(summary_table(rows))
    console.print(note, style="dim", highlight=False)


def _report(run: _Run) -> None:
    config, result = run.config, run.result
    pacing, pacing_note = live_pacing(run.log, run.loop.campaigns, run.loop.budget, run.loop.env.model.slots_per_day)
    columns, campaigns = campaign_table(result.warehouse_url)
    scores, scores_note = score_samples(result.warehouse_url, config.days)
    rows = result.comparison
    data = ReportData(
        title="Autonomous Marketing Engine: demo report",
        facts={"customers": f"{config.customers:,}", "days": str(config.days), "seed": str(config.seed),
               "serving": result.learning.serving.label() if result.learning else "",
               "events in the log": f"{sum(result.events_by_source.values()):,}",
               "events by source": ", ".join(f"{k} {v:,}" for k, v in sorted(result.events_by_source.items())),
               "activation file": str(result.activation_file), "log": result.log_url, "warehouse": result.warehouse_url},
        comparison=rows, comparison_note=result.comparison_note,
        curves=learning_curves(run.registry), pacing=pacing, pacing_note=pacing_note, campaign_columns=columns,
        campaign_rows=campaigns, scores=scores, scores_note=scores_note,
        three_numbers=report_numbers(result.numbers) if result.numbers else None)
    write_report(data, result.report)
    console.print(f"wrote {result.report}")
    if config.json_out is not None:
        Path(config.json_out).write_text(json.dumps(summary(result), indent=2, default=str))
        console.print(f"wrote {config.json_out}")


# ---- the run -------------------------------------------------------------------------------------------


STEPS = (("start", "1. Ray, the agents and the decision API", _start),
         ("learn", "2. a journey policy through the promotion gate", _learn),
         ("closed_loop", "3. the market in a closed loop with the engine", _closed_loop),
         ("serve", "4. the decision API answers", _answers),
         ("warehouse", "5. the warehouse and an activation", _warehouse_and_activation),
         ("three_numbers", "6. prediction, off-policy estimate and live result", _three_numbers),
         ("report", "7. report.html", _report))


def run_demo(config: DemoConfig) -> DemoResult:
    """Run the whole demo; always stops Serve and the agents, and Ray when the demo started it."""
    folder = (config.folder or get_settings().home / "demo").resolve()
    if not port_is_free(config.port):
        raise DemoError(f"port {config.port} on 127.0.0.1 is in use; pass another with --port")
    fresh_folder(folder)
    result = DemoResult(folder=folder, log_url=f"sqlite:///{folder / 'events.db'}",
                        warehouse_url=f"duckdb:///{folder / 'warehouse.duckdb'}", report=Path(config.report).resolve())
    loop = bid_market(config.campaigns, config.bid_days, config.seed, config.auctions_per_day, 1 / 8)
    run = _Run(config, result, open_log(result.log_url), folder / "registry", f"sqlite:///{folder / 'state.db'}", loop)
    started = time.perf_counter()
    try:
        for name, title, step in STEPS:
            with _step(result, name, title):
                step(run)
        result.seconds["total"] = round(time.perf_counter() - started, 1)
        console.print(f"demo done in {result.seconds['total']:.0f} s "
                      f"({', '.join(f'{k} {v:.0f} s' for k, v in result.seconds.items() if k != 'total')})")
        if config.keep_serving:
            _keep_serving(config.port)
        return result
    finally:
        _shutdown(run)


def _keep_serving(port: int) -> None:
    console.print(f"the API stays up on http://127.0.0.1:{port}; Ctrl-C to stop")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")


def _shutdown(run: _Run) -> None:
    run.log.close()
    if run.serving:
        stop_serve()
    if run.sup is not None:
        run.sup.down()
    if run.owns_ray:
        import ray  # heavy: only where the demo started it

        ray.shutdown()


def demo_command(
    quick: Annotated[bool, typer.Option("--quick", help="A small run (1,000 customers, 10 days): under 3 minutes.")] = False,
    customers: Annotated[int | None, typer.Option(min=10, help="Simulated customers (default 10,000; 1,000 with --quick).")] = None,
    days: Annotated[int | None, typer.Option(min=2, max=365, help="Simulated days (default 30; 10 with --quick).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the market, the training and the evaluation.")] = 7,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the decision API on 127.0.0.1.")] = 8000,
    keep_serving: Annotated[bool, typer.Option("--keep-serving", help="Keep the API up at the end, until Ctrl-C.")] = False,
    report: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("report.html"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the summary figures as JSON.")] = None,
    train_steps: Annotated[int | None, typer.Option(min=1_000, help="Steps of the brief training (default 300,000; 40,000 "
                                                    "with --quick) when the registry holds no journey policy.")] = None,
    eval_customers: Annotated[int | None, typer.Option(min=10, help="Customers per seed of the simulator evaluation.")] = None,
    eval_seeds: Annotated[int | None, typer.Option(min=1, help="Seeds of the simulator evaluation.")] = None,
) -> None:
    """Run the whole engine on the embedded defaults in a closed-loop market: Ray, the agents, the decision API, a
    policy through the promotion gate, the warehouse, an activation, the live lift beside the prediction and OPE, and
    report.html."""
    overrides = {"customers": customers, "days": days, "seed": seed, "port": port, "keep_serving": keep_serving,
                 "report": report, "json_out": json_out, "train_steps": train_steps, "eval_customers": eval_customers,
                 "eval_seeds": eval_seeds}
    given = {k: v for k, v in overrides.items() if v is not None}
    config = DemoConfig.quick(**given) if quick else replace(DemoConfig(), **given)
    try:
        run_demo(config)
    except KeyboardInterrupt:
        err.print("interrupted: Serve, the agents and Ray were shut down")
        raise typer.Exit(130) from None
    except DemoError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from None
