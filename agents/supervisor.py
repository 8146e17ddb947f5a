"""The supervisor: starts every agent's shards as named Ray actors, reports on them and stops them.

Shard actors are named ``<agent>-<shard>of<N>`` in the Ray namespace (``ame`` by default), so another
process (``ame agents status``) finds them by name. With ``detached=True`` they outlive the process that
started them (on a running cluster, ``ray start --head``). Given a :class:`~agents.projector.ProjectorConfig`,
the supervisor also runs the projector actor (``projector:profile``) that keeps the profiles Serve reads current.

The log URL picks the kind of consumer (:func:`consumer_kind`): an embedded log (``sqlite:///``) is read by
position (:class:`~agents.runtime.AgentShard`, :class:`~agents.projector.ProjectionRunner`); a ``pubsub://`` log has
no positions, so each shard and the projector consume a subscription of their own
(:class:`~agents.pubsub_shard.PubSubAgentShard`, :class:`~agents.pubsub_projector.PubSubProjectionRunner`). Both
kinds answer the same calls, so ``status``, ``down`` and ``ame agents status`` do not tell them apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from agents.projector import PROJECTOR_PREFIX, ProjectorConfig, projector_actor_class
from agents.runtime import Agent, ShardConfig, shard_actor_class
from data.log import open_log
from data.settings import get_settings
from data.sharding import shard_of
from data.ticks import TICK_ACTION, tick_event  # noqa: F401 - re-exported for the CLI and tests

log = logging.getLogger(__name__)


class SupervisorError(RuntimeError):
    """The agents cannot be found or started."""


ConsumerKind = Literal["positions", "subscription"]


def actor_name(agent: str, shard: int, shards: int) -> str:
    return f"{agent}-{shard}of{shards}"


def consumer_kind(log_url: str) -> ConsumerKind:
    """How agents consume the log at ``log_url``: by position (embedded logs) or by subscription (Pub/Sub)."""
    return "subscription" if log_url.startswith("pubsub://") else "positions"


class AgentSupervisor:
    """Starts, watches and stops the shard actors of several agents.

    :param log_url: the event log every shard reads and appends to.
    :param state_dir: folder of the shards' state stores.
    :param agents: the agents to run (each is pickled into its shards).
    :param shards: shards per agent.
    :param detached: let the actors outlive this process.
    :param projector: also run the projector actor with this configuration (None: no projector).
    :param env: environment variables for every actor (Ray's ``runtime_env``), e.g. ``PUBSUB_EMULATOR_HOST``;
        None: the actors inherit the cluster nodes' environment.
    :param resources: Ray custom resources every actor asks for, which pins them to the nodes that offer them (e.g.
        ``{"agents": 0.01}`` on a cluster whose agents' nodes start with ``--resources '{"agents": 1}'``); a
        restarted actor waits for such a node.
    """

    def __init__(
        self,
        log_url: str,
        state_dir: Path,
        agents: Sequence[Agent] = (),
        shards: int = 2,
        namespace: str = "ame",
        detached: bool = False,
        batch_size: int | None = None,
        poll_interval_s: float | None = None,
        max_restarts: int = -1,
        snapshot_every: int = 0,
        projector: ProjectorConfig | None = None,
        env: Mapping[str, str] | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        self.log_url = log_url
        self.state_dir = Path(state_dir)
        self.agents = list(agents)
        self.shards = shards
        self.namespace = namespace
        self.detached = detached
        self.max_restarts = max_restarts
        pacing = {k: v for k, v in (("batch_size", batch_size), ("poll_interval_s", poll_interval_s)) if v is not None}
        self.base = ShardConfig(log_url=log_url, state_dir=self.state_dir, snapshot_every=snapshot_every, **pacing)
        self.projector = projector
        self.kind = consumer_kind(log_url)
        self.env = dict(env or {})
        self.resources = dict(resources or {})
        self.handles: dict[tuple[str, int], Any] = {}

    def up(self, start: bool = True) -> dict[tuple[str, int], Any]:
        """Start every shard (idempotent: shards already running by that name are reused). With
        ``start=False`` the actors wait for :meth:`start` (benchmarks start them all at once)."""
        import ray  # lazy: Ray is heavy

        for agent in self.agents:
            for shard in range(self.shards):
                config = self.base.model_copy(update={"shard": shard, "shards": self.shards})
                self.handles[(agent.name, shard)] = self._up_shard(agent, config, start)
        if self.projector is not None:
            self._up_projector(self.projector, start)
        ray.get([h.ping.remote() for h in self.handles.values()])
        return self.handles

    def _options(self, name: str) -> dict[str, Any]:
        options: dict[str, Any] = {"name": name, "namespace": self.namespace, "get_if_exists": True}
        if self.detached:
            options["lifetime"] = "detached"
        if self.env:
            options["runtime_env"] = {"env_vars": self.env}
        if self.resources:
            options["resources"] = self.resources
        return options

    def _up_shard(self, agent: Agent, config: ShardConfig, start: bool) -> Any:
        options = self._options(actor_name(agent.name, config.shard, config.shards))
        if self.kind == "subscription":
            from agents.pubsub_shard import pubsub_shard_actor_class  # lazy: loads the Google Pub/Sub client

            cls = pubsub_shard_actor_class(self.max_restarts).options(**options)
            return cls.remote(agent, config.log_url, config.state_dir, config.shard, config.shards, start,
                              config.state_store)
        return shard_actor_class(self.max_restarts).options(**options).remote(agent, config, start)

    def _up_projector(self, config: ProjectorConfig, start: bool) -> None:
        make = projector_actor_class
        if self.kind == "subscription":
            from agents.pubsub_projector import pubsub_projector_actor_class  # lazy: loads the Google Pub/Sub client

            make = pubsub_projector_actor_class
        options = self._options(config.actor_name)
        self.handles[(config.actor_name, 0)] = make(self.max_restarts).options(**options).remote(config, start)

    @classmethod
    def attach(cls, namespace: str = "ame") -> AgentSupervisor:
        """The supervisor of the shards already running in ``namespace`` (for ``status`` and ``down``)."""
        import ray  # lazy: Ray is heavy

        sup = cls(log_url="", state_dir=Path("."), namespace=namespace)
        for entry in ray.util.list_named_actors(all_namespaces=True):
            if entry.get("namespace") != namespace:
                continue
            name = entry["name"]
            if name.startswith(PROJECTOR_PREFIX):
                sup.handles[(name, 0)] = ray.get_actor(name, namespace=namespace)
                continue
            agent, _, rest = name.rpartition("-")
            if "of" not in rest or not agent:
                continue
            shard, _, shards = rest.partition("of")
            sup.shards = int(shards)
            sup.handles[(agent, int(shard))] = ray.get_actor(name, namespace=namespace)
        return sup

    def status(self, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Every shard's status; a shard that does not answer in time (restarting) is reported as such."""
        import ray  # lazy: Ray is heavy

        keys = sorted(self.handles)
        refs = [self.handles[k].status.remote() for k in keys]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        done = set(ready)
        out: list[dict[str, Any]] = []
        for key, ref in zip(keys, refs, strict=True):
            try:
                if ref not in done:
                    raise TimeoutError("no answer")
                out.append(ray.get(ref))
            except Exception as error:  # noqa: BLE001 - an actor that cannot answer is reported as down
                shards = 1 if key[0].startswith(PROJECTOR_PREFIX) else self.shards
                out.append({"agent": key[0], "shard": key[1], "shards": shards, "running": False, "last_error": str(error)})
        return out

    def wait_caught_up(self, timeout_s: float = 60.0, settle_s: float = 0.2) -> bool:
        """Wait until every shard has read up to the log's head and the head stopped moving (embedded logs)."""
        if self.kind == "subscription":
            raise SupervisorError("a Pub/Sub log has no head position to wait for; watch the shards' lag in status()")
        deadline = time.monotonic() + timeout_s
        head = -1
        log_ = open_log(self.log_url)
        try:
            while time.monotonic() < deadline:
                now = log_.head()
                states = self.status()
                if now == head and all(s.get("running") and s.get("position") == now for s in states):
                    return True
                head = now
                time.sleep(settle_s)
            return False
        finally:
            log_.close()

    def start(self) -> None:
        """Start the loops of shards made with ``up(start=False)``."""
        import ray  # lazy: Ray is heavy

        ray.get([h.start.remote() for h in self.handles.values()])

    def actor(self, agent: str, shard: int) -> Any:
        return self.handles[(agent, shard)]

    def bidding_state(self, campaign_id: str) -> Any:
        """An ObjectRef of one campaign's budget and pacing record, from the bidding shard that owns it."""
        return self.actor("bidding", shard_of(campaign_id, self.shards)).record.remote(campaign_id)

    def tick(self, day: date) -> int:
        """Append the daily tick for ``day`` (the journey agent re-decides for every customer)."""
        log_ = open_log(self.log_url)
        try:
            return log_.append([tick_event(day)]).appended
        finally:
            log_.close()

    def down(self) -> int:
        """Stop the loops after their current batch and kill the actors (no restart). Returns shards stopped."""
        import ray  # lazy: Ray is heavy

        refs = [h.stop.remote() for h in self.handles.values()]
        ray.wait(refs, num_returns=len(refs), timeout=get_settings().agent_stop_timeout_s)
        for handle in self.handles.values():
            ray.kill(handle, no_restart=True)
        n = len(self.handles)
        self.handles.clear()
        return n
