"""What one replica's handlers use: the engine, built once per replica from :class:`ServeArgs` and the
``user_config`` (:class:`Tunables`).

The engine loads the policies into their slots (hot-swapped by :mod:`serve.policies`), opens the log and the state
store, keeps bidding state in a cache refreshed in batches, and hands decisions to a background batcher
(:mod:`serve.decision_log`). Its reads that touch a file run on its small thread pool (:meth:`Engine.run_io`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agents.journey_decision import JourneyRules
from agents.state_reader import AgentStateReader
from data.dead_letter_counts import dead_letter_counts
from data.log import EventLog, open_log, positional
from data.projections.profile import CustomerProfile, ProfileProjection
from data.projections.store import open_state_store
from data.settings import Settings, get_settings
from policies.creative.store import open_store
from policies.scoring.drift_record import load_drift_checks
from policies.scoring.errors import ScoringError
from policies.slots import BUILTINS, SLOTS, PolicySlot, RegistrySource, SlotTarget
from serve.auth import ApiKey, KeyStore
from serve.decide import BidConfig, PacingCache
from serve.decision_log import DecisionLogger
from serve.key_file import ReloadingKeys
from serve.metrics import ServeMetrics
from serve.nba import NextBestAction
from serve.ops_metrics import OpsSources, agent_statuses_over_ray
from serve.policies import PolicyWatcher

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ServeArgs(BaseModel):
    """What ``build_app`` takes (the ``args:`` of serve/config.yaml). Empty values fall back to ``AME_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_log: str = ""
    state_store: str = ""
    policies_dir: str = ""
    agent_state_dir: str = Field("", description="The agents' shard stores (AME_HOME/agents): the journey state read here.")
    agent_shards: int = Field(0, ge=0, description="Shards the agents run as (0: AME_AGENT_SHARDS).")
    models_dir: str = ""
    creative_store: str = ""
    api_keys_file: str = Field("", description="JSON file of hashed keys (serve/auth.py); AME_SERVE_API_KEYS_FILE.")
    api_keys: list[ApiKey] = Field(default_factory=list, description="Hashed keys given inline (tests, small installs).")
    max_body_bytes: int = Field(1_048_576, ge=1_024, le=64 * 1_048_576)
    pacing_from_agents: bool = Field(True, description="Read from the agents' actors over Ray: campaign pacing (the "
                                     "bidding agent), and every shard's status for /metrics.")


class BiddingTunables(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    default_value: float = Field(2.0, gt=0)
    max_bid: float = Field(50.0, gt=0)
    min_tmax_ms: int = Field(10, ge=0)


class Tunables(BaseModel):
    """The deployment's ``user_config``, applied by ``reconfigure`` without a restart."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    policies: dict[str, str] = Field(default_factory=dict, description="Pinned policies (slot -> NAME@VERSION, VERSION "
                                     "may be builtin); unpinned slots follow what `ame policies promote` points them at.")
    poll_interval_s: float = Field(1.0, gt=0, le=300)
    bidding: BiddingTunables = BiddingTunables()
    decision_batch_size: int = Field(512, ge=1, le=100_000)
    decision_flush_interval_s: float = Field(0.05, gt=0, le=10)
    score_reasons: int = Field(3, ge=0, le=20)


def pinned_target(tunables: Tunables, slot: str) -> SlotTarget | None:
    """The target pinned for ``slot`` in ``user_config.policies`` (NAME@VERSION), if any."""
    text = tunables.policies.get(slot)
    if not text:
        return None
    name, sep, version = text.partition("@")
    if not sep or not name or not version:
        raise ValueError(f"user_config.policies.{slot} = {text!r}: pin a policy as NAME@VERSION "
                         "(e.g. journey-ppo@v0003, offer_every_k@builtin)")
    return SlotTarget(name, version)


def api_keys(args: ServeArgs, settings: Settings) -> KeyStore | ReloadingKeys:
    """The keys given inline and those of the key file (``args.api_keys_file``, else ``AME_SERVE_API_KEYS_FILE``),
    which is re-read when it changes (every ``AME_SERVE_API_KEYS_RELOAD_S``)."""
    path = args.api_keys_file or settings.serve_api_keys_file
    keys = ReloadingKeys(path, args.api_keys, settings.serve_api_keys_reload_s) if path else KeyStore(args.api_keys)
    if not len(keys):
        logger.warning("no API keys configured: every route except /healthz, /metrics and /docs answers 401")
    return keys


class Engine:
    """Everything one replica's handlers use, built once in the replica (``__init__`` loads the policies).

    :param args: where the log, the stores and the registries are.
    :param tunables: the ``user_config`` (default: its defaults).
    :param source: where the policy slots load from (default: the registry of ``args.policies_dir``).
    :param pacing: the bidding record cache (default: read from the bidding agent's actors, or none).
    """

    def __init__(self, args: ServeArgs, tunables: Tunables | None = None, source: Any = None,
                 pacing: PacingCache | None = None) -> None:
        settings = get_settings()
        self.args = args
        self.tunables = tunables or Tunables()
        self.log_url = args.event_log or settings.event_log_url()
        self.max_event_bytes = settings.max_event_bytes
        self.keys = api_keys(args, settings)
        self.metrics = ServeMetrics(ops=self._ops_sources(Path(args.models_dir or settings.models_dir)))
        self.log: EventLog = open_log(self.log_url)
        self.state = open_state_store(args.state_store or settings.state_store_url())
        with self.state.transaction() as conn:
            ProfileProjection().create_tables(conn)  # an empty projection reads as "no such customer", not 500
        self.io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="serve-io")
        self.decisions = DecisionLogger(lambda: open_log(self.log_url), self.tunables.decision_batch_size,
                                        self.tunables.decision_flush_interval_s)
        self.source = source or RegistrySource(Path(args.policies_dir or settings.policies_dir), BUILTINS)
        self.slots = {name: PolicySlot(name, self.source, pinned_target(self.tunables, name)) for name in SLOTS}
        for slot in self.slots.values():
            slot.on_swap = lambda loaded: self.metrics.policy_swaps.labels(loaded.name, self.metrics.replica).inc()
            slot.refresh()
        self.watcher = PolicyWatcher(self.slots, self.tunables.poll_interval_s)
        self.pacing = pacing or (PacingCache() if args.pacing_from_agents else PacingCache(lambda c: {}))
        self.journey_state = AgentStateReader(Path(args.agent_state_dir or settings.home / "agents"), "journey",
                                              args.agent_shards or settings.agent_shards)
        self.nba = NextBestAction(self.journey_state.record, JourneyRules.of())
        self.bid_config = BidConfig(**self.tunables.bidding.model_dump())
        self._models: dict[str, Any] | None = None
        self._creatives: Any = None
        self.closed = False

    def _ops_sources(self, models_dir: Path) -> OpsSources:
        """Where /metrics reads the engine-wide figures: the agents over Ray, this replica's log, the campaigns its
        pacing cache follows, and the drift checks recorded beside the models."""
        agents = agent_statuses_over_ray if self.args.pacing_from_agents else list
        return OpsSources(agent_statuses=agents, dead_letters=lambda: dead_letter_counts(self.log),
                          campaign_records=lambda: self.pacing.records(), drift_checks=lambda: load_drift_checks(models_dir))

    # -- tunables and health ---------------------------------------------------------------------------

    def apply(self, tunables: Tunables) -> None:
        """Apply a new ``user_config``: pins (a swap where they change), poll interval, bidder, batcher."""
        self.tunables = tunables
        self.bid_config = BidConfig(**tunables.bidding.model_dump())
        self.watcher.interval_s = tunables.poll_interval_s
        self.decisions.batch_size = tunables.decision_batch_size
        self.decisions.flush_interval_s = tunables.decision_flush_interval_s
        for name, slot in self.slots.items():
            slot.pinned = pinned_target(tunables, name)
            slot.refresh()

    def check_health(self) -> None:
        for slot in self.slots.values():
            slot.current  # raises PolicyNotLoaded  # noqa: B018
        if self.closed:
            raise RuntimeError("the engine is shut down")

    def close(self) -> None:
        """Stop the background threads and append every queued decision (graceful shutdown)."""
        if self.closed:
            return
        self.closed = True
        self.watcher.stop()
        self.pacing.stop()
        self.decisions.close()
        self.io.shutdown(wait=True)
        self.journey_state.close()
        self.log.close()

    # -- reads (blocking: handlers call them through run_io) ---------------------------------------------

    async def run_io(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the engine's I/O threads, so a file read never blocks the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    def event_lag(self) -> int:
        return max(0, positional(self.log, "the event-lag metric").head() - self.state.position("profile"))

    def profile(self, customer_id: str) -> CustomerProfile | None:
        """The customer's profile as the projection holds it (None: no such customer yet)."""
        with self.state.reading() as conn:
            return ProfileProjection().get(conn, customer_id)

    def opted_out(self, customer_id: str, channel: str) -> bool:
        """True where the customer's latest consent_changed or unsubscribe on ``channel`` withdrew consent."""
        profile = self.profile(customer_id)
        return profile is not None and profile.consent_for(channel) is False

    def scores(self, profile: CustomerProfile) -> list[dict[str, Any]]:
        """The served scoring models' scores of ``profile``, with their top reasons."""
        out = []
        now = datetime.now(UTC)
        for kind, model in self.scoring_models().items():
            try:
                s = model.score_profile(profile, now, top_k=self.tunables.score_reasons)
            except ScoringError as error:
                logger.info("%s model not served on profiles: %s", kind, error)
                continue
            out.append({"model": kind, "model_version": model.version, "score": round(s.score, 2),
                        "probability": round(s.probability, 6), "tier": s.tier,
                        "reasons": [{"feature": r.feature, "contribution": r.contribution, "value": r.value} for r in s.reasons]})
        return out

    # -- collaborators loaded on first use --------------------------------------------------------------

    def scoring_models(self) -> dict[str, Any]:
        if self._models is None:
            from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost, which most replicas never use

            registry = ModelRegistry(self.args.models_dir or None)
            models: dict[str, Any] = {}
            for kind in ("lead", "churn"):
                try:
                    models[kind] = registry.load_scoring(kind)
                except Exception as error:  # noqa: BLE001 - a kind without a trained model is simply not scored
                    logger.info("no %s scoring model served: %s", kind, error)
            self._models = models
        return self._models

    def creative_store(self) -> Any:
        if self._creatives is None:
            self._creatives = open_store(self.args.creative_store or None)
        return self._creatives
