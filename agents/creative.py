"""The creative agent: folds exposures, clicks and conversions of served creatives into per-variant counts, writes
them to the creative store (the bandit's Beta posteriors) and promotes a variant when its posterior probability
of being best reaches the threshold.

- exposures: ``decision_made`` events with ``agent == "creative"`` (``policies.creative.serving.exposure_event``);
  the action is the variant id;
- clicks: ``email_click`` / ``ad_click`` / ``sms_click`` whose properties carry the ``creative_id``;
- conversions: ``purchase`` whose ``properties.context.creative_id`` names the variant.

Sharded by variant id, so one shard owns a variant's counts. Counts go to the store as absolute numbers, so a
batch replayed after a crash writes the same values again (idempotent). It appends no events: the exposures are
already the logged decisions with their propensities.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.runtime import Agent, StateView
from data.events import EventBase
from data.log.base import StoredEvent
from policies.creative.models import VariantNotFound
from policies.creative.serving import check_promotion
from policies.creative.store import Counts, CreativeStore, open_store

log = logging.getLogger(__name__)

CLICK_TYPES = frozenset({"email_click", "ad_click", "sms_click"})
NO_CREATIVE = "-"


class CreativeConfig(BaseModel):
    """Where the agent writes the posteriors and when it promotes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    store_url: str | None = Field(None, description="Creative store URL (default: AME_CREATIVE_STORE).")
    promote_threshold: float = Field(0.95, gt=0.5, le=1.0, description="Posterior P(best) that promotes a variant.")
    min_impressions: int = Field(100, ge=0, description="Impressions every arm needs before a promotion.")


class CreativeAgent(Agent):
    """Counts impressions, clicks and conversions per variant; promotes winners (see the module docstring)."""

    name: ClassVar[str] = "creative"
    event_types: ClassVar[frozenset[str]] = frozenset({"decision_made", "purchase"}) | CLICK_TYPES
    keyed_by_customer = False  # keyed by variant, so shards filter after the read

    def __init__(self, config: CreativeConfig | None = None) -> None:
        self.config = config or CreativeConfig()
        self._store: CreativeStore | None = None

    def __getstate__(self) -> dict[str, Any]:  # the store's connection stays out of the pickle sent to Ray
        return {"config": self.config, "_store": None}

    @property
    def store(self) -> CreativeStore:
        if self._store is None:
            self._store = open_store(self.config.store_url)
        return self._store

    def key_of(self, event: StoredEvent) -> str:
        """The variant the event is about (``-`` when none: such events are skipped)."""
        if event.event_type == "decision_made":
            if '"creative"' not in event.properties_json:
                return NO_CREATIVE
            props = orjson.loads(event.properties_json)
            return props.get("action") or NO_CREATIVE if props.get("agent") == "creative" else NO_CREATIVE
        if "creative_id" not in event.properties_json:
            return NO_CREATIVE
        props = orjson.loads(event.properties_json)
        if event.event_type == "purchase":
            return str((props.get("context") or {}).get("creative_id") or NO_CREATIVE)
        return str(props.get("creative_id") or NO_CREATIVE)

    def is_broadcast(self, event: StoredEvent) -> bool:
        return False

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        keyed = [(self.key_of(e), e) for e in batch]
        keyed = [(k, e) for k, e in keyed if k != NO_CREATIVE]
        if not keyed:
            return []
        state.prefetch(k for k, _ in keyed)
        for key, event in keyed:
            rec = dict(state.get(key) or {"impressions": 0, "clicks": 0, "conversions": 0})
            field = {"decision_made": "impressions", "purchase": "conversions"}.get(event.event_type, "clicks")
            rec[field] += 1
            if event.event_type == "decision_made":
                context = orjson.loads(event.properties_json).get("context") or {}
                rec["segment"], rec["kind"] = context.get("segment"), context.get("kind")
            state.put(key, rec)
        changed = state.changes
        self.store.set_counts({k: Counts(r["impressions"], r["clicks"], r["conversions"]) for k, r in changed.items()})
        for segment, kind in sorted(self._tests_of(changed)):
            check_promotion(
                self.store, segment, kind, threshold=self.config.promote_threshold, min_impressions=self.config.min_impressions
            )
        return []

    def _tests_of(self, changed: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
        tests = set()
        for key, rec in changed.items():
            segment, kind = rec.get("segment"), rec.get("kind")
            if not segment or not kind:
                try:
                    variant = self.store.get(key).variant
                except VariantNotFound:
                    continue
                segment, kind = variant.segment, variant.kind
            tests.add((segment, kind))
        return tests
