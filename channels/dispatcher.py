"""The dispatch agent: carries out the journey agent's decisions through the channel senders.

It folds each customer's facts (consent, contacts, the addresses of ``lead_created``) with the journey's own fold
(:func:`environment.observation.fold_event`), and for every ``decision_made`` of the journey agent on e-mail, SMS
or push (an offer goes by e-mail):

1. looks the decision up in the :class:`~channels.ledger.MessageLedger`: one already carried out is answered with
   the event it produced then (a redelivered decision never sends twice);
2. re-checks the guardrails (:func:`environment.guardrails.suppression_reason`: consent, the frequency cap, quiet
   hours) against the customer's facts as of the end of the batch it reads, which holds every fact the log had
   then, so consent revoked after the decision stops the send;
3. sends through the channel's sender and appends ``email_sent`` / ``sms_sent`` / ``push_sent`` / ``offer_sent``
   with the provider's message id, or ``message_suppressed`` with the reason.

Sending time is the wall clock by default (``clock="event"`` uses the decision's time: replays of a simulated log).
Its state holds the customers' addresses; ``customer_erased`` clears them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.journey import NEEDS_PROPERTIES, JourneyConfig
from agents.runtime import Agent, Record, StateView
from channels.config import ProvidersConfig
from channels.ledger import MessageLedger
from channels.senders import SENDERS, OutboundMessage, Sender, build_sender
from data.activation.errors import DestinationError
from data.events import EVENT_TYPES, EventBase, derive_event_id
from data.log.base import StoredEvent, from_micros
from environment.config import load_market_config
from environment.guardrails import QuietHours, suppression_reason
from environment.observation import (
    FACT_EVENTS,
    NEVER,
    ObservationSpec,
    capped,
    consent_bits,
    day_of,
    fold_event,
    new_record,
    withdrawn,
)
from environment.population import ACTIONS

log = logging.getLogger(__name__)

ADDRESS_OF_CHANNEL = {"email": "email", "sms": "phone", "push": "push_token"}
"""The ``lead_created`` property each channel sends to."""
READ_PROPERTIES = NEEDS_PROPERTIES | {"lead_created"}
SENT_EVENT = {"email": "email_sent", "sms": "sms_sent", "push": "push_sent", "offer": "offer_sent"}
"""The event a sent message of each action becomes."""


class MessageTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    subject: str = Field("", max_length=256, description="E-mail subject, push title (unused by SMS).")
    body: str = Field(min_length=1, max_length=4096)


DEFAULT_TEMPLATES: dict[str, MessageTemplate] = {
    "email": MessageTemplate(subject="Picked for you", body="New arrivals we think you will like."),
    "sms": MessageTemplate(body="New arrivals picked for you. Reply STOP to opt out."),
    "push": MessageTemplate(subject="Picked for you", body="New arrivals we think you will like."),
    "offer": MessageTemplate(subject="An offer for you", body="Take {discount_pct:g}% off your next order."),
}


class DispatchConfig(BaseModel):
    """What the dispatch agent sends, when, and through whom."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    channels: frozenset[Literal["email", "sms", "push"]] = Field(
        frozenset({"email", "sms", "push"}), description="Channels carried out; decisions on others are left alone.")
    quiet_hours: tuple[int, int] = Field(JourneyConfig.model_fields["quiet_hours"].default,
                                         description="No contact from the first hour to the second (UTC), as the journey's.")
    clock: Literal["wall", "event"] = Field("wall", description="Sending time: now, or the decision's event time.")
    templates: dict[str, MessageTemplate] = Field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    offer_discount_pct: float = Field(10.0, gt=0, le=100)
    market_config: Path | None = Field(None, description="The market whose frequency cap applies (default: the shipped one).")
    ledger_url: str | None = Field(None, description="State store of the message ledger (default: AME_STATE_STORE).")
    providers: ProvidersConfig | None = Field(None, description="Provider URLs and credentials (default: AME_CHANNELS_*).")


class DispatchAgent(Agent):
    """Sends the journey's decided messages (see the module docstring).

    :param config: channels, templates, clock; the providers default to the settings where the agent runs.
    :param senders: senders by channel instead of the configured providers' (tests).
    """

    name: ClassVar[str] = "dispatch"
    event_types: ClassVar[frozenset[str]] = FACT_EVENTS | {"decision_made", "customer_erased"}

    def __init__(self, config: DispatchConfig | None = None, senders: Mapping[str, Sender] | None = None) -> None:
        self.config = config or DispatchConfig()
        self._given = dict(senders or {})
        self._senders: dict[str, Sender] = {}
        self._ledger: MessageLedger | None = None
        self._spec: ObservationSpec | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_senders={}, _ledger=None)  # opened again where the agent runs
        return state

    @property
    def spec(self) -> ObservationSpec:
        if self._spec is None:
            self._spec = ObservationSpec.of(load_market_config(self.config.market_config).journey)
        return self._spec

    @property
    def ledger(self) -> MessageLedger:
        if self._ledger is None:
            self._ledger = MessageLedger.from_url(self.config.ledger_url)
        return self._ledger

    def sender(self, channel: str) -> Sender:
        if channel not in self._senders:
            self._senders[channel] = self._given.get(channel) or build_sender(
                channel, self.config.providers or ProvidersConfig.from_settings())
        return self._senders[channel]

    # -- the fold ---------------------------------------------------------------------------------------

    def fold(self, record: Record | None, event: StoredEvent) -> Record:
        """The customer's facts and addresses after one event (pure)."""
        rec = dict(record or {"facts": new_record(), "to": {}})
        props = orjson.loads(event.properties_json) if event.event_type in READ_PROPERTIES else {}
        if event.event_type == "lead_created":
            rec["to"] = {**rec["to"], **{k: props[k] for k in ADDRESS_OF_CHANNEL.values() if props.get(k)}}
        elif event.event_type == "customer_erased":
            rec["to"] = {}
            return rec
        rec["facts"] = fold_event(rec["facts"], event.event_type, event.occurred_at_us, props, self.spec)
        return rec

    # -- deciding ---------------------------------------------------------------------------------------

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        """Fold the batch's facts, then carry out its decisions against the facts as of the batch's end."""
        decisions: list[tuple[StoredEvent, dict[str, Any]]] = []
        recs: dict[str, Record] = {}
        state.prefetch({e.customer_id for e in batch})
        for event in batch:
            if event.event_type == "decision_made":
                props = orjson.loads(event.properties_json)
                if props.get("agent") == "journey" and props.get("channel") in self.config.channels:
                    decisions.append((event, props))
                continue
            cid = event.customer_id
            recs[cid] = self.fold(recs.get(cid) or state.get(cid), event)
        out: list[EventBase] = []
        for event, props in decisions:
            cid = event.customer_id
            rec = recs.get(cid) or state.get(cid) or {"facts": new_record(), "to": {}}
            produced = self.carry_out(event, props, rec)
            if produced.event_type in SENT_EVENT.values():  # the contact holds the cap for the next decision
                rec = dict(rec, facts=fold_event(rec["facts"], produced.event_type, _micros(produced), {}, self.spec))
            recs[cid] = rec
            out.append(produced)
        for cid, rec in recs.items():
            state.put(cid, rec)
        return out

    def carry_out(self, decision: StoredEvent, props: Mapping[str, Any], rec: Record) -> EventBase:
        """The event one decision becomes: its earlier outcome if it has one, else a send or a suppression."""
        action, channel = str(props["action"]), str(props["channel"])
        now_us = decision.occurred_at_us if self.config.clock == "event" else int(time.time() * 1_000_000)
        earlier = self.ledger.by_decision(decision.event_id)
        if earlier is not None:
            if earlier.outcome == "sent" and earlier.message_id:
                return self.sent_event(decision, action, earlier.message_id, now_us)
            return self.suppressed(decision, channel, earlier.outcome or "outcome_unknown", now_us)
        reason = self.guard(action, rec["facts"], now_us)
        to = rec["to"].get(ADDRESS_OF_CHANNEL[channel])
        if reason is None and not to:
            reason = "no_address"
        sender = self.sender(channel) if reason is None else None  # a provider not configured fails before the claim
        self.ledger.claim(decision.event_id, decision.customer_id, channel, SENDERS[channel].provider)
        if sender is None:
            self.ledger.settle(decision.event_id, str(reason))
            return self.suppressed(decision, channel, str(reason), now_us)
        try:
            message_id = sender.send(self.message(decision, action, to))
        except DestinationError as error:
            if error.retryable:  # every retry failed: the batch fails and is retried later
                self.ledger.release(decision.event_id)
                raise
            self.ledger.settle(decision.event_id, "rejected")
            return self.suppressed(decision, channel, "rejected", now_us, str(error)[:2000])
        self.ledger.settle(decision.event_id, "sent", message_id)
        return self.sent_event(decision, action, message_id, now_us)

    def guard(self, action: str, facts: Record, now_us: int) -> str | None:
        """Why the guardrails forbid ``action`` now (None: they allow it)."""
        last = facts["last"][0]
        is_capped = bool(capped(np.array(NEVER if last is None else last), np.array(day_of(now_us)), self.spec))
        quiet = QuietHours(*self.config.quiet_hours).at(now_us)
        return suppression_reason(ACTIONS.index(action), consent_bits(facts), is_capped, quiet, withdrawn(facts, "ad"))

    def message(self, decision: StoredEvent, action: str, to: str) -> OutboundMessage:
        template = self.config.templates[action]
        fill = {"discount_pct": self.config.offer_discount_pct}
        return OutboundMessage(decision_id=decision.event_id, customer_id=decision.customer_id, to=to,
                               subject=template.subject.format(**fill), body=template.body.format(**fill))

    # -- the events it appends ---------------------------------------------------------------------------

    def sent_event(self, decision: StoredEvent, action: str, message_id: str, now_us: int) -> EventBase:
        props: dict[str, Any] = {"decision_id": decision.event_id, "provider_message_id": message_id}
        if action == "email":
            props["subject"] = self.config.templates[action].subject
        if action == "offer":
            props.update(discount_pct=self.config.offer_discount_pct, channel="email")
        return self._event(SENT_EVENT[action], decision, props, now_us)

    def suppressed(self, decision: StoredEvent, channel: str, reason: str, now_us: int, detail: str | None = None) -> EventBase:
        props = {"decision_id": decision.event_id, "channel": channel, "reason": reason, "detail": detail}
        return self._event("message_suppressed", decision, props, now_us)

    def _event(self, event_type: str, decision: StoredEvent, props: dict[str, Any], now_us: int) -> EventBase:
        return EVENT_TYPES[event_type].model_validate({
            "event_id": derive_event_id(decision.event_id, self.name, at=from_micros(decision.occurred_at_us)),
            "customer_id": decision.customer_id, "occurred_at": from_micros(now_us), "source": f"agent:{self.name}",
            "causation_id": decision.event_id, "properties": props})


def _micros(event: EventBase) -> int:
    return int(event.occurred_at.timestamp() * 1_000_000)
