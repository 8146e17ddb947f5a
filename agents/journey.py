"""The journey agent: on engagement events, on the retention trigger and on the daily tick, asks the journey
policy for the next action, enforces consent, frequency caps and quiet hours, and logs ``decision_made`` with
everything off-policy evaluation needs (action, propensity, policy name and version, features hash, holdout).

Its state per customer is a fold of that customer's events (consent, last contacts and engagements, decayed
counts), from which it builds the journey simulator's 24-column observation, so a policy trained in
``environment/`` is served unchanged. Every time is event time, so a replay re-derives the same decisions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.runtime import (
    SYSTEM_CUSTOMER,
    Agent,
    Record,
    StateView,
    in_holdout,
    stable_hash,
)
from agents.scoring import RETENTION_ACTION
from data.events import DecisionMade, EventBase, derive_event_id
from data.log.base import StoredEvent, from_micros
from policies.baselines import (
    ACTIONS,
    JourneyPolicy,
    NoContact,
    holdout_baseline,
    journey_baseline,
)

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
ACTION_CHANNEL: dict[str, str | None] = {"wait": None, "email": "email", "sms": "sms", "push": "push", "ad": "ad", "offer": "email"}
CONTACT_TYPES = frozenset({"email_sent", "sms_sent", "push_sent", "offer_sent"})
ENGAGEMENT = {"email_open": "open", "push_open": "open", "email_click": "click", "sms_click": "click", "ad_click": "click",
              "page_view": "visit", "content_download": "visit"}


class JourneyConfig(BaseModel):
    """The journey agent's guardrails and holdout."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    decide_on: frozenset[str] = Field(
        frozenset({"lead_created", "page_view", "content_download", "email_open", "email_click", "sms_click", "ad_click"}),
        description="Event types after which the policy is asked (besides the daily tick and the retention trigger).",
    )
    min_hours_between_contacts: float = Field(24.0, ge=0, description="Frequency cap: hours between two contacts.")
    max_contacts_per_week: int = Field(3, ge=0, description="Frequency cap: contacts per rolling 7 days.")
    quiet_hours: tuple[int, int] = Field((21, 8), description="No contact from the first hour to the second (UTC).")
    require_explicit_consent: bool = Field(False, description="Contact only where the customer granted consent (else: unless withdrawn).")
    holdout_share: float = Field(0.05, ge=0, le=0.5, description="Share of customers held out (stable hash of customer_id).")
    holdout_mode: Literal["baseline", "no_contact"] = Field("baseline", description="What the holdout gets.")
    log_waits: bool = Field(True, description="Log wait decisions too (off-policy evaluation needs them).")
    registry_policy: str | None = Field(
        None, description="Serve the promoted version of this registry policy (e.g. 'journey') when there is one; "
        "the baseline otherwise. Loaded lazily inside the actor.")
    policies_dir: Path | None = Field(None, description="The policy registry (default: AME_POLICIES_DIR).")


def _decay(value: float, since_us: int, now_us: int) -> float:
    return value * math.pow(0.8, max(0, now_us - since_us) / DAY_US) if value else 0.0


def _since(now_us: int, at_us: int | None) -> float:
    return 1.0 if at_us is None else min(1.0, max(0.0, (now_us - at_us) / DAY_US) / 30)


def new_record() -> Record:
    return {"consent": {}, "first_us": None, "last_contact_us": None, "contacts": [], "open_us": None, "click_us": None,
            "visit_us": None, "purchase_us": None, "purchases": 0, "revenue": 0.0, "recent": {}, "journey": "nurture"}


class JourneyAgent(Agent):
    """Decides the next journey action per customer (see the module docstring)."""

    name: ClassVar[str] = "journey"

    def __init__(self, config: JourneyConfig | None = None, policy: JourneyPolicy | None = None, holdout_policy: JourneyPolicy | None = None) -> None:
        self.config = config or JourneyConfig()
        self._given_policy = policy
        self._policy: JourneyPolicy | None = policy
        self.holdout_policy = holdout_policy or (NoContact() if self.config.holdout_mode == "no_contact" else holdout_baseline())
        self._types = frozenset(ENGAGEMENT) | CONTACT_TYPES | self.config.decide_on | {
            "purchase", "consent_changed", "unsubscribe", "decision_made"}

    @property
    def event_types(self) -> frozenset[str]:  # type: ignore[override]
        return self._types

    @property
    def policy(self) -> JourneyPolicy:
        """The treated customers' policy: the given one, else the registry's promoted ``registry_policy``, else
        the baseline. Resolved on first use, so a trained model is loaded inside the actor, never pickled."""
        if self._policy is None:
            self._policy = self._registry_policy() or journey_baseline()
        return self._policy

    def _registry_policy(self) -> JourneyPolicy | None:
        name = self.config.registry_policy
        if name is None:
            return None
        from policies.registry import PolicyRegistry, load_promoted

        registry = PolicyRegistry(self.config.policies_dir)
        if registry.promoted_version(name) is None:
            return None
        return load_promoted(name, self.config.policies_dir)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_policy"] = self._given_policy  # a loaded registry model is reloaded where the agent runs
        return state

    # -- the fold ---------------------------------------------------------------------------------------

    def fold(self, record: Record | None, event: StoredEvent) -> Record:
        """The customer's journey state after one inbound event (pure)."""
        rec = dict(record) if record else new_record()
        t, kind = event.occurred_at_us, event.event_type
        if rec["first_us"] is None:
            rec["first_us"] = t
        if kind in ENGAGEMENT:
            what = ENGAGEMENT[kind]
            rec[f"{what}_us"] = max(t, rec[f"{what}_us"] or 0)
            self._bump(rec, what, t)
        elif kind in CONTACT_TYPES:
            self._contact(rec, t)
        elif kind == "purchase":
            rec["purchase_us"] = max(t, rec["purchase_us"] or 0)
            rec["purchases"] += 1
            rec["revenue"] += float(orjson.loads(event.properties_json).get("amount") or 0.0)
        elif kind in ("consent_changed", "unsubscribe"):
            props = orjson.loads(event.properties_json)
            consent = dict(rec["consent"])
            previous = consent.get(props["channel"])
            if previous is None or t >= previous[1]:  # the latest statement in event time wins
                consent[props["channel"]] = [bool(props.get("granted", False)), t]
            rec["consent"] = consent
        return rec

    @staticmethod
    def _bump(rec: Record, what: str, t: int) -> None:
        recent = dict(rec["recent"])
        value, at = recent.get(what, (0.0, t))
        recent[what] = [_decay(value, at, t) + 1.0, max(t, at)]
        rec["recent"] = recent

    def _contact(self, rec: Record, t: int) -> None:
        rec["last_contact_us"] = max(t, rec["last_contact_us"] or 0)
        rec["contacts"] = [c for c in rec["contacts"] if t - c < 7 * DAY_US] + [t]
        self._bump(rec, "contact", t)

    # -- the observation and the guardrails -------------------------------------------------------------

    def allowed(self, rec: Record, channel: str) -> bool:
        said = rec["consent"].get(channel)
        return bool(said[0]) if said is not None else not self.config.require_explicit_consent

    def capped(self, rec: Record, now: int) -> bool:
        last = rec["last_contact_us"]
        if last is not None and now - last < self.config.min_hours_between_contacts * HOUR_US:
            return True
        return sum(1 for c in rec["contacts"] if now - c < 7 * DAY_US) >= self.config.max_contacts_per_week

    def quiet(self, now: int) -> bool:
        start, end = self.config.quiet_hours
        hour = (now // HOUR_US) % 24
        return (start <= hour or hour < end) if start > end else start <= hour < end

    def observation(self, rec: Record, now: int) -> np.ndarray:
        """The journey environment's observation (see ``JourneyEnv``) from what the engine observed."""
        obs = np.zeros(24, dtype=np.float32)
        days_since_purchase = 360.0 if rec["purchase_us"] is None else max(0.0, (now - rec["purchase_us"]) / DAY_US)
        obs[0] = min(12.0, max(1.0, days_since_purchase / 30)) / 12
        obs[1] = min(1.0, math.log1p(rec["revenue"]) / 8.2)
        obs[4] = 1.0 if rec["purchases"] == 0 else 0.0
        obs[9], obs[10], obs[11] = (float(self.allowed(rec, c)) for c in ("email", "sms", "push"))
        obs[12] = float(self.capped(rec, now))
        obs[13] = min(1.0, max(0.0, (now - (rec["first_us"] or now)) / DAY_US) / 60)
        for i, at in enumerate((rec["last_contact_us"], rec["open_us"], rec["click_us"], rec["visit_us"], rec["purchase_us"])):
            obs[14 + i] = _since(now, at)
        for i, what in enumerate(("contact", "open", "click", "visit")):
            value, at = rec["recent"].get(what, (0.0, now))
            obs[19 + i] = min(1.0, 0.2 * _decay(value, at, now))
        obs[23] = min(1.0, rec["purchases"] / 5)
        return obs

    # -- deciding ---------------------------------------------------------------------------------------

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        """Fold each customer's events in order; the policy is asked once per wave for every customer that
        reached a decision point (the same result as asking event by event, in fewer, batched calls)."""
        seqs: dict[str, list[tuple[StoredEvent, str]]] = {}
        known: set[str] | None = None
        for event in batch:
            if event.event_type == "decision_made":
                props = orjson.loads(event.properties_json)
                if props.get("agent") == "scheduler" and event.customer_id == SYSTEM_CUSTOMER:
                    if known is None:
                        known = set(state.keys())
                    for cid in sorted(known | set(seqs)):
                        seqs.setdefault(cid, []).append((event, "daily_tick"))
                elif props.get("agent") == "scoring" and props.get("action") == RETENTION_ACTION:
                    seqs.setdefault(event.customer_id, []).append((event, "retention_start"))
                continue
            seqs.setdefault(event.customer_id, []).append((event, ""))
        state.prefetch(seqs)
        recs: dict[str, Record | None] = {cid: state.get(cid) for cid in seqs}
        cursor = dict.fromkeys(seqs, 0)
        out: list[tuple[int, str, EventBase]] = []
        active = list(seqs)
        while active:
            points: list[tuple[str, StoredEvent, str]] = []
            still: list[str] = []
            for cid in active:
                seq, i, rec = seqs[cid], cursor[cid], recs[cid]
                while i < len(seq):
                    event, why = seq[i]
                    i += 1
                    if why:
                        rec = dict(rec or new_record())
                        if why == "retention_start":
                            rec["journey"] = "retention"
                        points.append((cid, event, why))
                        break
                    rec = self.fold(rec, event)
                    if event.event_type in self.config.decide_on:
                        points.append((cid, event, event.event_type))
                        break
                recs[cid], cursor[cid] = rec, i
                if i < len(seq):
                    still.append(cid)
            if points:
                out.extend(self._decide_many(points, recs))
            active = still
        for cid, rec in recs.items():
            if rec is not None:
                state.put(cid, rec)
        out.sort(key=lambda item: (item[0], item[1]))
        return [e for _, _, e in out]

    def _decide_many(self, points: list[tuple[str, StoredEvent, str]], recs: dict[str, Record | None]) -> list[tuple[int, str, EventBase]]:
        """One batched policy call per policy (treated, holdout) for these decision points."""
        obs = np.stack([self.observation(recs[cid], trigger.occurred_at_us) for cid, trigger, _ in points])  # type: ignore[arg-type]
        held = np.array([in_holdout(cid, self.config.holdout_share) for cid, _, _ in points], dtype=bool)
        actions = np.zeros(len(points), dtype=np.int64)
        propensity = np.ones(len(points))
        for mask, policy in ((~held, self.policy), (held, self.holdout_policy)):
            if not mask.any():
                continue
            if hasattr(policy, "action_probabilities"):  # a trained, stochastic policy: sample it, as it was trained
                probs = np.asarray(policy.action_probabilities(obs[mask]))
                draws = np.array([stable_hash(f"{trigger.event_id}:{cid}", "ame-journey-draw") / 2**63
                                  for (cid, trigger, _), m in zip(points, mask, strict=True) if m])
                chosen = np.minimum((probs.cumsum(axis=1) < draws[:, None]).sum(axis=1), probs.shape[1] - 1)
                actions[mask] = chosen
                propensity[mask] = np.maximum(probs[np.arange(len(chosen)), chosen], 1e-6)
            else:
                actions[mask] = np.asarray(policy.predict(obs[mask], deterministic=True)[0]).reshape(-1)
        out = []
        for k, (cid, trigger, why) in enumerate(points):
            event = self._logged(cid, recs[cid], trigger, why, ACTIONS[int(actions[k])], bool(held[k]), obs[k],  # type: ignore[arg-type]
                                 float(propensity[k]))
            if event is not None:
                out.append((trigger.position, cid, event))
        return out

    def _logged(self, cid: str, rec: Record, trigger: StoredEvent, why: str, action: str, holdout: bool, obs: np.ndarray,
                propensity: float = 1.0) -> EventBase | None:
        """Apply the guardrails to the policy's action, update ``rec`` with the contact, and build the decision."""
        now = trigger.occurred_at_us
        policy = self.holdout_policy if holdout else self.policy
        channel = ACTION_CHANNEL[action]
        suppressed = None
        if channel is not None:
            if not self.allowed(rec, channel):
                suppressed = "consent"
            elif self.capped(rec, now):
                suppressed = "frequency_cap"
            elif self.quiet(now):
                suppressed = "quiet_hours"
        logged = "wait" if suppressed else action
        if logged != "wait":
            self._contact(rec, now)
        if logged == "wait" and not self.config.log_waits:
            return None
        context: dict[str, Any] = {"trigger": why, "journey": rec["journey"]}
        if suppressed:
            context.update(suppressed=suppressed, proposed=action)
        # validated from a plain dict: pydantic-core does that faster than model_construct() builds a model
        at = from_micros(now)
        return DecisionMade.model_validate({
            "event_id": derive_event_id(trigger.event_id, self.name, cid, at=at),
            "customer_id": cid,
            "occurred_at": at,
            "source": "agent:journey",
            "causation_id": trigger.event_id,
            "properties": {
                "agent": self.name,
                "action": logged,
                "channel": ACTION_CHANNEL[logged],
                "propensity": propensity,  # of the policy's proposal (a suppressed one is logged as wait)
                "policy_name": getattr(policy, "name", type(policy).__name__),
                "policy_version": str(getattr(policy, "version", "1")),
                "features_hash": hashlib.blake2b(obs.tobytes(), digest_size=8).hexdigest(),
                "holdout": holdout,
                "context": context,
            },
        })
