"""The journey agent: on the daily tick (and on the scoring agent's retention trigger), asks the policy serving
the ``journey`` slot for the next action of every customer it holds, and logs ``decision_made`` with everything
off-policy evaluation needs (:mod:`agents.journey_decision`).

Its state per customer is the fold of that customer's events into the journey facts
(:func:`environment.observation.fold_event`): the very facts the simulator keeps, from which the same observation
is made, so a policy trained in ``environment/`` is served unchanged. The agent's own decisions are not facts: a
contact counts once its ``*_sent`` event arrives. Until then the decided contact holds the frequency cap
(``pending_contact_day``); a ``message_suppressed`` event (the sender did not send it) releases it. Every time
is event time and every draw derives from the decision's id, so a replay re-derives the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.journey_decision import JourneyDecision, JourneyRules, decide_journeys
from agents.runtime import SYSTEM_CUSTOMER, Agent, Record, StateView, in_holdout
from agents.scoring import RETENTION_ACTION
from data.events import DecisionMade, EventBase
from data.log.base import StoredEvent, from_micros
from data.settings import get_settings
from data.sharding import ANONYMOUS_CUSTOMER
from data.ticks import TICK_ACTION, decision_event_id
from environment.belief_fold import BELIEF_EVENTS, CONTACT_ACTION, note_seen
from environment.config import load_market_config
from environment.observation import (
    ATTRIBUTE_EVENT,
    CONSENT_EVENTS,
    FACT_EVENTS,
    day_of,
    fold_event,
    new_record,
)
from policies.slots import (
    BUILTIN,
    LoadedPolicy,
    PolicySlot,
    RegistrySource,
    builtin_journey_policy,
)

NEEDS_PROPERTIES = CONSENT_EVENTS | {ATTRIBUTE_EVENT}


class JourneyConfig(BaseModel):
    """The journey agent's triggers, guardrails and holdout."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    decide_on: frozenset[str] = Field(
        frozenset(), description="Event types after which the policy is also asked (besides the daily tick and the "
        "retention trigger). Policies are trained to decide once a day, at the tick; other triggers serve them off "
        "the moments they were trained for.")
    quiet_hours: tuple[int, int] = Field((21, 8), description="No contact from the first hour to the second (UTC).")
    holdout_share: float = Field(0.05, ge=0, le=0.5, description="Share of customers held out (stable hash of customer_id).")
    holdout_policy: str = Field("email_every_k", description="The built-in policy the holdout gets (no_contact: none).")
    log_waits: bool = Field(True, description="Log wait decisions too (off-policy evaluation needs them).")
    log_belief: bool = Field(False, description="Keep the belief over each customer's hidden state and log it with every "
                             "decision, so a policy that acts on the belief can be judged on a log written under another "
                             "policy. A policy serving on the belief keeps it, and logs it, either way.")
    slot: str = Field("journey", description="The serving slot whose policy treated customers get.")
    policies_dir: Path | None = Field(None, description="The policy registry (default: AME_POLICIES_DIR).")
    market_config: Path | None = Field(None, description="The market the policies are trained on (default: the shipped one).")


class JourneyAgent(Agent):
    """Decides the next journey action per customer (see the module docstring).

    :param policy: serve this policy instead of the slot's (tests, the parity check); logged as (name, version).
    """

    name: ClassVar[str] = "journey"

    def __init__(self, config: JourneyConfig | None = None, policy: Any = None, policy_version: str = BUILTIN) -> None:
        self.config = config or JourneyConfig()
        self._given = None if policy is None else LoadedPolicy(getattr(policy, "name", type(policy).__name__), policy_version, policy)
        self.holdout = LoadedPolicy(self.config.holdout_policy, BUILTIN, builtin_journey_policy(self.config.holdout_policy))
        self._slot: PolicySlot | None = None
        self._rules: JourneyRules | None = None
        self._types = FACT_EVENTS | self.config.decide_on | {"decision_made", "message_suppressed"}

    @property
    def event_types(self) -> frozenset[str]:  # type: ignore[override]
        return self._types

    @property
    def rules(self) -> JourneyRules:
        if self._rules is None:
            self._rules = JourneyRules.of(load_market_config(self.config.market_config), self.config.quiet_hours,
                                          self.config.log_belief)
        return self._rules

    def serving(self) -> LoadedPolicy:
        """The treated customers' policy now: the given one, else the slot's (loaded inside the actor, swapped when
        the slot is promoted; checked once per batch)."""
        if self._given is not None:
            return self._given
        if self._slot is None:
            root = self.config.policies_dir or get_settings().policies_dir
            self._slot = PolicySlot(self.config.slot, RegistrySource(root, {"journey": builtin_journey_policy}))
        self._slot.refresh()
        return self._slot.current

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_slot"] = None  # a loaded model is reloaded where the agent runs
        return state

    # -- the fold ---------------------------------------------------------------------------------------

    def fold(self, record: Record | None, event: StoredEvent) -> Record:
        """The customer's journey facts after one inbound event (pure)."""
        if event.event_type == "message_suppressed":  # the decided contact was never sent: it no longer holds the cap
            return {**(record or self.new_record()), "pending_contact_day": None}
        props = orjson.loads(event.properties_json) if event.event_type in NEEDS_PROPERTIES else {}
        rec = fold_event(record or self.new_record(), event.event_type, event.occurred_at_us, props, self.rules.spec)
        if event.event_type in BELIEF_EVENTS:  # what the day showed, for the belief over the hidden state
            note_seen(rec, event.event_type, event.occurred_at_us, self.rules.spec.horizon_days)
        if event.event_type in CONTACT_ACTION:
            rec["pending_contact_day"] = None  # the decided contact (if any) is now a fact
        return rec

    @staticmethod
    def new_record() -> Record:
        return new_record() | {"journey": "nurture", "pending_contact_day": None}

    # -- deciding ---------------------------------------------------------------------------------------

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        """Fold each customer's events in order; the policy is asked once per wave for every customer that
        reached a decision point (the same result as asking event by event, in fewer, batched calls)."""
        seqs = self._sequences(batch, state)
        state.prefetch(seqs)
        recs: dict[str, Record | None] = {cid: state.get(cid) for cid in seqs}
        cursor = dict.fromkeys(seqs, 0)
        out: list[tuple[int, str, EventBase]] = []
        active = list(seqs)
        serving = self.serving() if seqs else None
        while active:
            points: list[tuple[str, StoredEvent, str]] = []
            still: list[str] = []
            for cid in active:
                i, rec = self._fold_to_point(seqs[cid], cursor[cid], recs[cid], cid, points)
                recs[cid], cursor[cid] = rec, i
                if i < len(seqs[cid]):
                    still.append(cid)
            if points:
                out.extend(self._decide_many(points, recs, serving))
            active = still
        for cid, rec in recs.items():
            if rec is not None:
                state.put(cid, rec)
        out.sort(key=lambda item: (item[0], item[1]))
        return [e for _, _, e in out]

    def _sequences(self, batch: Sequence[StoredEvent], state: StateView) -> dict[str, list[tuple[StoredEvent, str]]]:
        """Each customer's events in log order, with the daily tick and the retention trigger as decision points."""
        seqs: dict[str, list[tuple[StoredEvent, str]]] = {}
        known: set[str] | None = None
        for event in batch:
            if event.event_type == "decision_made":
                props = orjson.loads(event.properties_json)
                if props.get("agent") == "scheduler" and props.get("action") == TICK_ACTION and event.customer_id == SYSTEM_CUSTOMER:
                    if known is None:
                        known = set(state.keys())
                    for cid in sorted(known | set(seqs)):
                        seqs.setdefault(cid, []).append((event, "daily_tick"))
                elif props.get("agent") == "scoring" and props.get("action") == RETENTION_ACTION:
                    seqs.setdefault(event.customer_id, []).append((event, "retention_start"))
                continue
            if event.customer_id != ANONYMOUS_CUSTOMER:  # no journey for events of no known customer
                seqs.setdefault(event.customer_id, []).append((event, ""))
        return seqs

    def _fold_to_point(self, seq: list[tuple[StoredEvent, str]], i: int, rec: Record | None, cid: str,
                       points: list[tuple[str, StoredEvent, str]]) -> tuple[int, Record | None]:
        """Fold ``seq`` from ``i`` up to and including the next decision point (appended to ``points``)."""
        while i < len(seq):
            event, why = seq[i]
            i += 1
            if why:
                rec = dict(rec or self.new_record())
                if why == "retention_start":
                    rec["journey"] = "retention"
                points.append((cid, event, why))
                break
            rec = self.fold(rec, event)
            if event.event_type in self.config.decide_on:
                points.append((cid, event, event.event_type))
                break
        return i, rec

    def _decide_many(self, points: list[tuple[str, StoredEvent, str]], recs: dict[str, Record | None],
                     serving: LoadedPolicy | None) -> list[tuple[int, str, EventBase]]:
        """One batched policy call per arm (treated, holdout) for these decision points."""
        held = [in_holdout(cid, self.config.holdout_share) for cid, _, _ in points]
        out: list[tuple[int, str, EventBase]] = []
        for arm, loaded in ((False, serving), (True, self.holdout)):
            chosen = [p for p, h in zip(points, held, strict=True) if h == arm]
            if not chosen or loaded is None:
                continue
            ids = [decision_event_id(trigger.event_id, self.name, cid, from_micros(trigger.occurred_at_us))
                   for cid, trigger, _ in chosen]
            decisions = decide_journeys(loaded.policy, [recs[cid] for cid, _, _ in chosen],  # type: ignore[misc]
                                        [trigger.occurred_at_us for _, trigger, _ in chosen], ids, self.rules)
            for (cid, trigger, why), decision, event_id in zip(chosen, decisions, ids, strict=True):
                event = self._logged(cid, recs[cid], trigger, why, decision, event_id, loaded, arm)  # type: ignore[arg-type]
                if event is not None:
                    out.append((trigger.position, cid, event))
        return out

    def _logged(self, cid: str, rec: Record, trigger: StoredEvent, why: str, decision: JourneyDecision, event_id: str,
                loaded: LoadedPolicy, holdout: bool) -> EventBase | None:
        """Note a decided contact in ``rec`` and build the decision event (None for an unlogged wait)."""
        if decision.action != "wait":
            rec["pending_contact_day"] = day_of(trigger.occurred_at_us)
        elif not self.config.log_waits:
            return None
        context = {"trigger": why, "journey": rec["journey"], **decision.context()}
        # validated from a plain dict: pydantic-core does that faster than model_construct() builds a model
        return DecisionMade.model_validate({
            "event_id": event_id,
            "customer_id": cid,
            "occurred_at": from_micros(trigger.occurred_at_us),
            "source": "agent:journey",
            "causation_id": trigger.event_id,
            "properties": {
                "agent": self.name, "action": decision.action, "channel": decision.channel,
                "propensity": decision.propensity, "policy_name": loaded.name, "policy_version": loaded.version,
                "features_hash": decision.features_hash, "holdout": holdout, "context": context,
            },
        })

