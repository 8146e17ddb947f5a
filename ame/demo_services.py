"""The demo's services: a local Ray, the agents (journey, bidding, scoring) with the projector, and the decision API
on Ray Serve, and the adapters through which the closed loop drives the running agents."""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import socket
from pathlib import Path
from typing import Any

import orjson

from agents.bidding import BiddingAgent, BiddingConfig
from agents.journey import JourneyAgent, JourneyConfig
from agents.projector import ProjectorConfig
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor
from data.settings import get_settings
from environment.config import AuctionModel
from serve.app import build_app
from serve.auth import generate_key

logger = logging.getLogger(__name__)
APP_NAME = "ame-demo"
NAMESPACE = "ame"  # the Serve replica's pacing cache finds the bidding agent's shards here
AGENTS = ("scoring", "journey", "bidding")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and what to do."""


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def request(port: int, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
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


def fresh_folder(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def start_ray() -> bool:
    """Start a local 2-CPU Ray unless one is already initialized (a test's session cluster). Returns whether
    the demo owns it (and so shuts it down)."""
    import ray  # heavy: only where the demo runs the engine

    if ray.is_initialized():
        return False
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=NAMESPACE)
    return True


def start_agents(log_url: str, state_dir: Path, state_url: str, registry: Path, budgets: dict[str, float],
                 market: AuctionModel, holdout_share: float) -> AgentSupervisor:
    """The scoring, journey and bidding agents (one shard each) and the projector that keeps the profiles (consent)
    Serve reads current. The journey agent serves the demo registry's journey slot; the bidding agent knows the
    demo campaigns' budgets."""
    settings = get_settings()
    agents = [ScoringAgent(models_dir=settings.models_dir),
              JourneyAgent(JourneyConfig(holdout_share=holdout_share, policies_dir=registry)),
              BiddingAgent(BiddingConfig(daily_budgets=budgets, market=market))]
    sup = AgentSupervisor(log_url, state_dir, agents, shards=1, namespace=NAMESPACE, batch_size=settings.agent_batch_size,
                          projector=ProjectorConfig.from_settings(log_url, state_url, settings))
    sup.up()
    return sup


class RayAgents:
    """The closed loop's engine: the running shards of one agent, caught up by a call on each actor."""

    def __init__(self, sup: AgentSupervisor, agent: str) -> None:
        self.handles = [h for (name, _), h in sup.handles.items() if name == agent]
        if not self.handles:
            raise DemoError(f"no {agent} agent is running")

    def catch_up(self) -> None:
        import ray  # heavy: only where the agents run on Ray

        ray.get([h.catch_up.remote() for h in self.handles])


def bidding_record(sup: AgentSupervisor) -> Any:
    """A campaign's record from the running bidding agent (what /v1/bid's cache reads)."""
    import ray  # heavy: only where the agents run on Ray

    return lambda campaign: ray.get(sup.bidding_state(campaign))


def new_demo_key(path: Path) -> str:
    """A key with the ingest and decide scopes, stored hashed in ``path`` (as ``ame serve keys new`` does)."""
    token, key = generate_key("demo", ["decide", "ingest"])
    path.write_bytes(orjson.dumps({"keys": [key.model_dump(mode="json")]}, option=orjson.OPT_INDENT_2))
    return token


def start_serve(port: int, args: dict[str, Any]) -> None:
    from ray import serve  # heavy: only where the API is deployed

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args, num_replicas=1, user_config={"poll_interval_s": 1.0}), name=APP_NAME, route_prefix="/")


def stop_serve() -> None:
    from ray import serve  # heavy: only where the API is deployed

    try:
        serve.delete(APP_NAME)
        serve.shutdown()
    except Exception:
        logger.debug("serve shutdown", exc_info=True)

