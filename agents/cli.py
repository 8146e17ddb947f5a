"""``ame agents up|status|down|tick``: run the agents as sharded Ray actors and watch them."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from agents.bidding import BiddingAgent
from agents.creative import CreativeAgent
from agents.crm_tasks import CrmTaskAgent
from agents.journey import JourneyAgent, JourneyConfig
from agents.lift import holdout_lift
from agents.projector import ProjectorConfig
from agents.runtime import Agent
from agents.scheduler_jobs import start_scheduler
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor, tick_event
from channels.dispatcher import DispatchAgent, DispatchConfig
from data.log import open_log
from data.postgres_db import is_postgres_url
from data.settings import get_settings

console = Console()
err = Console(stderr=True)

agents_app = typer.Typer(help="The agents: sharded Ray actors that consume the log and append decisions.", no_args_is_help=True)

LogOption = Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Ray cluster address (e.g. auto). Without it, `up` runs a local cluster in the foreground.")
]
NamespaceOption = Annotated[str, typer.Option("--namespace", help="Ray namespace of the shard actors.")]
KNOWN = ("scoring", "journey", "bidding", "creative", "dispatch", "crm_tasks")


def build_agents(names: list[str]) -> list[Agent]:
    """The agents by name, with their default configuration (scoring uses the registry's models if any)."""
    settings = get_settings()
    out: list[Agent] = []
    for name in names:
        if name == "scoring":
            out.append(ScoringAgent(models_dir=settings.models_dir))  # loads its models where it runs
        elif name == "journey":
            out.append(JourneyAgent(JourneyConfig(holdout_share=settings.agent_holdout_share, policies_dir=settings.policies_dir)))
        elif name == "bidding":
            out.append(BiddingAgent())
        elif name == "creative":
            out.append(CreativeAgent())
        elif name == "dispatch":  # sends the journey's decisions through the providers of AME_CHANNELS_*
            out.append(DispatchAgent(DispatchConfig(ledger_url=settings.state_store_url())))
        elif name == "crm_tasks":  # task_created -> Salesforce Tasks, through the org of AME_SALESFORCE_*
            out.append(CrmTaskAgent())
        else:
            raise typer.BadParameter(f"unknown agent {name!r}; known: {', '.join(KNOWN)}")
    return out


def _ray_init(address: str | None, namespace: str, resources: Mapping[str, float] | None = None) -> Any:
    """Connect to the cluster at ``address``, or start a local one (which then offers ``resources`` itself)."""
    import ray  # lazy: Ray is heavy

    offered = {name: max(1.0, amount * 1_000) for name, amount in (resources or {}).items()} if address is None else None
    try:
        ray.init(address=address, namespace=namespace, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True, resources=offered)
    except ConnectionError as error:
        err.print(f"[red]error:[/] no Ray cluster at {address!r} ({error}); start one with `ray start --head`, "
                  "or run `ame agents up` without --address")
        raise typer.Exit(2) from None
    return ray


def _require_resources(ray: Any, resources: Mapping[str, float]) -> None:
    """Exit 2 naming the resources no node offers (the actors would wait for such a node for ever)."""
    missing = sorted(set(resources) - set(ray.cluster_resources()))
    if missing:
        example = json.dumps(dict.fromkeys(missing, 1))
        err.print(f"[red]error:[/] no node of the Ray cluster offers {', '.join(map(repr, missing))}, which "
                  f"AME_AGENT_RESOURCES asks for: start the agents' nodes with `ray start --resources '{example}'` "
                  "(on KubeRay: the agents group's `resources`), or unset AME_AGENT_RESOURCES")
        raise typer.Exit(2)


def status_table(rows: list[dict[str, Any]], lift_line: str | None = None) -> Table:
    table = Table(title="agents", caption=lift_line)
    for col in ("agent", "shard", "position", "lag", "events/s", "events", "appended", "restarts", "errors", "state"):
        table.add_column(col, justify="left" if col in ("agent", "state") else "right")
    for s in sorted(rows, key=lambda r: (r["agent"], r["shard"])):
        state = "running" if s.get("running") else f"[red]down[/] {s.get('last_error') or ''}"
        table.add_row(
            s["agent"], f"{s['shard']}/{s.get('shards', '?')}", f"{s.get('position', 0):,}", f"{s.get('lag', 0):,}",
            f"{s.get('events_per_s', 0.0):,.0f}", f"{s.get('events', 0):,}", f"{s.get('appended', 0):,}",
            str(s.get("restarts", "?")), str(s.get("errors", "?")), state,
        )
    return table


def _lift_line(log_url: str | None) -> str | None:
    try:
        log = open_log(log_url)
        try:
            return holdout_lift(log).line()
        finally:
            log.close()
    except Exception as error:  # noqa: BLE001 - the table is still worth showing without the lift
        return f"lift: unavailable ({error})"


@agents_app.command("up")
def up(
    agents: Annotated[list[str], typer.Option("--agent", "-a", help="Agents to run (repeat).")] = ["scoring", "journey", "bidding"],  # noqa: B006
    shards: Annotated[int | None, typer.Option(help="Shards per agent (default: AME_AGENT_SHARDS).")] = None,
    log: LogOption = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Folder of the shards' state (default: AME_HOME/agents).")] = None,
    state_store: Annotated[
        str | None,
        typer.Option("--state-store", help="State store the projector keeps the profiles in, where Serve reads them "
                     "(default: AME_STATE_STORE)."),
    ] = None,
    projector: Annotated[bool, typer.Option(help="Run the projector actor that keeps profiles and consent current.")] = True,
    scheduler: Annotated[bool, typer.Option(help="Run the scheduler actor (the jobs of `ame schedule list`).")] = True,
    address: AddressOption = None,
    namespace: NamespaceOption = "ame",
) -> None:
    """Start the shard actors and the projector actor. With --address they are detached and keep running; without,
    a local cluster runs them in the foreground with a live status table until Ctrl-C."""
    settings = get_settings()
    log_url = log or settings.event_log_url()
    folder = (state_dir or settings.home / "agents").resolve()
    store_url = state_store or settings.state_store_url()
    if not store_url.startswith("sqlite:///") and not is_postgres_url(store_url):
        err.print(f"[red]error:[/] unknown state store URL {store_url!r}: expected sqlite:///path or postgresql://…")
        raise typer.Exit(2)
    projector_config = ProjectorConfig.from_settings(log_url, store_url, settings) if projector else None
    ray = _ray_init(address, namespace, settings.agent_resources)
    _require_resources(ray, settings.agent_resources)
    sup = AgentSupervisor(log_url, folder, build_agents(agents), shards=shards or settings.agent_shards, namespace=namespace,
                          detached=address is not None, batch_size=settings.agent_batch_size, projector=projector_config,
                          resources=settings.agent_resources)
    sup.up()
    if scheduler:
        sup.handles[("scheduler", 0)] = start_scheduler(log_url, namespace, detached=address is not None,
                                                        resources=settings.agent_resources)
    if address is not None:
        console.print(f"started {len(sup.handles)} actors in namespace {namespace!r}; `ame agents status --address {address}`")
        return
    try:
        with Live(status_table(sup.status()), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(2)
                live.update(status_table(sup.status(), _lift_line(log_url)))
    except KeyboardInterrupt:
        pass
    finally:
        console.print(f"stopped {sup.down()} actors")
        ray.shutdown()


@agents_app.command("status")
def status(address: AddressOption = "auto", namespace: NamespaceOption = "ame", log: LogOption = None) -> None:
    """Lag, events/s and restarts per shard and of the projector, and the lift against the holdout."""
    _ray_init(address, namespace)
    sup = AgentSupervisor.attach(namespace)
    if not sup.handles:
        err.print(f"no agents running in namespace {namespace!r}; start them with `ame agents up --address {address}`")
        raise typer.Exit(1)
    console.print(status_table(sup.status(), _lift_line(log)))


@agents_app.command("down")
def down(address: AddressOption = "auto", namespace: NamespaceOption = "ame") -> None:
    """Stop every shard and the projector after their current batch (their state and positions are committed)."""
    _ray_init(address, namespace)
    console.print(f"stopped {AgentSupervisor.attach(namespace).down()} actors")


@agents_app.command("tick")
def tick(day: Annotated[str | None, typer.Argument(help="YYYY-MM-DD (default: today, UTC).")] = None, log: LogOption = None) -> None:
    """Append the daily tick: the journey agent asks its policy again for every customer."""
    when = date.fromisoformat(day) if day else datetime.now(UTC).date()
    appended = open_log(log).append([tick_event(when)]).appended
    console.print(f"tick for {when}: {'appended' if appended else 'already in the log'}")
