"""``ame sim parity-bid``: the bid observation and multiplier three ways, compared at every slot.

The auction simulator runs its campaigns with the pacing controller, writes what happens (``auction_result``
and attributed ``purchase`` events) to a fresh log, slot by slot; the bidding agent (the plain
:class:`~agents.runtime.AgentShard`, no Ray) folds that log; ``/v1/bid``'s read path
(:func:`policies.bid_serving.campaign_view` and :func:`serve.decide.bid_multiplier`) reads the agent's committed
record at the start of every slot. Each bid-observation column and the multiplier are compared with the
simulator's own at the same moment; the command exits 0 only when every difference is at most ``tolerance``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agents.bidding import BiddingAgent, BiddingConfig
from agents.runtime import AgentShard, ShardConfig
from data.log import open_log
from environment.bid_events import slot_events
from environment.bid_facts import BidSpec, slot_start_us
from environment.bid_observation import COLUMNS
from environment.config import load_market_config
from environment.vector import AuctionVectorEnv
from policies import bid_serving
from policies.evaluate import budget_config, win_all_spend
from policies.slots import BUILTINS
from serve.decide import bid_multiplier

START_DAY = 20_000  # the simulator's day 0 is 2024-10-04 (days since 1970-01-01)
TOLERANCE = 1e-6


@dataclass
class BidParity:
    """The largest absolute difference from the simulator, per bid-observation column and for the multiplier."""

    columns: np.ndarray = field(default_factory=lambda: np.zeros(len(COLUMNS)))
    multiplier: float = 0.0
    moments: int = 0
    events: int = 0

    def ok(self, tolerance: float = TOLERANCE) -> bool:
        return bool(self.columns.max() <= tolerance and self.multiplier <= tolerance)


def run_parity(campaigns: int, days: int, seed: int, opportunities: int, budget_fraction: float, workdir: Path,
               progress: bool = False, bidder: Any = None) -> BidParity:
    """Run the comparison (see the module docstring) with its log and agent state under ``workdir``.

    :param bidder: the :class:`~policies.bidder.ProfilePacing` served and simulated (default: the one ``/v1/bid``
        serves when nothing is promoted).
    """
    # imported here, not at the top: the simulator's vector env loads stable-baselines3 and torch, and Serve's
    # app FastAPI, which every other `ame` command would otherwise pay for at start-up

    base = load_market_config()
    over = {"opportunities_per_day": opportunities, "days": days}
    config = budget_config(base, budget_fraction * win_all_spend(base, campaigns, seed, **over))
    env = AuctionVectorEnv(campaigns, config, **over)
    obs, _ = env.reset(seed=seed)
    market, names = env.market, [f"sim-campaign-{e}" for e in range(campaigns)]
    served = bidder or BUILTINS["bidding"]("profile_pacing")
    simulated = replace(served, env=None, _state=None)
    simulated.bind(env)
    url = f"sqlite:///{workdir / 'events.db'}"
    log = open_log(url)
    agent = BiddingAgent(BiddingConfig(daily_budgets=dict.fromkeys(names, env.model.daily_budget), market=env.model))
    shard = AgentShard(agent, ShardConfig(log_url=url, state_dir=workdir / "state"), start=False)
    out, slots = BidParity(), env.model.slots_per_day
    try:
        with Progress(disable=not progress) as bar:
            task = bar.add_task("slots", total=days * slots)
            for step in range(days * slots):
                simulated.base(obs)
                multipliers = simulated.multipliers(simulated._state, obs, market.spec)
                now_us = slot_start_us(START_DAY * slots + market.global_slot, slots)
                _compare(out, shard, names, served, obs, multipliers, now_us, market.spec)
                obs, *_ = env.step(multipliers[:, None])
                if step < days * slots - 1:  # the last step resets the episode: nothing after it is compared
                    events = slot_events(market, market.closed, names, START_DAY)
                    out.events += log.append(events).appended if events else 0
                bar.advance(task)
    finally:
        shard.close()
        log.close()
    return out


def _compare(out: BidParity, shard: Any, names: list[str], served: Any, obs: np.ndarray, multipliers: np.ndarray,
             now_us: int, spec: BidSpec) -> None:
    """Fold what the log holds, then read every campaign as ``/v1/bid`` would at ``now_us``."""

    shard.catch_up()
    for e, name in enumerate(names):
        record = shard.record(name)
        view = bid_serving.campaign_view(record, now_us, spec, served.params)
        quote = bid_multiplier(served, record, now_us, spec)
        out.columns = np.maximum(out.columns, np.abs(view.observation[0].astype(np.float64) - obs[e].astype(np.float64)))
        out.multiplier = max(out.multiplier, abs(quote.multiplier - float(multipliers[e])))
        out.moments += 1


def print_parity(result: BidParity, tolerance: float, console: Console) -> None:
    table = Table(title=f"bid observation parity: simulator vs bidding agent vs /v1/bid ({result.moments} campaign-slots, "
                        f"{result.events} events)")
    for head in ("column", "what", "largest |difference|", f"<= {tolerance:g}"):
        table.add_column(head, justify="right" if head.startswith(("largest", "<=")) else "left")
    for i, (name, diff) in enumerate(zip(COLUMNS, result.columns, strict=True)):
        table.add_row(str(i), name, f"{diff:.3g}", "yes" if diff <= tolerance else "[red]NO[/red]")
    passed = "yes" if result.multiplier <= tolerance else "[red]NO[/red]"
    table.add_row("", "multiplier (served bidder)", f"{result.multiplier:.3g}", passed)
    console.print(table)


def parity_bid_command(
    campaigns: int = typer.Option(2, min=1, max=64, help="Campaigns simulated."),
    days: int = typer.Option(2, min=1, max=60, help="Days simulated."),
    seed: int = typer.Option(0, help="The market's seed."),
    opportunities: int = typer.Option(5_000, min=96, max=1_000_000, help="Auctions per campaign and day."),
    budget_fraction: float = typer.Option(1 / 8, min=1e-4, max=1.0, help="Daily budget / the spend that wins every auction."),
    workdir: Path | None = typer.Option(None, help="Keep the log and the agent's state here (default: a temporary folder)."),
    tolerance: float = typer.Option(TOLERANCE, min=0.0, help="The largest difference that passes."),
) -> None:
    """Run the auction simulator's events through the bidding agent and /v1/bid's read path and compare every
    bid-observation column and the multiplier with the simulator's own; exit 0 only when all agree."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="ame-parity-bid-") as tmp:
        folder = workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = run_parity(campaigns, days, seed, opportunities, budget_fraction, folder, progress=True)
    print_parity(result, tolerance, console)
    raise typer.Exit(0 if result.ok(tolerance) else 1)
