"""``ame sim run``: the simulated market into the event log, deciding by the simulator's own policy or, with
``--closed-loop``, by the engine (the journey agent serving its slot), and ``ame lift``: what the engine earns live."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.bidding import BiddingAgent, BiddingConfig
from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import AgentShard, ShardConfig
from ame.closed_loop import ClosedLoopError, in_process_agents, run_closed_loop
from ame.closed_loop_bid import CampaignDay, bid_market, bidding_from_log, run_bid_loop
from ame.three_numbers import ThreeNumbers, three_numbers
from data.log import open_log
from data.settings import get_settings
from environment.config import ConfigError, MarketConfig, load_market_config
from environment.stream import SimulatedMarket, resolve_policy, stream_market
from policies.lift import LiftError, LiveLift, live_lift
from policies.slots import BUILTINS, LoadedPolicy, PolicySlot, RegistrySource

console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("days · {task.fields[events]:,} events"), TimeElapsedColumn(), console=console)


def _market(path: Path | None) -> MarketConfig:
    try:
        return load_market_config(path)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None


def run_command(
    customers: int = typer.Option(10_000, "--customers", min=1),
    days: int = typer.Option(30, "--days", min=1, max=3650),
    log: str = typer.Option(None, "--log", help="Event log URL (default: AME_EVENT_LOG, else sqlite:///.ame/events.db)."),
    policy: str = typer.Option(None, "--policy", help="The simulator's journey policy (offer_every_k, engagement_ladder, "
                               "email_every_k, propensity_threshold, no_contact; -eps<e> adds exploration). Not with --closed-loop."),
    seed: int = typer.Option(0, "--seed"),
    config: Path = typer.Option(None, "--config", help="A market config (default: the calibrated one)."),
    ticks: bool = typer.Option(False, "--ticks", help="Append the engine's daily tick before each day (agents running on "
                               "the log decide then)."),
    closed_loop: bool = typer.Option(False, "--closed-loop", help="The engine decides: the journey agent serves the journey "
                                     "slot (the holdout its policy) and the market carries its decisions out."),
    shards: int = typer.Option(2, "--shards", min=1, help="Closed loop: shards of the journey agent (run in this process)."),
    state_dir: Path = typer.Option(None, "--state-dir", help="Closed loop: the agents' state (default AME_HOME/agents)."),
    campaigns: int = typer.Option(2, "--campaigns", min=0, help="Closed loop: ad campaigns bidding what /v1/bid serves (0: none)."),
    opportunities: int = typer.Option(20_000, "--opportunities", min=96, help="Closed loop: auctions per campaign and day."),
    budget_fraction: float = typer.Option(1 / 8, "--budget-fraction", min=1e-4, max=1.0,
                                          help="Closed loop: daily budget / the spend that would win every auction."),
) -> None:
    """Simulate the market and write its events into the event log, with a progress bar."""
    if closed_loop and policy is not None:
        raise typer.BadParameter("the closed loop serves the journey slot's policy: promote one (`ame policies promote`) "
                                 "instead of --policy", param_hint="--policy")
    market_config = _market(config)
    started = time.perf_counter()
    if closed_loop:
        folder = state_dir or get_settings().home / "agents"
        _run_closed_loop(customers, days, log, seed, market_config, shards, folder)
        if campaigns:
            _run_bid_loop(campaigns, days, log, seed, opportunities, budget_fraction, market_config, folder)
    else:
        _run_simulator(customers, days, log, policy or "offer_every_k", seed, market_config, ticks)
    console.print(f"{time.perf_counter() - started:.1f} s")


def _run_simulator(customers: int, days: int, log: str | None, policy: str, seed: int, config: MarketConfig, ticks: bool) -> None:
    try:
        predictor = resolve_policy(policy)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--policy") from None
    event_log = open_log(log)
    try:
        with _progress() as progress:
            task = progress.add_task("days", total=days, events=0)
            report = stream_market(event_log, customers, days, policy=predictor, seed=seed, config=config, ticks=ticks,
                                   on_day=lambda day, events: progress.update(task, completed=day + 1, events=events))
    finally:
        event_log.close()
    table = Table(title=f"{report.events:,} events for {customers:,} customers x {days} days")
    table.add_column("event_type")
    table.add_column("count", justify="right")
    for name, count in sorted(report.by_type.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"appended {report.appended:,}, already there {report.duplicates:,}; policy {policy}: reward per customer "
                  f"{report.total_reward / customers:.3f}")


def _run_closed_loop(customers: int, days: int, log: str | None, seed: int, config: MarketConfig, shards: int,
                     state_dir: Path) -> None:
    settings = get_settings()
    log_url = log or settings.event_log_url()
    agent = JourneyAgent(JourneyConfig(holdout_share=settings.agent_holdout_share, policies_dir=settings.policies_dir))
    serving = agent.serving()
    event_log = open_log(log_url)
    try:
        market = SimulatedMarket(customers, days, seed, config)
        with in_process_agents(agent, log_url, state_dir, shards) as engine, _progress() as progress:
            task = progress.add_task("days", total=days, events=0)
            report = run_closed_loop(event_log, market, engine, days,
                                     on_day=lambda day, events: progress.update(task, completed=day + 1, events=events))
        console.print(f"closed loop: {report.customers:,} customers x {report.days} days, {report.decisions:,} engine "
                      f"decisions ({report.contacts:,} contacts carried out), {report.events:,} events appended; serving "
                      f"{serving.name}@{serving.version}, holdout {agent.config.holdout_policy} ({agent.config.holdout_share:.0%})")
        console.print(lift_table(live_lift(event_log, config.journey)))
    except (ClosedLoopError, LiftError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        event_log.close()


def lift_table(lift: LiveLift) -> Table:
    table = Table(title="live, from the log: treated against the holdout",
                  caption="profit per customer over the logged days (reward projection); conversion and unsubscribes: "
                          "share of customers; 95% intervals")
    for col in ("arm", "policy", "customers", "profit per customer", "conversion", "unsubscribed"):
        table.add_column(col, justify="left" if col in ("arm", "policy") else "right")
    for name, arm in (("treated", lift.treated), ("holdout", lift.holdout)):
        table.add_row(name, arm.policy, f"{arm.customers:,}", arm.profit.text(), arm.conversion.text(2, True),
                      arm.unsubscribe.text(2, True))
    table.add_row("[bold]lift[/bold]", "", "", lift.lift.text(), "", "")
    return table


def lift_command(
    log: str = typer.Option(None, "--log", help="Event log URL (default AME_EVENT_LOG)."),
    compare: bool = typer.Option(False, "--compare", help="Beside the live lift: the simulator's prediction for the same two "
                                 "policies and the OPE estimate of the served policy from the engine's own log."),
    seeds: int = typer.Option(5, "--seeds", min=2, help="--compare: simulator seeds of the prediction."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON."),
) -> None:
    """What the engine earns live, from the log alone: treated against the holdout, with 95% intervals."""
    event_log = open_log(log)
    try:
        journey = load_market_config().journey
        lift = live_lift(event_log, journey)
        console.print(lift_table(lift))
        figures: dict = {"live": lift.as_dict()}
        if compare:
            numbers = three_numbers(event_log, lift, seeds=seeds)
            console.print(three_numbers_table(numbers))
            figures["three_numbers"] = numbers.as_dict()
    except LiftError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    finally:
        event_log.close()
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=2, default=str))


def three_numbers_table(n: ThreeNumbers) -> Table:
    table = Table(title=f"{n.served} against {n.control}: the simulator's prediction, OPE and the live figure",
                  caption=f"over {n.days} days; lift = profit per customer, served minus control; 95% intervals")
    for col in ("figure", "served", "control", "lift", "source"):
        table.add_column(col, justify="left" if col in ("figure", "source") else "right")
    table.add_row("offline prediction", n.predicted_served.text(), n.predicted_control.text(), n.predicted_lift.text(),
                  f"ame evaluate, {n.seeds} seeds x {n.customers:,} simulated customers")
    for name, est in n.ope.items():
        table.add_row(f"OPE {name}", est.text(), "", "", "the engine's own log, the treated customers' decisions")
    table.add_row("live", n.live.treated.profit.text(), n.live.holdout.profit.text(), n.live.lift.text(), "the log")
    return table


def _run_bid_loop(campaigns: int, days: int, log: str | None, seed: int, opportunities: int, budget_fraction: float,
                  config: MarketConfig, state_dir: Path) -> None:
    """The campaigns bid what the bidding slot serves, read from the bidding agent's record as /v1/bid reads it."""
    settings = get_settings()
    log_url = log or settings.event_log_url()
    loop = bid_market(campaigns, days, seed, opportunities, budget_fraction, config)
    agent = BiddingAgent(BiddingConfig(daily_budgets=dict.fromkeys(loop.campaigns, loop.budget), market=loop.env.model))
    shard = AgentShard(agent, ShardConfig(log_url=log_url, state_dir=state_dir), start=False)
    slot = PolicySlot("bidding", RegistrySource(settings.policies_dir, BUILTINS))
    slot.refresh()
    event_log = open_log(log_url)
    try:
        with Progress(TextColumn("[bold]bidding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("slots", total=days * loop.env.model.slots_per_day)
            run_bid_loop(event_log, loop, days, slot.current.policy, shard.record, shard.catch_up,
                         on_slot=lambda g: bar.update(task, completed=g))
        console.print(bidding_table(bidding_from_log(event_log, loop.budget, loop.campaigns), slot.current))
    finally:
        shard.close()
        event_log.close()


def bidding_table(days: list[CampaignDay], served: LoadedPolicy) -> Table:
    table = Table(title=f"bidding in the closed loop, from the log: {served.name}@{served.version}",
                  caption="spend against the daily budget; value won = sum of the won impressions' value estimates; "
                          "hindsight LP on the logged auctions and prices to beat")
    for col in ("campaign", "day", "spend / budget", "value won", "hindsight LP", "% of LP"):
        table.add_column(col, justify="left" if col == "campaign" else "right")
    for d in days:
        table.add_row(d.campaign, str(d.day), f"{d.spend_share:.2%}", f"{d.value:,.2f}", f"{d.lp_value:,.2f}", f"{d.lp_share:.2%}")
    return table
