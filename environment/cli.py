"""``ame sim``: calibrate the market, compute bounds, tune baselines (``ame sim run``, ``parity`` and ``parity-bid``
run the engine too, so they are composed in ``ame/``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from environment.bidding import ConstantMultiplier, bidding_baselines, evaluate_bidding
from environment.bounds import OraclePolicy
from environment.calibrate import ARMS, METRICS, calibrate, load_hillstrom, real_arm_means, simulate_campaign
from environment.config import DEFAULT_CONFIG_PATH, ConfigError, load_market_config
from environment.heuristics import evaluate_journey, journey_baselines, tune_journey_heuristics

sim_app = typer.Typer(help="The simulated market: calibration, market stream, bounds and baselines.", no_args_is_help=True)
console = Console()


def _config(path: Path | None):
    try:
        return load_market_config(path)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None


@sim_app.command("calibrate")
def calibrate_command(
    data: Path = typer.Option(..., "--data", help="The Hillstrom CSV (../shared/data/hillstrom/hillstrom.csv)."),
    out: Path = typer.Option(None, "--out", help="Where to write the calibrated config (default: the shipped market.yaml)."),
    customers: int = typer.Option(400_000, "--customers", min=10_000, help="Simulated customers per arm."),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Fit the response parameters so that a simulated Hillstrom campaign reproduces its arm means."""
    try:
        frame = load_hillstrom(data)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None
    with console.status("calibrating (a few simulated campaigns)..."):
        config = calibrate(frame, n_per_arm=customers, seed=seed)
        check = simulate_campaign(config, customers, seed + 1000)
    real = real_arm_means(frame)
    table = Table(title="Hillstrom arm means: real vs simulated (a fresh seed)")
    for col in ("arm", "metric", "real", "simulated", "rel. error"):
        table.add_column(col, justify="right" if col not in ("arm", "metric") else "left")
    for arm in ARMS:
        for metric in METRICS:
            r, s = getattr(real[arm], metric), getattr(check[arm], metric)
            table.add_row(arm, metric, f"{r:.5f}", f"{s:.5f}", f"{s / r - 1:+.1%}")
    console.print(table)
    target = out or DEFAULT_CONFIG_PATH
    header = "# The calibrated market: written by `ame sim calibrate`.\n"
    target.write_text(header + config.to_yaml())
    console.print(f"wrote {target}")


@sim_app.command("bounds")
def bounds_command(
    customers: int = typer.Option(1_000, "--customers", min=10, help="Customers for the journey comparison."),
    campaigns: int = typer.Option(4, "--campaigns", min=1, help="Campaigns for the bidding comparison."),
    opportunities: int = typer.Option(100_000, "--opportunities", min=96, max=1_000_000, help="Auctions per day."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The upper bounds beside the baselines: the journey oracle and the auction hindsight optimum."""
    table = Table(title=f"Journeys: mean return per customer over 60 days ({customers} customers, seed {seed})")
    for col in ("policy", "return", "± s.e.", "of oracle"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    with console.status("solving the oracle's DP..."):
        oracle = evaluate_journey(OraclePolicy(), n_customers=customers, seed=seed)
    table.add_row("oracle (DP, latent state)", f"{oracle.mean:.3f}", f"{oracle.stderr:.3f}", "100%")
    for policy in journey_baselines():
        score = evaluate_journey(policy, n_customers=customers, seed=seed)
        table.add_row(score.policy, f"{score.mean:.3f}", f"{score.stderr:.3f}", f"{score.mean / oracle.mean:.1%}")
    console.print(table)
    for auction_type in ("second_price", "first_price"):
        t = Table(title=f"Bidding, {auction_type}: expected value over the episode vs the hindsight LP")
        for col in ("policy", "value", "hindsight", "fraction", "spend"):
            t.add_column(col, justify="left" if col == "policy" else "right")
        for policy in [*bidding_baselines(), ConstantMultiplier()]:
            s = evaluate_bidding(policy, n_campaigns=campaigns, seed=seed, auction_type=auction_type, opportunities_per_day=opportunities)
            t.add_row(s.policy, f"{s.expected_value:.1f}", f"{s.hindsight:.1f}", f"{s.fraction:.1%}", f"{s.spend:.1f}")
        console.print(t)


@sim_app.command("tune")
def tune_command(
    customers: int = typer.Option(4_000, "--customers", min=100),
    seed: int = typer.Option(0, "--seed"),
    quick: bool = typer.Option(False, "--quick", help="A small grid."),
) -> None:
    """Grid-search the journey heuristics' parameters on the simulator."""
    with console.status("grid search..."):
        tuned = tune_journey_heuristics(n_customers=customers, seed=seed, quick=quick)
    table = Table(title="Tuned journey heuristics")
    table.add_column("policy")
    table.add_column("parameters")
    table.add_column("return", justify="right")
    for name, (policy, score) in tuned.items():
        params = {k: v for k, v in vars(policy).items() if k not in ("name", "weights")} if hasattr(policy, "__dict__") else repr(policy)
        table.add_row(name, str(params) if params else repr(policy).replace("weights=", "")[:80], f"{score:.3f}")
    console.print(table)
