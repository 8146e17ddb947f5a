"""Outcomes pulled back from Salesforce, incrementally by ``SystemModstamp``, as events.

Closed opportunities become ``opportunity_won`` / ``opportunity_lost`` and converted leads ``lead_converted``; a
record must carry the engine's customer id (``AME_Customer_Id__c``) to be attributed. On a positional log the
watermark is the log's own: the newest ``modified_at`` among the outcome events already logged. A Pub/Sub log cannot
be read back, so there the watermark is a tracking record in the state store (``AME_STATE_STORE``), moved after each
pull's events are published (:func:`open_watermark` picks one). Each pull asks for records modified at or
after it (``>=``, so a record stamped in the same instant as the last one is not missed); the event ids derive from
the record id and its stamp, so what was pulled before is a duplicate the log skips.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from data.crm.salesforce import SalesforceClient
from data.crm.tasks import CUSTOMER_FIELD
from data.events import EventBase, LeadConverted, OpportunityLost, OpportunityWon, derive_event_id
from data.log import EventLog, PositionalReader
from data.log.base import from_micros, replay_all, to_micros
from data.projections.store import StateStore, open_state_store

log = logging.getLogger(__name__)

OUTCOME_TYPES = ("opportunity_won", "opportunity_lost", "lead_converted")
OPPORTUNITY_FIELDS = f"Id, StageName, IsWon, Amount, {CUSTOMER_FIELD}, SystemModstamp"
LEAD_FIELDS = f"Id, Status, {CUSTOMER_FIELD}, SystemModstamp"


@dataclass(frozen=True, slots=True)
class PullReport:
    opportunities: int
    leads: int
    unattributed: int
    appended: int
    duplicates: int
    since: datetime | None
    watermark: datetime | None

    def line(self) -> str:
        since = self.since.isoformat() if self.since else "the beginning"
        return (f"{self.opportunities} closed opportunities and {self.leads} converted leads since {since}: "
                f"{self.appended} new outcome events, {self.duplicates} already logged, {self.unattributed} without a customer id")


def soql_time(moment: datetime) -> str:
    """A SOQL datetime literal (UTC, no quotes)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def opportunity_query(since: datetime | None) -> str:
    after = f" AND SystemModstamp >= {soql_time(since)}" if since else ""
    return f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity WHERE IsClosed = true{after} ORDER BY SystemModstamp"


def lead_query(since: datetime | None) -> str:
    after = f" AND SystemModstamp >= {soql_time(since)}" if since else ""
    return f"SELECT {LEAD_FIELDS} FROM Lead WHERE IsConverted = true{after} ORDER BY SystemModstamp"


def watermark(log_: PositionalReader) -> datetime | None:
    """The newest CRM modification stamp among the outcome events in the log (None before the first pull)."""
    stamps = [orjson.loads(e.properties_json or "{}").get("modified_at") for e in replay_all(log_, OUTCOME_TYPES)]
    known = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps if s]
    return max(known) if known else None


WATERMARK_CONSUMER = "crm:salesforce:outcomes"
"""The state store's tracking record of the pull's watermark (µs since the epoch) on a log without positions."""


@runtime_checkable
class OutcomeWatermark(Protocol):
    """Where the pull's watermark lives: the newest CRM modification stamp already turned into events."""

    def since(self) -> datetime | None:
        """The watermark (None before the first pull)."""
        ...

    def advance(self, moment: datetime) -> None:
        """Move the watermark to ``moment`` (never back), once the events up to it are logged."""
        ...

    def close(self) -> None: ...


class LogWatermark:
    """The watermark of a positional log: read from its outcome events, so logging them is what moves it."""

    def __init__(self, log: PositionalReader) -> None:
        self.log = log

    def since(self) -> datetime | None:
        return watermark(self.log)

    def advance(self, moment: datetime) -> None:
        return None

    def close(self) -> None:
        return None


class StoreWatermark:
    """The watermark as a tracking record of the state store (closed with it)."""

    def __init__(self, store: StateStore, consumer: str = WATERMARK_CONSUMER) -> None:
        self.store = store
        self.consumer = consumer

    def since(self) -> datetime | None:
        micros = self.store.position(self.consumer)
        return from_micros(micros) if micros else None

    def advance(self, moment: datetime) -> None:
        with self.store.transaction() as conn:
            row = conn.execute("select position from tracking where consumer = ?", (self.consumer,)).fetchone()
            if row is None or row[0] < to_micros(moment):
                self.store.commit_position(conn, self.consumer, to_micros(moment))

    def close(self) -> None:
        self.store.close()


def open_watermark(log: EventLog, state_url: str | None = None) -> OutcomeWatermark:
    """The watermark for ``log``: its outcome events when it keeps positions, else the state store at
    ``state_url`` (default ``AME_STATE_STORE``)."""
    if isinstance(log, PositionalReader):
        return LogWatermark(log)
    return StoreWatermark(open_state_store(state_url))


def parse_stamp(text: str) -> datetime:
    """Salesforce's ``2026-01-01T10:00:00.000+0000`` (or ISO 8601 with Z) as a UTC datetime."""
    text = text.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def outcome_event(record: dict[str, Any], kind: str) -> EventBase | None:
    """The outcome event of one Opportunity or Lead record (None without a customer id)."""
    customer = record.get(CUSTOMER_FIELD)
    if not customer:
        return None
    stamp = parse_stamp(record["SystemModstamp"])
    if kind == "Lead":
        cls: type[EventBase] = LeadConverted
        stage = record.get("Status")
    else:
        cls = OpportunityWon if record.get("IsWon") else OpportunityLost
        stage = record.get("StageName")
    amount = record.get("Amount")
    return cls(
        event_id=derive_event_id("salesforce", kind, record["Id"], stamp.isoformat(), at=stamp),
        customer_id=customer, occurred_at=stamp, source="crm:salesforce",
        properties={"record_id": record["Id"], "modified_at": stamp, "stage": stage,
                    "amount": float(amount) if amount is not None and amount >= 0 else None},
    )


def pull_outcomes(client: SalesforceClient, log_: EventLog, state_url: str | None = None) -> PullReport:
    """Pull what changed since the watermark and append it as outcome events (see the module docstring)."""
    mark = open_watermark(log_, state_url)
    try:
        since = mark.since()
        report = _pull(client, log_, since)
        if report.watermark is not None:
            mark.advance(report.watermark)
    finally:
        mark.close()
    log.info("crm pull: %s", report.line())
    return report


def _pull(client: SalesforceClient, log_: EventLog, since: datetime | None) -> PullReport:
    """Query both record types modified at or after ``since`` and append their outcome events."""
    events: list[EventBase] = []
    counts = {"Opportunity": 0, "Lead": 0}
    unattributed = 0
    for kind, soql in (("Opportunity", opportunity_query(since)), ("Lead", lead_query(since))):
        for record in client.query(soql):
            counts[kind] += 1
            event = outcome_event(record, kind)
            if event is None:
                unattributed += 1
            else:
                events.append(event)
    result = log_.append(events) if events else None
    return PullReport(counts["Opportunity"], counts["Lead"], unattributed, result.appended if result else 0,
                      result.duplicates if result else 0, since, max((e.occurred_at for e in events), default=since))
