"""Thin adapters from bid requests to the bidding policy: the paced bid price and the campaign-state cache
the handler reads without a network hop (the next best action is in :mod:`serve.nba`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

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
