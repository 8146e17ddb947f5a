"""Request and response models of the decision API (validated at the edge; 422 names the field)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CustomerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@+\-]{1,128}$")]
ShortId = Annotated[str, StringConstraints(min_length=1, max_length=128)]

MAX_EVENTS_PER_REQUEST = 1_000


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---- events ------------------------------------------------------------------------------------------


class EventsIn(_In):
    """A batch of events, each validated on its own (a bad item is rejected, its neighbours are kept)."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)
    source: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "api"


class ItemError(_Out):
    index: int
    event_id: str | None
    error: str


class EventsOut(_Out):
    accepted: int = Field(description="Valid events: appended now or already in the log (duplicates).")
    appended: int
    duplicates: int
    rejected: int
    errors: list[ItemError] = Field(default_factory=list, description="One per rejected item (also in the dead-letter store).")


# ---- customers -----------------------------------------------------------------------------------------


class ReasonOut(_Out):
    feature: str
    contribution: float
    value: str | float | int | bool | None = None


class ScoreOut(_Out):
    model: str
    model_version: str
    score: float
    probability: float
    tier: str
    reasons: list[ReasonOut] = Field(default_factory=list)


class CustomerOut(_Out):
    customer_id: str
    profile: dict[str, Any]
    scores: list[ScoreOut]


# ---- next best action ----------------------------------------------------------------------------------


class NextBestActionIn(_In):
    customer_id: CustomerId
    context: dict[str, str | int | float | bool | None] | None = None


class NextBestActionOut(_Out):
    decision_id: str
    customer_id: str
    action: str
    channel: str | None
    propensity: float
    policy_name: str
    policy_version: str
    reason: str | None = None


# ---- bidding (a minimal OpenRTB 2.x subset) --------------------------------------------------------------


class Imp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")  # OpenRTB objects carry many optional fields
    id: ShortId
    bidfloor: float = Field(0.0, ge=0, allow_inf_nan=False)
    bidfloorcur: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    tagid: str | None = None


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    id: str | None = None


class Device(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    ua: str | None = None
    ip: str | None = None
    devicetype: int | None = None


class BidRequest(BaseModel):
    """OpenRTB 2.x: ``id``, ``imp[]``, ``user``, ``device``, ``tmax``; ``ext.campaign_id`` names our campaign."""

    model_config = ConfigDict(frozen=True, extra="allow")
    id: ShortId
    imp: list[Imp] = Field(min_length=1, max_length=20)
    user: User | None = None
    device: Device | None = None
    tmax: int | None = Field(None, ge=1, le=10_000, description="Milliseconds the exchange waits.")
    ext: dict[str, Any] | None = None


class Bid(_Out):
    id: str
    impid: str
    price: float


class SeatBid(_Out):
    bid: list[Bid]


class BidResponse(_Out):
    id: str
    seatbid: list[SeatBid]
    cur: str = "USD"
    ext: dict[str, Any] = Field(default_factory=dict)


# ---- creatives ------------------------------------------------------------------------------------------


class CreativeSelectIn(_In):
    """Pick an approved creative variant for a customer's segment (the creative bandit of ``policies.creative``)."""

    customer_id: CustomerId
    segment: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    kind: Literal["email_subject", "ad_copy", "social_post", "product_description"] = "email_subject"
    request_id: ShortId | None = Field(None, description="Idempotency key: a retry with the same id logs one exposure.")


class CreativeSelectOut(_Out):
    decision_id: str
    customer_id: str
    variant_id: str
    kind: str
    segment: str
    text: str
    propensity: float
    policy_name: str
    policy_version: str


class ErrorOut(_Out):
    detail: Any
