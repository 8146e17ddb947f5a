"""The event schemas: one model per type, validation errors that name event, field and rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from data.events import (
    EVENT_TYPES,
    EventValidationError,
    MalformedEventError,
    derive_event_id,
    new_event_id,
    validate_event,
)
from data.synthetic import MIX, synthetic_dicts

REQUIRED_TYPES = {
    "lead_created", "page_view", "content_download", "email_sent", "email_open", "email_click", "sms_sent",
    "push_sent", "ad_impression", "ad_click", "purchase", "unsubscribe", "consent_changed", "support_ticket",
    "score_updated", "decision_made", "auction_result", "task_created",
}

EXAMPLES: dict[str, dict] = {
    "score_updated": {"model": "lead", "score": 81.5, "model_version": "3", "tier": "High",
                      "reasons": [{"feature": "email_click", "contribution": 0.4, "value": 3}]},
    "auction_result": {"campaign_id": "c1", "auction_id": "a1", "bid": 1.2, "won": True, "price_paid": 0.9},
    "task_created": {"task_type": "sales_follow_up", "reason": "lead score 86", "priority": "high"},
    "offer_sent": {"discount_pct": 15},
    "sms_click": {},
}


def envelope(event_type: str, properties: dict, **overrides: object) -> dict:
    return {"event_id": "evt-1", "event_type": event_type, "customer_id": "cust-1",
            "occurred_at": "2026-03-01T12:00:00Z", "source": "test", "properties": properties, **overrides}


def test_every_required_type_has_a_model() -> None:
    assert set(EVENT_TYPES) >= REQUIRED_TYPES


@pytest.mark.parametrize("event_type", sorted(set(MIX) | set(EXAMPLES)))
def test_examples_validate_and_round_trip(event_type: str) -> None:
    if event_type in EXAMPLES:
        raw = envelope(event_type, EXAMPLES[event_type])
    else:
        raw = next(d for d in synthetic_dicts(2_000, 50, seed=1) if d["event_type"] == event_type)
    event = validate_event(raw)
    assert type(event) is EVENT_TYPES[event_type]
    again = validate_event(event.model_dump(mode="json"))
    assert again == event


def test_error_names_event_field_and_rule() -> None:
    with pytest.raises(EventValidationError) as info:
        validate_event(envelope("purchase", {"order_id": "o1", "amount": -5}))
    message = str(info.value)
    assert "'evt-1'" in message and "(purchase)" in message
    assert "properties.amount" in message
    assert "greater_than_equal" in message
    assert info.value.issues == [{"field": "properties.amount", "rule": "greater_than_equal",
                                  "message": "Input should be greater than or equal to 0"}]


def test_missing_required_property_is_named() -> None:
    with pytest.raises(EventValidationError, match=r"field properties.order_id: Field required \[rule: missing\]"):
        validate_event(envelope("purchase", {"amount": 3}))


def test_unknown_event_type_lists_known_ones() -> None:
    with pytest.raises(EventValidationError, match=r"unknown event type 'purchased'.*page_view"):
        validate_event(envelope("purchased", {}))


def test_missing_event_type() -> None:
    raw = envelope("page_view", {"url": "/"})
    del raw["event_type"]
    with pytest.raises(EventValidationError, match="field event_type: missing"):
        validate_event(raw)


def test_naive_timestamp_is_rejected_and_offsets_become_utc() -> None:
    with pytest.raises(EventValidationError, match=r"field occurred_at: .*timezone.*\[rule: timezone_aware\]"):
        validate_event(envelope("page_view", {"url": "/"}, occurred_at="2026-03-01T12:00:00"))
    event = validate_event(envelope("page_view", {"url": "/"}, occurred_at="2026-03-01T14:00:00+02:00"))
    assert event.occurred_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_unknown_fields_are_refused_not_dropped() -> None:
    with pytest.raises(EventValidationError, match=r"field properties.colour: .*\[rule: extra_forbidden\]"):
        validate_event(envelope("page_view", {"url": "/", "colour": "red"}))
    ok = validate_event(envelope("page_view", {"url": "/", "context": {"utm_source": "news"}}))
    assert ok.properties.context == {"utm_source": "news"}


def test_consent_channel_is_checked() -> None:
    with pytest.raises(EventValidationError, match=r"properties.channel.*\[rule: enum\]"):
        validate_event(envelope("consent_changed", {"channel": "pigeon", "granted": True}))


def test_propensity_must_be_a_probability() -> None:
    props = {"agent": "journey", "action": "email", "propensity": 0, "policy_name": "p", "policy_version": "1"}
    with pytest.raises(EventValidationError, match=r"properties.propensity.*greater_than"):
        validate_event(envelope("decision_made", props))


def test_bad_identifiers_and_non_objects() -> None:
    with pytest.raises(EventValidationError, match=r"field customer_id: .*\[rule: string_pattern_mismatch\]"):
        validate_event(envelope("page_view", {"url": "/"}, customer_id="has space"))
    with pytest.raises(MalformedEventError):
        validate_event(["not", "an", "object"])  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    event = validate_event(envelope("page_view", {"url": "/"}))
    with pytest.raises(ValidationError):
        event.customer_id = "someone-else"  # type: ignore[misc]


def test_ids_are_time_ordered_and_derived_ids_deterministic() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert new_event_id(early) < new_event_id(late)
    assert uuid.UUID(new_event_id()).version == 7
    a = derive_event_id("evt-9", "journey", at=early)
    assert a == derive_event_id("evt-9", "journey", at=early)
    assert a != derive_event_id("evt-9", "bidding", at=early)
    assert a < derive_event_id("evt-0", "journey", at=late)
    assert derive_event_id("x") == derive_event_id("x") != derive_event_id("y")
