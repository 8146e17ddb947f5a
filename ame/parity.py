"""``ame sim parity``: the journey observation and action three ways, compared on every customer-day.

The simulator's market runs its customers under the policy serving the journey slot (or ``--policy``), writing
its events and the engine's daily tick to a fresh log. The journey agent (the plain
:class:`~agents.runtime.AgentShard`, sharded as in production, no Ray) folds that log and decides at every tick;
``/v1/next-best-action``'s read path (:class:`serve.nba.NextBestAction` on the agent's committed state) decides
at every tick too. Each observation column is compared with the simulator's own at the same moment, and each
action with the simulator's (a sampling policy draws from the same decision ids everywhere). The command exits 0
only when every column differs by at most ``tolerance`` and the actions agree on at least ``min_agreement`` of
the customer-days.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agents.journey import JourneyAgent, JourneyConfig
from agents.journey_decision import JourneyRules, decode_observation
from agents.runtime import AgentShard, ShardConfig
from agents.state_reader import AgentStateReader
from data.log import open_log
from data.settings import get_settings
from data.ticks import tick_decision_id, tick_time
from environment.acting import Choice
from environment.observation import OBSERVATION_COLUMNS
from environment.population import ACTIONS
from environment.stream import stream_market
from policies.registry import PolicyRegistry
from policies.slots import BUILTIN, LoadedPolicy, RegistrySource, SlotPointers, SlotTarget, builtin_journey_policy
from serve.nba import NextBestAction

START = datetime(2024, 1, 1, tzinfo=UTC)
console = Console()


@dataclass
class Views:
    """Per day, the (N, 24) observations and (N,) actions of one path (simulator, agent or API)."""

    obs: dict[int, np.ndarray] = field(default_factory=dict)
    actions: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JourneyParity:
    """The largest absolute difference from the simulator per column, and the share of customer-days whose action
    equals the simulator's, for the agent and the API."""

    policy: str
    customer_days: int
    agent_columns: np.ndarray
    serve_columns: np.ndarray
    agent_agreement: float
    serve_agreement: float

    def ok(self, tolerance: float, min_agreement: float) -> bool:
        worst = max(float(self.agent_columns.max()), float(self.serve_columns.max()))
        return worst <= tolerance and min(self.agent_agreement, self.serve_agreement) >= min_agreement

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "customer_days": self.customer_days,
                "agent_columns": dict(zip(OBSERVATION_COLUMNS, self.agent_columns.tolist(), strict=True)),
                "serve_columns": dict(zip(OBSERVATION_COLUMNS, self.serve_columns.tolist(), strict=True)),
                "agent_agreement": self.agent_agreement, "serve_agreement": self.serve_agreement}


def serving_policy(spec: str | None, registry: Path) -> LoadedPolicy:
    """``NAME[@VERSION]`` (a registry policy, or a built-in with ``@builtin`` or no version), else what the
    journey slot serves now."""
    source = RegistrySource(registry, {"journey": builtin_journey_policy})
    if spec is None:
        target = SlotPointers(registry).target("journey")
    else:
        name, _, version = spec.partition("@")
        if not version:
            version = BUILTIN if not (registry / name).is_dir() else _latest(registry, name)
        target = SlotTarget(name, version)
    return LoadedPolicy(target.name, target.version, source.load("journey", target))


def _latest(registry: Path, name: str) -> str:
    return PolicyRegistry(registry).latest(name)


def run_parity(customers: int, days: int, seed: int, workdir: Path, policy: LoadedPolicy, shards: int = 2,
               progress: bool = False, api: bool = True, log_url: str | None = None) -> JourneyParity:
    """Run the comparison (see the module docstring), with its agent state (and log, unless ``log_url``) under
    ``workdir``; ``api=False`` leaves the API's read path out (its columns then read 0, its agreement 1)."""
    url = log_url or f"sqlite:///{workdir / 'events.db'}"
    log, state_dir = open_log(url), workdir / "agents"
    agent = JourneyAgent(JourneyConfig(holdout_share=0.0), policy=policy.policy, policy_version=policy.version)
    ids = [f"sim{seed}-c{n:07d}" for n in range(customers)]
    sim, served = Views(), Views()
    nba = NextBestAction(AgentStateReader(state_dir, "journey", shards).record, JourneyRules.of())
    with _shards(agent, url, state_dir, shards) as run_agents, Progress(disable=not progress, console=console) as bar:
        task = bar.add_task("days", total=days)

        def before_day(day: int) -> None:  # the agents catch up, then the API decides at this day's tick
            run_agents()
            if api:
                served.obs[day], served.actions[day] = _serve_day(nba, policy, ids, day)

        def on_decisions(day: int, obs: np.ndarray, allowed: np.ndarray, choice: Choice) -> None:
            sim.obs[day], sim.actions[day] = obs.copy(), choice.executed.copy()
            if not api:  # nothing to compare: the simulator's own figures
                served.obs[day], served.actions[day] = sim.obs[day], sim.actions[day]
            bar.update(task, completed=day + 1)

        stream_market(log, customers, days, policy=policy.policy, seed=seed, start=START, ticks=True,
                      before_day=before_day, on_decisions=on_decisions, policy_version=policy.version)
        run_agents()
    agents = _agent_views(log, ids, days)
    log.close()
    return _compare(policy, sim, agents, served)


@contextmanager
def _shards(agent: JourneyAgent, url: str, state_dir: Path, shards: int) -> Iterator[Any]:
    """The agent's shards (plain classes), and a function that catches them all up with the log."""
    base = ShardConfig(log_url=url, state_dir=state_dir, batch_size=get_settings().agent_batch_size)
    running = [AgentShard(agent, base.model_copy(update={"shard": i, "shards": shards}), start=False) for i in range(shards)]
    try:
        yield lambda: [s.catch_up() for s in running]
    finally:
        for s in running:
            s.close()


def _serve_day(nba: NextBestAction, policy: LoadedPolicy, ids: list[str], day: int) -> tuple[np.ndarray, np.ndarray]:
    """What /v1/next-best-action decides for every customer at this day's tick (with the tick decision's id)."""
    when = (START + timedelta(days=day)).date()
    now_us = int(tick_time(when).timestamp() * 1_000_000)
    decisions = [nba.decide(policy.policy, nba.record(cid), now_us, tick_decision_id(when, "journey", cid)) for cid in ids]
    return np.stack([d.observation for d in decisions]), np.array([ACTIONS.index(d.action) for d in decisions])


def _agent_views(log: Any, ids: list[str], days: int) -> Views:
    """The agent's tick decisions, read back from the log: its observation and action per customer-day."""
    wanted = {tick_decision_id((START + timedelta(days=d)).date(), "journey", cid): (d, i)
              for d in range(days) for i, cid in enumerate(ids)}
    out = Views({d: np.full((len(ids), len(OBSERVATION_COLUMNS)), np.nan, dtype=np.float32) for d in range(days)},
                {d: np.full(len(ids), -1) for d in range(days)})
    after = 0
    while True:
        page = log.read(after, 50_000, ["decision_made"])
        if page.next_after == after:
            return out
        after = page.next_after
        for e in page.events:
            where = wanted.get(e.event_id)
            if where is not None:
                props = orjson.loads(e.properties_json)
                out.obs[where[0]][where[1]] = decode_observation(props["context"]["obs"])
                out.actions[where[0]][where[1]] = ACTIONS.index(props["action"])


def _compare(policy: LoadedPolicy, sim: Views, agents: Views, api: Views) -> JourneyParity:
    def worst(other: Views) -> np.ndarray:
        diffs = [np.nan_to_num(np.abs(other.obs[d] - sim.obs[d]), nan=np.inf).max(axis=0) for d in sim.obs]
        return np.max(diffs, axis=0)

    def agreement(other: Views) -> float:
        same = sum(int((other.actions[d] == sim.actions[d]).sum()) for d in sim.actions)
        return same / max(1, sum(len(a) for a in sim.actions.values()))

    days = sum(len(a) for a in sim.actions.values())
    return JourneyParity(f"{policy.name}@{policy.version}", days, worst(agents), worst(api), agreement(agents), agreement(api))


def parity_table(result: JourneyParity, tolerance: float) -> Table:
    table = Table(title=f"journey observation parity: {result.policy}, {result.customer_days:,} customer-days",
                  caption="largest |difference| from the simulator's observation; ok at most the tolerance")
    for col in ("column", "agent", "API", ""):
        table.add_column(col, justify="left" if col == "column" else "right")
    for name, a, s in zip(OBSERVATION_COLUMNS, result.agent_columns, result.serve_columns, strict=True):
        mark = "[green]ok[/]" if max(a, s) <= tolerance else "[red]differs[/]"
        table.add_row(name, f"{a:.2e}", f"{s:.2e}", mark)
    table.add_row("[bold]actions equal[/]", f"{result.agent_agreement:.4%}", f"{result.serve_agreement:.4%}", "")
    return table


def parity_command(
    customers: int = typer.Option(1_000, "--customers", min=1),
    days: int = typer.Option(60, "--days", min=1, max=3650),
    seed: int = typer.Option(0, "--seed"),
    policy: str = typer.Option(None, "--policy", help="NAME[@VERSION]: a registry policy or a built-in heuristic "
                               "(default: what the journey slot serves)."),
    shards: int = typer.Option(2, "--shards", min=1, help="Shards the journey agent runs as."),
    tolerance: float = typer.Option(1e-6, "--tolerance", min=0.0),
    min_agreement: float = typer.Option(0.999, "--min-agreement", min=0.0, max=1.0),
    registry: Path = typer.Option(None, "--registry", help="Policy registry (default AME_POLICIES_DIR)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON."),
    log: str = typer.Option(None, "--log", help="Write the stream and the agent's decisions to this event log (an "
                            "empty one) and keep it, e.g. for `ame ope` (default: a temporary log)."),
    api: bool = typer.Option(True, "--api/--no-api", help="Also compare /v1/next-best-action's read path."),
) -> None:
    """Run the simulator's stream through the journey agent and /v1/next-best-action's read path, and compare every
    observation column and action with the simulator's (exit 0 only when they agree)."""
    root = registry or get_settings().policies_dir
    try:
        loaded = serving_policy(policy, Path(root))
    except (ValueError, LookupError) as error:
        raise typer.BadParameter(str(error), param_hint="--policy") from None
    with tempfile.TemporaryDirectory(prefix="ame-parity-") as folder:
        result = run_parity(customers, days, seed, Path(folder), loaded, shards, progress=console.is_terminal, api=api,
                            log_url=log)
    console.print(parity_table(result, tolerance))
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict() | {"ok": result.ok(tolerance, min_agreement)}, indent=2))
    if not result.ok(tolerance, min_agreement):
        console.print(f"[red]parity fails[/]: tolerance {tolerance:g}, actions must agree on {min_agreement:.1%}")
        raise typer.Exit(1)
    console.print("[green]parity holds[/]")
