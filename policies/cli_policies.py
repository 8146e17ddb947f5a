"""``ame train journey|bidding``, ``ame policies list|show|promote``, ``ame evaluate journey|bidding``, ``ame ope``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from data.log import open_log
from data.settings import get_settings
from environment.belief import parse_planner_name
from environment.config import load_market_config
from environment.heuristics import HEURISTICS
from policies.evaluate import JOURNEY_HEURISTICS, bidding_suite, journey_suite, mean_ci, plot_journey, resolve_policy
from policies.ope import OPEError
from policies.ope_log import LogOPEError, pick_behaviour, read_decisions
from policies.ope_trajectory import behaviour_value, evaluate_trajectories
from policies.promotion import GateSettings, promotion_event, run_gate
from policies.registry import PolicyRegistry, RegistryError
from policies.slots import (
    BUILTIN,
    BUILTINS,
    DEFAULT_POLICY,
    SLOTS,
    LoadedPolicy,
    RegistrySource,
    SlotError,
    SlotPointers,
    SlotTarget,
    check_slot,
)

console = Console()

policies_app = typer.Typer(help="The registry of trained RL policies: list, show, promote.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Compare policies over seeds with 95% CIs, beside baselines and bounds.", no_args_is_help=True)

_REGISTRY = typer.Option(None, "--registry", help="Registry root (default AME_POLICIES_DIR, artifacts/policies).")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


# ---- train ----


def train_journey(
    algo: str = typer.Option("ppo", help="ppo (MaskablePPO) | a2c | dqn"),
    timesteps: int = typer.Option(3_000_000, min=1),
    seed: int = typer.Option(0),
    config: Path = typer.Option(None, "--config", help="Market YAML (default: the shipped calibrated market)."),
    name: str = typer.Option(None, help="Registry name (default journey-<algo>)."),
    num_envs: int = typer.Option(512, min=1, help="Customers stepped together."),
    belief: bool = typer.Option(False, "--belief", help="Observe the Bayes filter's belief over the hidden state too."),
    warm_start: str = typer.Option(None, "--warm-start", help="planner (QMDP) or lookahead: clone that belief planner before PPO."),
    learning_rate: float = typer.Option(3e-4, min=0.0),
    ent_coef: float = typer.Option(0.003, min=0.0),
    clip_range: float = typer.Option(0.2, min=0.0),
    unsub_price: float = typer.Option(1.0, "--unsub-price", min=0.0,
                                      help="Train (and plan the warm start) with each unsubscribe costing this many "
                                           "times its value; evaluation uses the true market."),
    demo_customers: int = typer.Option(1_000, min=1, help="Warm start: customers per demonstration seed."),
    demo_seeds: int = typer.Option(10, min=1, help="Warm start: demonstration seeds."),
    dagger_rounds: int = typer.Option(0, min=0, help="Warm start: rounds of the clone acting and the planner labelling."),
    registry: str = _REGISTRY,
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a journey policy on the vectorized simulator, evaluate it, register it."""
    from policies.train_journey import WARM_STARTS, JourneyArgs, main  # lazy: loads torch and stable-baselines3

    if algo not in ("ppo", "a2c", "dqn"):
        _fail(f"unknown algo {algo!r}; choose ppo, a2c or dqn")
    if warm_start not in WARM_STARTS:
        _fail(f"unknown --warm-start {warm_start!r}; choose planner or lookahead")
    if warm_start and (algo != "ppo" or not belief):
        _fail("--warm-start clones a belief-observing planner: use it with --algo ppo --belief")
    if not unsub_price > 0:
        _fail(f"--unsub-price must be > 0, got {unsub_price}")
    args = JourneyArgs(algo=algo, timesteps=timesteps, seed=seed, config=str(config) if config else None, name=name,
                       num_envs=num_envs, batch_size=max(num_envs * 15, 64), registry=registry, progress=progress,
                       belief=belief, warm_start=warm_start, learning_rate=learning_rate, ent_coef=ent_coef,
                       clip_range=clip_range, unsub_price=unsub_price, demo_customers=demo_customers,
                       demo_seeds=demo_seeds, dagger_rounds=dagger_rounds)
    _report(main(args))


def train_bidding(
    algo: str = typer.Option("sac", help="sac | ppo"),
    timesteps: int = typer.Option(200_000, min=1),
    seed: int = typer.Option(0),
    config: Path = typer.Option(None, "--config"),
    name: str = typer.Option(None, help="Registry name (default bidding-<algo>-b<1/fraction>)."),
    budget_fraction: float = typer.Option(0.125, min=1e-4, max=1.0, help="Daily budget / spend that wins everything."),
    auction_type: str = typer.Option("second_price", help="second_price | first_price"),
    registry: str = _REGISTRY,
    progress: bool = typer.Option(True),
) -> None:
    """Train a budget-pacing bidder (multiplier per slot) on the auction simulator, evaluate it, register it."""
    from policies.train_bidding import BiddingArgs, main  # lazy: loads torch and stable-baselines3

    if algo not in ("sac", "ppo"):
        _fail(f"unknown algo {algo!r}; choose sac or ppo")
    if auction_type not in ("second_price", "first_price"):
        _fail("--auction-type must be second_price or first_price")
    args = BiddingArgs(algo=algo, timesteps=timesteps, seed=seed, config=str(config) if config else None, name=name,
                       budget_fraction=budget_fraction, auction_type=auction_type, registry=registry, progress=progress)
    _report(main(args))


def train_bidder(
    timesteps: int = typer.Option(1_200_000, min=1, help="Transitions (20 campaigns per step)."),
    seed: int = typer.Option(0),
    config: Path = typer.Option(None, "--config"),
    auction_type: str = typer.Option("second_price", help="second_price | first_price"),
    registry: str = _REGISTRY,
    progress: bool = typer.Option(True),
) -> None:
    """Train the bidder: a SAC residual on profile pacing, across budgets 1/2..1/32; evaluate it, register it."""
    from policies.train_bidder import BidderArgs, main  # lazy: loads torch and stable-baselines3

    if auction_type not in ("second_price", "first_price"):
        _fail("--auction-type must be second_price or first_price")
    args = BidderArgs(timesteps=timesteps, seed=seed, config=str(config) if config else None, auction_type=auction_type,
                      registry=registry, progress=progress)
    _report(main(args))


def _report(path: Path) -> None:
    meta = json.loads((path / "metadata.json").read_text())
    table = Table(title=f"{meta['name']} {meta['version']} ({meta['algo']}, {meta['timesteps']:,} steps, {meta['train_seconds']:.0f} s)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in meta["metrics"].items():
        table.add_row(k, f"{v:.4f}")
    console.print(table)
    console.print(f"registered at {path}; promote with `ame policies promote {meta['name']} {meta['version']}`")


# ---- registry ----


@policies_app.command("list")
def policies_list(registry: str = _REGISTRY) -> None:
    """What each serving slot serves, and every registered policy with its versions and headline metrics."""
    reg = PolicyRegistry(registry)
    pointers = SlotPointers(reg.root)
    serving = {slot: pointers.target(slot) for slot in SLOTS}
    slots = Table(title="serving slots")
    for col in ("slot", "policy", "version"):
        slots.add_column(col)
    for slot, target in serving.items():
        slots.add_row(slot, target.name, target.version)
    console.print(slots)
    table = Table(title=f"policies in {reg.root}")
    for col in ("name", "version", "serving", "algo", "task", "steps"):
        table.add_column(col, no_wrap=True)
    table.add_column("metrics")
    for name in reg.names():
        for v in reg.versions(name):
            m = reg.metadata(name, v)
            headline = ", ".join(f"{k}={val:.3g}" for k, val in list(m.metrics.items())[:3])
            where = ", ".join(slot for slot, t in serving.items() if (t.name, t.version) == (name, v))
            table.add_row(name, v, where, m.algo, m.task, f"{m.timesteps:,}", headline)
    console.print(table)


@policies_app.command("show")
def policies_show(name: str, version: str = typer.Argument(None), registry: str = _REGISTRY) -> None:
    """The metadata of a version (default: the latest)."""
    try:
        meta = PolicyRegistry(registry).metadata(name, version)
    except RegistryError as exc:
        _fail(str(exc))
    console.print_json(meta.model_dump_json())


@policies_app.command("promote")
def policies_promote(
    name: str = typer.Argument(..., help="A registered policy, or a built-in heuristic (offer_every_k, ...)."),
    version: str = typer.Argument(None, help="Its version (default: the latest; built-ins: builtin)."),
    slot: str = typer.Option(None, "--slot", help="journey or bidding (default: the task the policy was trained for)."),
    force: bool = typer.Option(False, "--force", help="Promote even when the gate finds the candidate worse."),
    log: str = typer.Option(None, "--log", help="The event log: the gate's OPE reads it, the outcome is appended to it "
                            "(default AME_EVENT_LOG)."),
    seeds: int = typer.Option(5, "--gate-seeds", min=2, help="Simulator seeds the gate compares on."),
    customers: int = typer.Option(2_000, "--gate-customers", min=100, help="Simulated customers per seed."),
    registry: str = _REGISTRY,
) -> None:
    """Put NAME VERSION into its serving slot, for the agents and the API alike, after a gate: the simulator and
    off-policy evaluation on the engine's recent log compare it with what serves now, and a candidate worse beyond
    the confidence interval is refused (unless --force). The outcome is an event in the log."""
    root = Path(registry or get_settings().policies_dir)
    try:
        slot_name, candidate, current = _promotion_parties(root, name, version, slot)
    except (SlotError, ValueError, LookupError) as exc:
        _fail(str(exc))
    event_log = open_log(log)
    try:
        report = run_gate(slot_name, candidate, current, event_log, GateSettings(seeds=seeds, customers=customers))
        console.print(gate_table(report))
        outcome = "refused" if report.refused and not force else ("forced" if report.refused else "promoted")
        if outcome != "refused":
            SlotPointers(root).point(slot_name, report.candidate, previous=report.current.label())
        event_log.append([promotion_event(report, outcome, by=f"cli:{os.environ.get('USER', 'unknown')}")])
    finally:
        event_log.close()
    if outcome == "refused":
        console.print(f"[red]refused[/red]: {report.candidate.label()} is worse than {report.current.label()} beyond the "
                      "95% interval; the slot still serves the current policy (--force to promote anyway)")
        raise typer.Exit(1)
    console.print(f"{outcome}: the {slot_name} slot now serves {report.candidate.label()} (was {report.current.label()});"
                  " the agents and every API replica switch within a second")


def _promotion_parties(root: Path, name: str, version: str | None, slot: str | None) -> tuple[str, Any, Any]:
    """(slot, candidate, current) as loaded policies."""
    reg = PolicyRegistry(root)
    if version == BUILTIN or (version is None and name not in reg.names()):
        known = name.partition("-eps")[0] in HEURISTICS or name in DEFAULT_POLICY.values() or parse_planner_name(name)
        if slot in (None, "journey") and not known:
            raise LookupError(f"no registered policy or built-in named {name!r}; registered: {', '.join(reg.names()) or 'none'} "
                              f"(train one with `ame train journey|bidding`); built-in: {', '.join(HEURISTICS)}, "
                              f"belief_lookahead_u<price>_grid")
        target, task = SlotTarget(name, BUILTIN), slot or "journey"
    else:
        meta = reg.metadata(name, version)
        target, task = SlotTarget(name, meta.version), slot or meta.task
    check_slot(task)
    source = RegistrySource(root, BUILTINS)
    current = SlotPointers(root).target(task)
    return (task, LoadedPolicy(target.name, target.version, source.load(task, target)),
            LoadedPolicy(current.name, current.version, source.load(task, current)))


def gate_table(report: Any) -> Table:
    table = Table(title=f"promotion gate: {report.candidate.label()} against {report.current.label()} ({report.slot})",
                  caption="; ".join(report.skipped) or None)
    for col in ("check", "candidate", "serving now", "difference", "95% interval", "verdict", "on"):
        table.add_column(col, justify="left" if col in ("check", "on") else "right")
    for c in report.checks:
        verdict = "[red]worse[/red]" if c.worse else "ok"
        table.add_row(c.name, f"{c.candidate:.4f}", f"{c.current:.4f}", f"{c.difference:+.4f}", f"[{c.low:+.4f}, {c.high:+.4f}]",
                      verdict, c.note)
    return table


# ---- evaluate ----


def _ci(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    m, h = mean_ci(values)
    return f"{m * scale:.{digits}f} ± {h * scale:.{digits}f}"


@evaluate_app.command("journey")
def evaluate_journey_cmd(
    policies: str = typer.Option("email_every_k,engagement_ladder,propensity_threshold,offer_every_k",
                                 help="Comma-separated: heuristics and/or registry names (name or name@version)."),
    seeds: int = typer.Option(10, min=1),
    customers: int = typer.Option(2_000, min=10),
    out: Path = typer.Option(Path("reports/policies"), help="Folder of the PNG and the JSON results."),
    registry: str = _REGISTRY,
) -> None:
    """Profit, conversion, cost, unsubscribes and % of oracle per policy, with 95% CIs across seeds."""
    names = [n.strip() for n in policies.split(",") if n.strip()]
    try:
        results = journey_suite(names, seeds, customers, registry)
    except RegistryError as exc:
        _fail(str(exc))
    table = Table(title=f"journey, {seeds} seeds x {customers:,} customers (mean ± 95% CI)")
    for col in ("policy", "profit/customer", "conversion %", "cost/customer", "unsubscribe %", "% of oracle", "gap closed"):
        table.add_column(col, justify="right")
    heur = [n for n in names if n in JOURNEY_HEURISTICS]
    best = max(heur, key=lambda n: sum(m.profit for m in results[n])) if heur else None
    for n, ms in results.items():
        gap = ""
        if best and n != best:
            g = [(m.profit - b.profit) / (m.oracle - b.profit) for m, b in zip(ms, results[best], strict=True)]
            gap = _ci(g, 100, 1)
        table.add_row(n + (" (best heuristic)" if n == best else ""), _ci([m.profit for m in ms]),
                      _ci([m.conversion_rate for m in ms], 100, 2), _ci([m.cost for m in ms]),
                      _ci([m.unsubscribe_rate for m in ms], 100, 2), _ci([m.oracle_share for m in ms], 100, 1), gap)
    table.add_row("oracle (DP, latent state)", _ci([m.oracle for m in next(iter(results.values()))]), "", "", "", "100", "")
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    reg = PolicyRegistry(registry)
    curves = {}
    for n in names:
        if n not in JOURNEY_HEURISTICS and parse_planner_name(n) is None:
            base, _, v = n.partition("@")
            csv = reg.path(base, v or reg.latest(base)) / "progress.csv"
            if csv.is_file():
                curves[n] = csv
    plot_journey(results, out / "journey.png", curves)
    (out / "journey.json").write_text(json.dumps({n: [asdict(m) for m in ms] for n, ms in results.items()}, indent=1))
    console.print(f"wrote {out / 'journey.png'} and {out / 'journey.json'}")


@evaluate_app.command("bidding")
def evaluate_bidding_cmd(
    policies: str = typer.Option("linear_previous_day,linear_hindsight,dual_pacing",
                                 help="Comma-separated baselines and/or registry names."),
    seeds: int = typer.Option(10, min=1),
    budgets: str = typer.Option("0.5,0.125,0.03125", help="Budget fractions of the spend that wins everything."),
    auction_type: str = typer.Option("second_price", help="second_price | first_price"),
    opportunities: int = typer.Option(100_000, min=96),
    days: int = typer.Option(7, min=1),
    out: Path = typer.Option(Path("reports/policies")),
    registry: str = _REGISTRY,
) -> None:
    """Value won as % of the hindsight LP, and spend as % of budget, per bidder and budget, with 95% CIs."""
    names = [n.strip() for n in policies.split(",") if n.strip()]
    fracs = tuple(float(b) for b in budgets.split(","))
    results = bidding_suite(names, seeds, fracs, auction_type, opportunities_per_day=opportunities, days=days, registry=registry)
    table = Table(title=f"bidding ({auction_type}), {seeds} seeds x 4 campaigns x {days} days (mean ± 95% CI)")
    for col in ("budget", "policy", "% of hindsight LP", "spend % of budget", "overspent runs"):
        table.add_column(col, justify="right")
    for (n, frac), ms in results.items():
        table.add_row(f"1/{round(1 / frac)}", n, _ci([m.lp_share for m in ms], 100, 1), _ci([m.spend_share for m in ms], 100, 1),
                      str(sum(m.overspent for m in ms)))
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bidding_{auction_type}.json").write_text(json.dumps([asdict(m) for ms in results.values() for m in ms], indent=1))


# ---- OPE ----


def ope_command(
    policy: str = typer.Option(..., "--policy", help="The target: NAME[:VERSION] of a registered policy, or a built-in "
                               "heuristic (offer_every_k, ... , with -eps<e>)."),
    log: str = typer.Option(None, "--log", help="Event log URL (default AME_EVENT_LOG)."),
    behaviour: str = typer.Option(None, "--behaviour", help="NAME@VERSION of the logged policy to evaluate on (default: "
                                  "the treated policy with the most decisions)."),
    agent: str = typer.Option("journey", "--agent", help="Whose decisions: journey (the agent) or serve:nba (the API)."),
    window_days: float = typer.Option(1.0, "--window-days", min=0.01, help="Attribution window of a decision's reward."),
    registry: str = _REGISTRY,
    n_boot: int = typer.Option(1000, min=0),
    json_out: Path = typer.Option(None, "--json", help="Also write the estimates as JSON."),
) -> None:
    """Off-policy value of POLICY per customer, from the engine's own journey decisions (IS, SNIPS, DM, DR with
    bootstrap CIs over customers), beside what the logged policy earned."""
    try:
        target = resolve_policy(policy.replace(":", "@"), registry)
    except (RegistryError, ValueError) as exc:
        _fail(str(exc))
    event_log = open_log(log)
    try:
        logged = pick_behaviour(read_decisions(event_log, load_market_config().journey, agent, window_days), behaviour)
        estimates = evaluate_trajectories(target, logged, n_boot=n_boot)
    except (OPEError, LogOPEError) as exc:
        _fail(str(exc))
    finally:
        event_log.close()
    earned = behaviour_value(logged)
    table = Table(title=f"OPE of {policy} on {len(logged):,} decisions of {logged.behaviour.label()} "
                        f"({len(logged.customers):,} customers)",
                  caption=f"value = profit per customer over the logged days; the logged policy earned {earned:.4f}"
                          + (f"; {logged.skipped:,} decisions without an observation left out" if logged.skipped else ""))
    for col in ("estimator", "value", "95% CI", "customers", "effective n"):
        table.add_column(col, justify="right")
    for e in estimates.values():
        table.add_row(e.estimator, f"{e.value:.4f}", f"[{e.ci_low:.4f}, {e.ci_high:.4f}]", f"{e.n:,}", f"{e.effective_sample_size:,.0f}")
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps({"policy": policy, "behaviour": logged.behaviour.label(), "behaviour_value": earned,
                                        "decisions": len(logged), "estimates": {k: e.as_dict() for k, e in estimates.items()}},
                                       indent=2))
