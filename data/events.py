"""The event envelope and one immutable pydantic model per event type.

Every fact in the engine is one of these events. The log validates on append; anything that fails goes to
the dead-letter store with the reason produced by :func:`describe_validation_error`.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

SCHEMA_VERSION = 1
EVENT_ID_NAMESPACE = uuid.UUID("6f1d4b2e-8a51-4c57-9a0e-3f5e0c6f2a11")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@+\-]+$")
]
ShortText = Annotated[str, StringConstraints(max_length=256)]
LongText = Annotated[str, StringConstraints(max_length=2048)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Context = dict[str, str | int | float | bool | None]


class Channel(StrEnum):
    """Marketing channels. Consent is tracked per channel."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    AD = "ad"


class Properties(BaseModel):
    """Base of every event's typed payload; ``context`` carries free-form extras (UTM tags and such)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    context: Context | None = None


class EventBase(BaseModel):
    """The envelope shared by every event type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: Identifier = Field(description="Idempotency key: appending the same id twice stores it once.")
    event_type: str
    customer_id: Identifier
    occurred_at: Timestamp = Field(description="Event time, UTC.")
    recorded_at: Timestamp | None = Field(None, description="Log time, set by the log on append.")
    source: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "api"
    schema_version: Literal[1] = SCHEMA_VERSION
    causation_id: Identifier | None = Field(None, description="The event that caused this one.")
    properties: Properties


# ---- acquisition and web ------------------------------------------------------------------------------


class LeadCreatedProperties(Properties):
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    acquisition_source: ShortText | None = None
    campaign_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    push_token: Annotated[str, StringConstraints(max_length=4096)] | None = Field(
        None, description="The app's Firebase Cloud Messaging registration token (push messages go to it).")


class LeadCreated(EventBase):
    event_type: Literal["lead_created"] = "lead_created"
    properties: LeadCreatedProperties = LeadCreatedProperties()


class CustomerAttributesProperties(Properties):
    """What the engine knows of a customer beyond their events: the journey policy's profile columns.

    Every field is optional: a missing one keeps its last stated value, and one never stated reads as the
    documented default of the journey observation (see ``environment.observation``).
    """

    recency_months: Annotated[int, Field(ge=1, le=12)] | None = Field(None, description="Months since the last purchase (1-12).")
    history: Money | None = Field(None, description="Spend in the past 12 months.")
    bought_mens: bool | None = Field(None, description="Bought men's merchandise in the past 12 months.")
    bought_womens: bool | None = Field(None, description="Bought women's merchandise in the past 12 months.")
    newbie: bool | None = Field(None, description="A new customer in the past 12 months.")
    purchase_channel: Literal["phone", "web", "multichannel"] | None = None
    zip_type: Literal["urban", "suburban", "rural"] | None = None


class CustomerAttributes(EventBase):
    event_type: Literal["customer_attributes"] = "customer_attributes"
    properties: CustomerAttributesProperties


class PageViewProperties(Properties):
    url: LongText
    referrer: LongText | None = None
    title: ShortText | None = None
    session_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    duration_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class PageView(EventBase):
    event_type: Literal["page_view"] = "page_view"
    properties: PageViewProperties


class ContentDownloadProperties(Properties):
    content_id: Identifier
    content_type: Literal["whitepaper", "ebook", "case_study", "webinar", "report", "other"] = "other"
    url: LongText | None = None


class ContentDownload(EventBase):
    event_type: Literal["content_download"] = "content_download"
    properties: ContentDownloadProperties


# ---- messages -----------------------------------------------------------------------------------------


class MessageProperties(Properties):
    campaign_id: Identifier | None = None
    creative_id: Identifier | None = None
    decision_id: Identifier | None = Field(None, description="The decision_made event that sent it.")
    provider_message_id: ShortText | None = Field(
        None, description="The provider's id of the message (SendGrid X-Message-Id, Twilio sid, FCM name).")


class EmailSentProperties(MessageProperties):
    subject: ShortText | None = None


class EmailSent(EventBase):
    event_type: Literal["email_sent"] = "email_sent"
    properties: EmailSentProperties = EmailSentProperties()


class EmailOpen(EventBase):
    event_type: Literal["email_open"] = "email_open"
    properties: MessageProperties = MessageProperties()


class ClickProperties(MessageProperties):
    url: LongText | None = None


class EmailClick(EventBase):
    event_type: Literal["email_click"] = "email_click"
    properties: ClickProperties = ClickProperties()


class SmsSent(EventBase):
    event_type: Literal["sms_sent"] = "sms_sent"
    properties: MessageProperties = MessageProperties()


class SmsClick(EventBase):
    event_type: Literal["sms_click"] = "sms_click"
    properties: ClickProperties = ClickProperties()


class PushSent(EventBase):
    event_type: Literal["push_sent"] = "push_sent"
    properties: MessageProperties = MessageProperties()


class PushOpen(EventBase):
    event_type: Literal["push_open"] = "push_open"
    properties: MessageProperties = MessageProperties()


class EmailDelivered(EventBase):
    """The e-mail provider handed the message to the recipient's mail server."""

    event_type: Literal["email_delivered"] = "email_delivered"
    properties: MessageProperties = MessageProperties()


class BounceProperties(MessageProperties):
    kind: Literal["bounce", "blocked", "dropped"] = "bounce"
    reason: LongText | None = None


class EmailBounced(EventBase):
    """The e-mail could not be delivered (the provider's bounce, block or drop)."""

    event_type: Literal["email_bounced"] = "email_bounced"
    properties: BounceProperties = BounceProperties()


class SmsDelivered(EventBase):
    event_type: Literal["sms_delivered"] = "sms_delivered"
    properties: MessageProperties = MessageProperties()


class SmsFailedProperties(MessageProperties):
    status: Literal["undelivered", "failed"] = "undelivered"
    error_code: ShortText | None = None


class SmsFailed(EventBase):
    event_type: Literal["sms_failed"] = "sms_failed"
    properties: SmsFailedProperties = SmsFailedProperties()


class PushDelivered(EventBase):
    event_type: Literal["push_delivered"] = "push_delivered"
    properties: MessageProperties = MessageProperties()


class MessageSuppressedProperties(MessageProperties):
    """Why a decided message was not sent: a guardrail that no longer held at the moment of sending, no address
    to send to, the provider refusing the request, or a send cut off by a crash (``outcome_unknown``: not repeated)."""

    channel: Channel
    reason: Literal["consent", "frequency_cap", "quiet_hours", "no_address", "rejected", "outcome_unknown"]
    detail: LongText | None = None


class MessageSuppressed(EventBase):
    event_type: Literal["message_suppressed"] = "message_suppressed"
    properties: MessageSuppressedProperties


class OfferSentProperties(MessageProperties):
    discount_pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
    channel: Channel = Channel.EMAIL
    offer_code: Identifier | None = None


class OfferSent(EventBase):
    event_type: Literal["offer_sent"] = "offer_sent"
    properties: OfferSentProperties


# ---- ads ----------------------------------------------------------------------------------------------


class AdProperties(Properties):
    campaign_id: Identifier
    creative_id: Identifier | None = None
    placement: ShortText | None = None
    cost: Money = 0.0
    currency: Currency = "USD"


class AdImpression(EventBase):
    event_type: Literal["ad_impression"] = "ad_impression"
    properties: AdProperties


class AdClick(EventBase):
    event_type: Literal["ad_click"] = "ad_click"
    properties: AdProperties


class AuctionResultProperties(Properties):
    campaign_id: Identifier
    auction_id: Identifier
    bid: Money
    won: bool
    price_paid: Money = 0.0
    reserve_price: Money = 0.0
    auction_type: Literal["first_price", "second_price"] = "second_price"
    pctr: Probability | None = None
    currency: Currency = "USD"
    estimate: Money | None = Field(None, description="The bidder's estimate of the impression's value when it bid.")
    price_to_beat: Money | None = Field(
        None, description="The lowest bid that would have won, as the exchange reports it: max(highest other bid, reserve).")


class AuctionResult(EventBase):
    event_type: Literal["auction_result"] = "auction_result"
    properties: AuctionResultProperties


# ---- commerce, consent, support -----------------------------------------------------------------------


class PurchaseProperties(Properties):
    order_id: Identifier
    amount: Money
    currency: Currency = "USD"
    items: Annotated[int, Field(ge=0)] = 1
    discount: Money = 0.0
    campaign_id: Identifier | None = None


class Purchase(EventBase):
    event_type: Literal["purchase"] = "purchase"
    properties: PurchaseProperties


class UnsubscribeProperties(Properties):
    channel: Channel
    reason: ShortText | None = None
    campaign_id: Identifier | None = None


class Unsubscribe(EventBase):
    event_type: Literal["unsubscribe"] = "unsubscribe"
    properties: UnsubscribeProperties


class ConsentChangedProperties(Properties):
    channel: Channel
    granted: bool
    purpose: Literal["marketing", "analytics", "personalization"] = "marketing"
    legal_basis: Literal["consent", "legitimate_interest", "contract"] = "consent"


class ConsentChanged(EventBase):
    event_type: Literal["consent_changed"] = "consent_changed"
    properties: ConsentChangedProperties


class SupportTicketProperties(Properties):
    ticket_id: Identifier
    category: ShortText = "general"
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    sentiment: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None


class SupportTicket(EventBase):
    event_type: Literal["support_ticket"] = "support_ticket"
    properties: SupportTicketProperties


# ---- the engine's own decisions -----------------------------------------------------------------------


class Reason(BaseModel):
    """One feature's contribution to a score (a TreeSHAP value, in the model's output units)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    feature: ShortText
    contribution: float
    value: str | float | int | bool | None = None


class ScoreUpdatedProperties(Properties):
    model: Literal["lead", "churn", "clv", "conversion"]
    score: Annotated[float, Field(allow_inf_nan=False)]
    model_version: ShortText
    tier: Literal["High", "Medium", "Low"] | None = None
    probability: Probability | None = None
    reasons: list[Reason] = Field(default_factory=list, max_length=20)


class ScoreUpdated(EventBase):
    event_type: Literal["score_updated"] = "score_updated"
    properties: ScoreUpdatedProperties


class DecisionMadeProperties(Properties):
    """What off-policy evaluation needs: the action, its propensity, the policy and the features' hash."""

    agent: ShortText
    action: ShortText
    channel: Channel | None = None
    propensity: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    policy_name: ShortText
    policy_version: ShortText
    features_hash: ShortText | None = None
    holdout: bool = False
    reward: Annotated[float, Field(allow_inf_nan=False)] | None = None


class DecisionMade(EventBase):
    event_type: Literal["decision_made"] = "decision_made"
    properties: DecisionMadeProperties


class PolicyPromotionProperties(Properties):
    """A policy put into a serving slot, or refused by the promotion gate (the gate's figures in ``context``)."""

    slot: Literal["journey", "bidding"]
    policy_name: ShortText
    policy_version: ShortText
    previous_name: ShortText
    previous_version: ShortText
    outcome: Literal["promoted", "refused", "forced"]


class PolicyPromotion(EventBase):
    event_type: Literal["policy_promotion"] = "policy_promotion"
    properties: PolicyPromotionProperties


class TaskCreatedProperties(Properties):
    task_type: ShortText
    queue: ShortText = "sales"
    reason: LongText | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    due_at: Timestamp | None = None


class TaskCreated(EventBase):
    event_type: Literal["task_created"] = "task_created"
    properties: TaskCreatedProperties


class CampaignUpdatedProperties(Properties):
    """A campaign's definition, stated or changed; the latest event of a campaign wins. Logged under the broadcast
    customer id (``system``): a campaign is no customer's."""

    campaign_id: Identifier
    name: ShortText
    channel: Channel
    start_date: date
    end_date: date | None = Field(None, description="Last day of the campaign; none while it runs open-ended.")
    daily_budget: Money | None = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> CampaignUpdatedProperties:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class CampaignUpdated(EventBase):
    event_type: Literal["campaign_updated"] = "campaign_updated"
    properties: CampaignUpdatedProperties


class CrmTaskSyncedProperties(Properties):
    """A ``task_created`` carried to the CRM: the CRM's record id of the task (the event's causation is the task)."""

    crm: Literal["salesforce"] = "salesforce"
    record_id: Identifier = Field(description="The CRM's id of the task record.")
    created: bool = Field(True, description="False when the CRM held the task already (a replayed sync).")


class CrmTaskSynced(EventBase):
    event_type: Literal["crm_task_synced"] = "crm_task_synced"
    properties: CrmTaskSyncedProperties


class CrmOutcomeProperties(Properties):
    """An outcome pulled back from the CRM (an opportunity closed, a lead converted), by modification time."""

    crm: Literal["salesforce"] = "salesforce"
    record_id: Identifier = Field(description="The CRM's id of the opportunity or lead.")
    modified_at: Timestamp = Field(description="The record's modification stamp (Salesforce SystemModstamp): the pull's watermark.")
    stage: ShortText | None = None
    amount: Money | None = None


class OpportunityWon(EventBase):
    event_type: Literal["opportunity_won"] = "opportunity_won"
    properties: CrmOutcomeProperties


class OpportunityLost(EventBase):
    event_type: Literal["opportunity_lost"] = "opportunity_lost"
    properties: CrmOutcomeProperties


class LeadConverted(EventBase):
    event_type: Literal["lead_converted"] = "lead_converted"
    properties: CrmOutcomeProperties


# ---- the scheduler and retraining ---------------------------------------------------------------------


class ScheduleRunProperties(Properties):
    """One run of a scheduled job, with its outcome: the scheduler's memory of what ran (it reads them on restart)."""

    job: Identifier
    due_at: Timestamp = Field(description="The cron slot this run served (the moment of a manual run).")
    started_at: Timestamp
    finished_at: Timestamp
    outcome: Literal["ok", "failed"]
    trigger: Literal["cron", "catch_up", "manual"] = "cron"
    summary: LongText | None = None
    error: LongText | None = None


class ScheduleRun(EventBase):
    event_type: Literal["schedule_run"] = "schedule_run"
    properties: ScheduleRunProperties


class ModelChallengeProperties(Properties):
    """A retrained challenger against the champion on a time-split holdout: both ROC-AUCs, the difference and its
    paired-bootstrap CI. ``promoted`` only when the CI's low end is above 0."""

    kind: Literal["lead", "churn"]
    champion_version: ShortText
    challenger_version: ShortText | None = Field(None, description="The registry version, when promoted (a kept challenger is not saved).")
    champion_auc: Annotated[float, Field(ge=0, le=1)]
    challenger_auc: Annotated[float, Field(ge=0, le=1)]
    auc_difference: Annotated[float, Field(ge=-1, le=1)]
    ci_low: Annotated[float, Field(ge=-1, le=1)]
    ci_high: Annotated[float, Field(ge=-1, le=1)]
    confidence: Probability = 0.95
    bootstrap: Annotated[int, Field(ge=1)]
    train_rows: Annotated[int, Field(ge=0)]
    holdout_rows: Annotated[int, Field(ge=0)]
    outcome: Literal["promoted", "kept"]


class ModelChallenge(EventBase):
    event_type: Literal["model_challenge"] = "model_challenge"
    properties: ModelChallengeProperties


# ---- identity -----------------------------------------------------------------------------------------


class IdentityMergedProperties(Properties):
    """Ids found to be one customer (see data/identity.py); the event's customer_id is the canonical id."""

    merged_ids: list[Identifier] = Field(min_length=1, max_length=1000, description="Ids merged into customer_id.")
    identifiers: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, max_length=1000, description="The shared identifiers that linked them, as kind:value."
    )
    rule: ShortText = "connected_components"


class IdentityMerged(EventBase):
    event_type: Literal["identity_merged"] = "identity_merged"
    properties: IdentityMergedProperties


# ---- privacy ------------------------------------------------------------------------------------------


class CustomerErasedProperties(Properties):
    """A right-to-erasure request carried out (data/privacy): the customer's key is deleted, so every encrypted
    property of theirs reads as erased. Holds no personal data."""

    requested_by: ShortText
    reason: ShortText | None = None
    key_deleted: bool = True


class CustomerErased(EventBase):
    event_type: Literal["customer_erased"] = "customer_erased"
    properties: CustomerErasedProperties


class DataAccessedProperties(Properties):
    """The audit record of a read of one customer's data (who, through what, which part)."""

    accessor: ShortText = Field(description="The API key name or CLI user that read the data.")
    resource: ShortText = Field(description="The route or command, e.g. GET /v1/customers/{customer_id}.")
    purpose: ShortText | None = None


class DataAccessed(EventBase):
    event_type: Literal["data_accessed"] = "data_accessed"
    properties: DataAccessedProperties


Event = Annotated[
    (
        LeadCreated
        | CustomerAttributes
        | PageView
        | ContentDownload
        | EmailSent
        | EmailOpen
        | EmailClick
        | SmsSent
        | SmsClick
        | PushSent
        | PushOpen
        | EmailDelivered
        | EmailBounced
        | SmsDelivered
        | SmsFailed
        | PushDelivered
        | MessageSuppressed
        | OfferSent
        | AdImpression
        | AdClick
        | AuctionResult
        | Purchase
        | Unsubscribe
        | ConsentChanged
        | SupportTicket
        | ScoreUpdated
        | DecisionMade
        | PolicyPromotion
        | TaskCreated
        | CrmTaskSynced
        | OpportunityWon
        | OpportunityLost
        | LeadConverted
        | ScheduleRun
        | ModelChallenge
        | CampaignUpdated
        | IdentityMerged
        | CustomerErased
        | DataAccessed
    ),
    Field(discriminator="event_type"),
]
"""Any event, discriminated on ``event_type``."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["event_type"].default: cls for cls in EventBase.__subclasses__()
}
CHANNEL_OF_EVENT: dict[str, Channel] = {
    "email_sent": Channel.EMAIL,
    "email_open": Channel.EMAIL,
    "email_click": Channel.EMAIL,
    "sms_sent": Channel.SMS,
    "sms_click": Channel.SMS,
    "push_sent": Channel.PUSH,
    "push_open": Channel.PUSH,
    "email_delivered": Channel.EMAIL,
    "email_bounced": Channel.EMAIL,
    "sms_delivered": Channel.SMS,
    "sms_failed": Channel.SMS,
    "push_delivered": Channel.PUSH,
    "ad_impression": Channel.AD,
    "ad_click": Channel.AD,
}
"""The channel an event type belongs to, for the types that belong to one."""


class EventError(ValueError):
    """Base of the errors raised for bad event input."""


class MalformedEventError(EventError):
    """The input is not a JSON object at all."""


class EventValidationError(EventError):
    """The input is JSON but breaks the schema of its event type; the message names event, field and rule."""

    def __init__(self, message: str, issues: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.issues = issues


def _time_ordered_uuid(millis: int, tail: int, version: int) -> str:
    """A UUID whose first 48 bits are Unix milliseconds (RFC 9562 layout), so ids sort by time and the
    log's unique index grows at its end instead of at random pages."""
    value = (millis & (2**48 - 1)) << 80 | version << 76 | (tail >> 62 & 0xFFF) << 64 | 0b10 << 62 | tail & (2**62 - 1)
    h = f"{value:032x}"  # the canonical 8-4-4-4-12 form, without building a uuid.UUID (hot in agents)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_event_id(at: datetime | None = None) -> str:
    """A fresh, time-ordered event id (UUIDv7)."""
    millis = int((at or datetime.now(UTC)).timestamp() * 1000)
    return _time_ordered_uuid(millis, int.from_bytes(os.urandom(10)), 7)


def derive_event_id(*parts: object, at: datetime | None = None) -> str:
    """A deterministic event id from its causes, so that a replay re-derives the same id.

    With ``at`` (the triggering event's time) the id is also time-ordered (a UUIDv8 with a UUIDv7 layout).
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    if at is None:
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, digest.hex()))
    return _time_ordered_uuid(int(at.timestamp() * 1000), int.from_bytes(digest[:10]), 8)


def describe_validation_error(error: ValidationError, raw: Any) -> EventValidationError:
    """Turn pydantic's error into one that names the event, the field and the rule it broke."""
    event_id = raw.get("event_id", "?") if isinstance(raw, dict) else "?"
    event_type = raw.get("event_type") if isinstance(raw, dict) else None
    issues: list[dict[str, str]] = []
    for err in error.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if event_type is not None and loc and loc[0] == event_type:
            loc = loc[1:]  # drop the discriminator's tag from the path
        rule = err["type"]
        message = err["msg"]
        if rule == "union_tag_invalid":
            loc, message = ["event_type"], f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        elif rule == "union_tag_not_found":
            loc, message = ["event_type"], "missing; every event needs an event_type"
        issues.append({"field": ".".join(loc) or "(event)", "rule": rule, "message": message})
    label = f"event {event_id!r} ({event_type or 'no event_type'})"
    detail = "; ".join(f"field {i['field']}: {i['message']} [rule: {i['rule']}]" for i in issues)
    return EventValidationError(f"{label}: {detail}", issues)


def validate_event(raw: dict[str, Any]) -> EventBase:
    """Validate one event given as a dict, raising :class:`EventValidationError` with a readable message."""
    if not isinstance(raw, dict):
        raise MalformedEventError(f"an event must be a JSON object, got {type(raw).__name__}")
    try:
        return EVENT_ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise describe_validation_error(error, raw) from None
