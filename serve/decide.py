"""The bid price from the bidding agent's campaign record, and the cache the handler reads records from without
a network hop (the next best action is in :mod:`serve.nba`).

Price per impression = the impression's estimated value (``imp.ext.value``) x the served bidder's multiplier,
capped at ``max_bid``. The multiplier is read on the campaign's view (:func:`policies.bid_serving.campaign_view`:
the facts and the pacing controller the agent folded, moved to now): the controller, with a registered residual
inside it, paces once; a bidding policy without a controller reads the bid observation. No bid once the day's
budget is spent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agents.supervisor import AgentSupervisor
from environment.auction_market import bid_spec
from environment.bid_facts import BidSpec, global_slot
from environment.config import load_market_config
from policies.bid_serving import campaign_view, current_record, view_multiplier
from policies.bidder import ProfilePacing, as_bidder

logger = logging.getLogger(__name__)

# ---- bidding --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BidConfig:
    """The served bidder's settings (``user_config.bidding``)."""

    default_value: float = 2.0
    max_bid: float = 50.0
    min_tmax_ms: int = 10


@dataclass(frozen=True, slots=True)
class BidQuote:
    """A campaign's bid multiplier now and the budget it has left today."""

    multiplier: float
    budget_left: float


@lru_cache(maxsize=1)
def default_spec() -> BidSpec:
    """The spec of a campaign the bidding agent has not folded yet: the packaged market's."""
    return bid_spec(load_market_config().auction)


def bid_multiplier(policy: Any, record: Mapping[str, Any] | None, now_us: int, spec: BidSpec | None = None) -> BidQuote:
    """The served bidder's multiplier on a campaign at ``now_us``, from the bidding agent's ``record`` (None: a
    campaign with no auction folded yet, read under ``spec``)."""
    bidder = as_bidder(policy)
    params = bidder.params if isinstance(bidder, ProfilePacing) else None
    view = campaign_view(record, now_us, spec or default_spec(), params)
    return BidQuote(view_multiplier(bidder, view), view.budget_left)


def bid_prices(imps: list[Any], quote: BidQuote, config: BidConfig) -> list[float | None]:
    """Price per impression: estimated value x multiplier, capped; None under the floor or with no budget left."""
    if quote.budget_left <= 0 or quote.multiplier <= 0:
        return [None] * len(imps)
    out: list[float | None] = []
    for imp in imps:
        ext = getattr(imp, "ext", None) or (imp.model_extra or {}).get("ext") or {}
        value = float(ext.get("value", config.default_value)) if isinstance(ext, dict) else config.default_value
        price = round(min(config.max_bid, value * quote.multiplier), 4)
        out.append(price if price > 0 and price >= imp.bidfloor else None)
    return out


class PacingCache:
    """Campaign records from the bidding agent's shards, refreshed in batches by a background thread, so a bid
    reads a dict and never waits on an actor call. Campaigns join the refresh set when first asked for. A quote
    is kept until the record, the slot or the policy changes (the multiplier moves once a slot).

    :param fetch: campaign ids -> {campaign: record}; default: ``AgentSupervisor.bidding_state`` over Ray.
    """

    def __init__(self, fetch: Callable[[list[str]], dict[str, Any]] | None = None, interval_s: float = 1.0) -> None:
        self._fetch = fetch or _ray_bidding_fetch()
        self.interval_s = interval_s
        self._records: dict[str, Any] = {}
        self._quotes: dict[str, tuple[Any, int, Any, BidQuote]] = {}  # campaign -> (record, slot, policy, quote)
        self._wanted: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pacing-cache", daemon=True)
        self._thread.start()

    def get(self, campaign: str) -> Any:
        if campaign not in self._wanted:
            self._wanted.add(campaign)
        return self._records.get(campaign)

    def records(self) -> dict[str, Any]:
        """The records of every campaign this cache follows, as last refreshed (what /metrics reports)."""
        return dict(self._records)

    def quote(self, policy: Any, campaign: str, now_us: int) -> BidQuote:
        """The campaign's multiplier and budget left at ``now_us`` under ``policy`` (see :func:`bid_multiplier`)."""
        record = current_record(self.get(campaign))
        spec = default_spec()
        g = global_slot(now_us, int(record["spec"]["slots_per_day"]) if record else spec.slots_per_day)
        kept = self._quotes.get(campaign)
        if kept is not None and kept[0] is record and kept[1] == g and kept[2] is policy:
            return kept[3]
        quote = bid_multiplier(policy, record, now_us, spec)
        self._quotes[campaign] = (record, g, policy, quote)
        return quote

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._wanted:
                continue
            try:
                self._records.update(self._fetch(sorted(self._wanted)))
            except Exception:
                logger.debug("pacing refresh failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _ray_bidding_fetch() -> Callable[[list[str]], dict[str, Any]]:
    state: dict[str, Any] = {"sup": None, "tried": 0.0}

    def fetch(campaigns: list[str]) -> dict[str, Any]:
        import ray  # lazy: Ray is heavy

        if not ray.is_initialized():
            return {}
        if state["sup"] is None:
            if time.monotonic() - state["tried"] < 10:
                return {}
            state["tried"] = time.monotonic()

            sup = AgentSupervisor.attach()
            if not any(agent == "bidding" for agent, _ in sup.handles):
                return {}
            state["sup"] = sup
        refs = [state["sup"].bidding_state(c) for c in campaigns]
        return {c: r for c, r in zip(campaigns, ray.get(refs, timeout=2.0), strict=True) if r is not None}

    return fetch
