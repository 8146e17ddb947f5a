"""The scoring agent: re-scores a customer on every relevant event and acts on the rules.

It emits ``score_updated`` when a score moves by at least ``min_change`` points (or changes tier), a
``task_created`` for sales when the lead score crosses ``lead_task_threshold`` (80 by default), and a
``decision_made`` that starts the retention journey when the churn risk crosses ``churn_journey_threshold``
(70% by default). Scores come from a :class:`Scorer`: the trained models of the registry when there are any,
else the embedded :class:`RuleScorer`, which needs no artifacts.

A promotion reaches the running agent through the log: a ``model_challenge`` whose outcome is ``promoted`` (logged by
the retrain, under the broadcast id, so every shard sees it at the same point of the log) makes the agent load that
version from the registry and score every later event with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.runtime import Agent, Record, StateView
from data.events import (
    DecisionMade,
    DecisionMadeProperties,
    EventBase,
    ScoreUpdated,
    TaskCreated,
    TaskCreatedProperties,
    derive_event_id,
)
from data.log.base import StoredEvent
from data.score_tiers import tier_of  # the tiers the warehouse cuts at too

log = logging.getLogger(__name__)

DAY_US = 86_400_000_000
RETENTION_ACTION = "start_journey:retention"
MODEL_CHALLENGE = "model_challenge"
MODEL_KINDS = ("lead", "churn")
"""The scores the agent keeps, each from a trained model of that kind when one is registered, else the rules."""


class ScoringRules(BaseModel):
    """The scoring agent's rules (all configurable; the defaults are the product's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lead_task_threshold: float = Field(80.0, ge=0, le=100, description="Lead score at which sales gets a task.")
    churn_journey_threshold: float = Field(0.70, ge=0, le=1, description="Churn risk that starts the retention journey.")
    min_change: float = Field(1.0, ge=0, description="Emit score_updated only when a score moves this many points.")
    half_life_days: float = Field(30.0, gt=0, description="Half-life of an event's weight in the rule scores.")
    lead_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "lead_created": 10.0,
            "page_view": 3.0,
            "content_download": 25.0,
            "email_open": 4.0,
            "email_click": 10.0,
            "sms_click": 8.0,
            "push_open": 3.0,
            "ad_click": 6.0,
            "purchase": 15.0,
        }
    )
    churn_weights: dict[str, float] = Field(
        default_factory=lambda: {"unsubscribe": 40.0, "support_ticket": 20.0, "purchase": -30.0, "email_click": -10.0}
    )
    task_queue: str = "sales"


class ScoreOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    score: float
    probability: float
    tier: str


class Scorer(Protocol):
    """What the scoring agent asks for a score: the trained registry models and the rules both fit it."""

    name: str
    version: str

    def score(self, model: str, features: Mapping[str, float]) -> ScoreOut: ...


@dataclass(frozen=True, slots=True)
class RuleScorer:
    """The embedded default: decayed, weighted event counts. Lead score = points capped at 100; churn risk =
    churn points / 100, clipped to [0, 1]."""

    name: str = "rules"
    version: str = "rules-1"

    def score(self, model: str, features: Mapping[str, float]) -> ScoreOut:
        if model == "lead":
            s = float(min(100.0, max(0.0, features.get("lead_points", 0.0))))
            return ScoreOut(score=round(s, 2), probability=round(s / 100, 4), tier=tier_of(s))
        p = float(min(1.0, max(0.0, features.get("churn_points", 0.0) / 100)))
        return ScoreOut(score=round(100 * p, 2), probability=round(p, 4), tier=tier_of(100 * p))


class RegistryScorer:
    """Trained models from ``policies.scoring`` (``ModelRegistry.load_scoring``), with rules for kinds that
    have no registered model. Features are passed as the record the model's tabular spec reads."""

    def __init__(self, models: Mapping[str, Any], fallback: Scorer | None = None) -> None:
        self.models = dict(models)
        self.fallback = fallback or RuleScorer()
        self.name = "registry"
        self.version = ",".join(f"{k}:{m.version}" for k, m in sorted(self.models.items())) or self.fallback.version

    def score(self, model: str, features: Mapping[str, float]) -> ScoreOut:
        trained = self.models.get(model)
        if trained is None:
            return self.fallback.score(model, features)
        s = trained.score_one(features)
        return ScoreOut(score=round(float(s.score), 2), probability=round(float(s.probability), 4), tier=s.tier)


def load_scorer(models_dir: Path | None = None) -> Scorer:
    """The registry's latest lead and churn models when any are registered, else :class:`RuleScorer`."""
    try:
        from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost, which the rule scorer never needs

        registry = ModelRegistry(models_dir)
        models = {}
        for kind in MODEL_KINDS:
            if registry.versions(kind):
                models[kind] = registry.load_scoring(kind)
    except Exception as error:  # noqa: BLE001 - no registry, unreadable artifacts: the rules still run
        log.info("no trained scoring model loaded (%s); using the rule scorer", error)
        return RuleScorer()
    return RegistryScorer(models) if models else RuleScorer()


def _decayed(points: float, since_us: int, now_us: int, half_life_days: float) -> float:
    if points == 0.0 or now_us <= since_us:
        return points
    return points * math.pow(0.5, (now_us - since_us) / (half_life_days * DAY_US))


def features_of(record: Record) -> dict[str, float]:
    """The online features of one customer's scoring state (what the scorer reads)."""
    counts = record.get("counts", {})
    return {
        "lead_points": record.get("lead_points", 0.0),
        "churn_points": record.get("churn_points", 0.0),
        "purchases": float(counts.get("purchase", 0)),
        "revenue": record.get("revenue", 0.0),
        "events_total": float(sum(counts.values())),
        **{f"n_{k}": float(v) for k, v in counts.items()},
    }


class ScoringAgent(Agent):
    """Re-scores on relevant events; emits score_updated, task_created (sales) and the retention journey start."""

    name: ClassVar[str] = "scoring"

    def __init__(self, rules: ScoringRules | None = None, scorer: Scorer | None = None,
                 models_dir: Path | None = None) -> None:
        """:param scorer: default: the rules, or with ``models_dir`` the registry's latest models, loaded where the
            agent runs on first use (a shard restarted after a promotion loads the promoted version).
        :param models_dir: the registry the models and every promoted version are loaded from."""
        self.rules = rules or ScoringRules()
        self._scorer = scorer
        self.models_dir = models_dir
        self.scored_types = frozenset(self.rules.lead_weights) | frozenset(self.rules.churn_weights)
        self._types = self.scored_types | {MODEL_CHALLENGE}

    @property
    def event_types(self) -> frozenset[str]:  # type: ignore[override]
        return self._types

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = load_scorer(self.models_dir) if self.models_dir is not None else RuleScorer()
        return self._scorer

    @scorer.setter
    def scorer(self, scorer: Scorer) -> None:
        self._scorer = scorer

    def adopt(self, challenge: StoredEvent) -> bool:
        """Score with the version a ``model_challenge`` promoted (True when the scorer changed). A version that
        cannot be loaded is logged, and the current models stay: the agent never stops on it."""
        props = orjson.loads(challenge.properties_json)
        kind, version = props.get("kind"), props.get("challenger_version")
        if props.get("outcome") != "promoted" or kind not in MODEL_KINDS or not version:
            return False
        current = self.scorer.models if isinstance(self.scorer, RegistryScorer) else {}
        if kind in current and current[kind].version == version:
            return False
        try:
            from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost, which the rules never need

            model = ModelRegistry(self.models_dir).load_scoring(kind, version)
        except Exception as error:  # noqa: BLE001 - a missing or unreadable version must not stop the agent
            log.error("scoring: cannot load the promoted %s model %s (%s); scoring goes on with %s",
                      kind, version, error, self.scorer.version)
            return False
        self.scorer = RegistryScorer({**current, kind: model})
        log.info("scoring: now scoring with %s (promoted by %s)", self.scorer.version, challenge.event_id)
        return True

    def fold(self, record: Record | None, event: StoredEvent) -> Record:
        """The customer's new scoring state after one event (pure)."""
        r = self.rules
        rec: Record = dict(record) if record else {"counts": {}, "lead_points": 0.0, "churn_points": 0.0, "at_us": 0}
        now = max(event.occurred_at_us, rec["at_us"])
        rec["lead_points"] = _decayed(rec["lead_points"], rec["at_us"], now, r.half_life_days) + r.lead_weights.get(event.event_type, 0.0)
        churn = r.churn_weights.get(event.event_type, 0.0)
        if event.event_type == "support_ticket":
            sentiment = orjson.loads(event.properties_json).get("sentiment")
            churn += 30.0 * max(0.0, -(sentiment or 0.0))
        rec["churn_points"] = max(0.0, _decayed(rec["churn_points"], rec["at_us"], now, r.half_life_days) + churn)
        rec["at_us"] = now
        counts = dict(rec["counts"])
        counts[event.event_type] = counts.get(event.event_type, 0) + 1
        rec["counts"] = counts
        if event.event_type == "purchase":
            rec["revenue"] = rec.get("revenue", 0.0) + float(orjson.loads(event.properties_json).get("amount") or 0.0)
        return rec

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        state.prefetch(e.customer_id for e in batch)
        out: list[EventBase] = []
        for event in batch:
            if event.event_type == MODEL_CHALLENGE:
                self.adopt(event)
                continue
            rec = self.fold(state.get(event.customer_id), event)
            features = features_of(rec)
            for model in MODEL_KINDS:
                s = self.scorer.score(model, features)
                key = f"last_{model}"
                last = rec.get(key)
                if last is None or abs(s.score - last[0]) >= self.rules.min_change or s.tier != last[1]:
                    rec[key] = [s.score, s.tier]
                    if last is not None or s.score > 0:
                        out.append(self._score_event(event, model, s))
                if model == "lead":
                    above = s.score >= self.rules.lead_task_threshold
                    if above and not rec.get("task_open"):
                        out.append(self._task_event(event, s))
                    rec["task_open"] = above
                else:
                    risky = s.probability >= self.rules.churn_journey_threshold
                    if risky and not rec.get("retention"):
                        out.append(self._retention_event(event, s, features))
                    rec["retention"] = risky
            state.put(event.customer_id, rec)
        return out

    def _score_event(self, trigger: StoredEvent, model: str, s: ScoreOut) -> ScoreUpdated:
        # validated from one plain dict: a single pass of pydantic-core (the hottest output of the agents)
        at = trigger.occurred_at
        return ScoreUpdated.model_validate({
            "event_id": derive_event_id(trigger.event_id, self.name, "score", model, at=at),
            "customer_id": trigger.customer_id,
            "occurred_at": at,
            "source": "agent:scoring",
            "causation_id": trigger.event_id,
            "properties": {"model": model, "score": s.score, "probability": s.probability, "tier": s.tier,
                           "model_version": self.scorer.version},
        })

    def _task_event(self, trigger: StoredEvent, s: ScoreOut) -> TaskCreated:
        return TaskCreated(
            event_id=derive_event_id(trigger.event_id, self.name, "task", at=trigger.occurred_at),
            customer_id=trigger.customer_id,
            occurred_at=trigger.occurred_at,
            source="agent:scoring",
            causation_id=trigger.event_id,
            properties=TaskCreatedProperties(
                task_type="call_lead",
                queue=self.rules.task_queue,
                priority="high",
                reason=f"lead score {s.score:.0f} >= {self.rules.lead_task_threshold:.0f} after {trigger.event_type}",
            ),
        )

    def _retention_event(self, trigger: StoredEvent, s: ScoreOut, features: Mapping[str, float]) -> DecisionMade:
        return DecisionMade(
            event_id=derive_event_id(trigger.event_id, self.name, "retention", at=trigger.occurred_at),
            customer_id=trigger.customer_id,
            occurred_at=trigger.occurred_at,
            source="agent:scoring",
            causation_id=trigger.event_id,
            properties=DecisionMadeProperties(
                agent=self.name,
                action=RETENTION_ACTION,
                propensity=1.0,
                policy_name=f"scoring-rules:{self.scorer.name}",
                policy_version=self.scorer.version,
                features_hash=features_hash(features),
                context={"churn_risk": s.probability},
            ),
        )


def features_hash(features: Mapping[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(features, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
