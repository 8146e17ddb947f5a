"""Thin adapters from API requests to the policies (the policies themselves live in ``policies/``,
``environment/`` and ``agents/``): the journey observation of a profile, the paced bid price, the state
caches the handlers read without a network hop.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from data.projections.profile import CustomerProfile

logger = logging.getLogger(__name__)

ACTIONS = ("wait", "email", "sms", "push", "ad", "offer")
CHANNEL_OF_ACTION = {"email": "email", "sms": "sms", "push": "push", "ad": "ad", "offer": "email"}


# ---- next best action -------------------------------------------------------------------------------------


def journey_record(profile: CustomerProfile | None) -> dict[str, Any]:
    """The journey agent's record (``agents.journey``) as far as the profile projection knows it.

    The profile has no per-contact history, so caps are applied by the journey agent downstream, not here.
    """
    from agents.journey import new_record

    rec = new_record()
    if profile is None:
        return rec
    rec.update(
        first_us=profile.first_seen_us, purchase_us=profile.last_purchase_us, purchases=profile.purchases,
        revenue=profile.revenue, consent={c: [s.granted, s.at_us] for c, s in profile.consent.items()},
    )
    if profile.last_channel_at is not None:
        rec["visit_us"] = profile.last_channel_at[0]
    return rec


@dataclass(frozen=True, slots=True)
class ActionChoice:
    action: str
    channel: str | None
    propensity: float
    reason: str | None
    features_hash: str


class NextBestAction:
    """The journey policy on a profile, with the journey agent's consent and quiet-hour guardrails."""

    def __init__(self) -> None:
        from agents.journey import JourneyAgent

        self.agent = JourneyAgent()

    def decide(self, policy: Any, profile: CustomerProfile | None, now_us: int) -> ActionChoice:
        rec = journey_record(profile)
        obs = self.agent.observation(rec, now_us)
        features_hash = hashlib.blake2b(obs.tobytes(), digest_size=8).hexdigest()
        if self.agent.quiet(now_us):
            return ActionChoice("wait", None, 1.0, "quiet hours", features_hash)
        probs = _action_probabilities(policy, obs)
        if probs is not None:
            a = int(np.argmax(probs))
            propensity = float(max(probs[a], 1e-6))
        else:
            action, _ = policy.predict(obs, deterministic=True)
            a, propensity = int(np.asarray(action).reshape(-1)[0]), 1.0
        name = ACTIONS[a] if 0 <= a < len(ACTIONS) else "wait"
        channel = CHANNEL_OF_ACTION.get(name)
        if channel is not None and not self.agent.allowed(rec, channel):
            return ActionChoice("wait", None, 1.0, f"no consent on {channel}", features_hash)
        return ActionChoice(name, channel, round(min(1.0, propensity), 6), None, features_hash)


def _action_probabilities(policy: Any, obs: np.ndarray) -> np.ndarray | None:
    """Action probabilities where the policy offers them (an exported registry policy), else None."""
    fn = getattr(policy, "action_probabilities", None)
    if fn is None:
        return None
    probs = np.asarray(fn(obs[None, :]), dtype=np.float64).reshape(-1)
    return probs if probs.size == len(ACTIONS) else None


# ---- bidding --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BidConfig:
    """The served bidder's settings (``user_config.bidding``)."""

    default_value: float = 2.0
    max_bid: float = 50.0
    min_tmax_ms: int = 10


def bid_multiplier(policy: Any, value: float, pacing: Mapping[str, Any] | None) -> float:
    """The bidding policy's multiplier (``environment.bidding`` predictors: (E, 10) observation -> (E, 1))."""
    obs = np.zeros((1, 10), dtype=np.float32)
    obs[0, 0] = value
    if pacing:
        budget = float(pacing.get("budget") or 0.0) or 1.0
        obs[0, 4] = float(pacing.get("remaining_today", budget)) / budget
        obs[0, 6] = float(pacing.get("spend_today", 0.0)) / budget
    action, _ = policy.predict(obs, deterministic=True)
    return float(np.asarray(action, dtype=np.float64).reshape(-1)[0])


def bid_prices(policy: Any, imps: list[Any], pacing: Mapping[str, Any] | None, config: BidConfig) -> list[float | None]:
    """Price per impression: value x policy multiplier x pacing, capped; None where it is under the floor."""
    pace = 1.0 if not pacing else float(pacing.get("pacing_multiplier", 1.0))
    if pace <= 0 or (pacing and float(pacing.get("remaining_today", 1.0)) <= 0):
        return [None] * len(imps)
    out: list[float | None] = []
    for imp in imps:
        ext = getattr(imp, "ext", None) or (imp.model_extra or {}).get("ext") or {}
        value = float(ext.get("value", config.default_value)) if isinstance(ext, dict) else config.default_value
        price = round(min(config.max_bid, value * bid_multiplier(policy, value, pacing) * pace), 4)
        out.append(price if price > 0 and price >= imp.bidfloor else None)
    return out


class PacingCache:
    """Campaign pacing records from the bidding agent's shards, refreshed in batches by a background thread, so
    a bid reads a dict and never waits on an actor call. Campaigns join the refresh set when first asked for.

    :param fetch: campaign ids -> {campaign: record}; default: ``AgentSupervisor.bidding_state`` over Ray.
    """

    def __init__(self, fetch: Callable[[list[str]], dict[str, Any]] | None = None, interval_s: float = 1.0) -> None:
        self._fetch = fetch or _ray_bidding_fetch()
        self.interval_s = interval_s
        self._records: dict[str, Any] = {}
        self._wanted: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pacing-cache", daemon=True)
        self._thread.start()

    def get(self, campaign: str) -> Any:
        if campaign not in self._wanted:
            self._wanted.add(campaign)
        return self._records.get(campaign)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._wanted:
                continue
            try:
                self._records.update(self._fetch(sorted(self._wanted)))
            except Exception:  # noqa: BLE001 - pacing is advisory; stale beats down
                logger.debug("pacing refresh failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _ray_bidding_fetch() -> Callable[[list[str]], dict[str, Any]]:
    state: dict[str, Any] = {"sup": None, "tried": 0.0}

    def fetch(campaigns: list[str]) -> dict[str, Any]:
        import ray

        if not ray.is_initialized():
            return {}
        if state["sup"] is None:
            if time.monotonic() - state["tried"] < 10:
                return {}
            state["tried"] = time.monotonic()
            from agents.supervisor import AgentSupervisor

            sup = AgentSupervisor.attach()
            if not any(agent == "bidding" for agent, _ in sup.handles):
                return {}
            state["sup"] = sup
        refs = [state["sup"].bidding_state(c) for c in campaigns]
        return {c: r for c, r in zip(campaigns, ray.get(refs, timeout=2.0), strict=True) if r is not None}

    return fetch
