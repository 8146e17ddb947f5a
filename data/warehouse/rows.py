"""Turning a logged event into a ``raw_events`` row: the envelope, the JSON payload and the hot properties.

The same function shapes the rows the loader writes and the messages a Pub/Sub BigQuery subscription
would write, so both paths fill ``raw_events`` alike.
"""

from __future__ import annotations

from typing import Any

import orjson

from data.events import CHANNEL_OF_EVENT
from data.log.base import StoredEvent

_STRING_PROPS = ("campaign_id", "creative_id", "anonymous_id", "session_id", "url")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def hot_properties(event_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """The properties that staging reads at scale, as typed values (None where absent)."""
    out: dict[str, Any] = {name: (str(props[name]) if props.get(name) is not None else None) for name in _STRING_PROPS}
    out["amount"] = _number(props.get("amount")) if event_type == "purchase" else None
    cost = props.get("price_paid") if event_type == "auction_result" else props.get("cost")
    out["cost"] = _number(cost)
    channel = props.get("channel") or CHANNEL_OF_EVENT.get(event_type)
    out["channel"] = str(channel) if channel is not None else None
    is_score = event_type == "score_updated"
    out["score_model"] = props.get("model") if is_score else None
    out["score"] = score_value(props) if is_score else None
    return out


# raw column <- the context keys that fill it, first present wins (UTM names first, then plain names)
_CONTEXT_KEYS: dict[str, tuple[str, ...]] = {
    "device_type": ("device_type",),
    "traffic_source": ("utm_source", "source"),
    "traffic_medium": ("utm_medium", "medium"),
    "traffic_campaign": ("utm_campaign", "campaign"),
}


def context_properties(props: dict[str, Any]) -> dict[str, str | None]:
    """The visit's device and traffic tags from ``properties.context``, and the session id where the payload has
    none of its own (None where absent)."""
    context = props.get("context")
    context = context if isinstance(context, dict) else {}
    out = {column: _first_text(context, keys) for column, keys in _CONTEXT_KEYS.items()}
    if props.get("session_id") is None:
        out["session_id"] = _first_text(context, ("session_id",))
    return out


def _first_text(values: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = values.get(key)
        if value is not None and value != "":
            return str(value)
    return None


PROBABILITY_MODELS = frozenset({"lead", "churn", "conversion"})


def score_value(props: dict[str, Any]) -> float | None:
    """The score as the marts read it: a probability in [0, 1] for the classifiers (the event's calibrated
    ``probability``, else its 0-100 ``score`` / 100), and the value itself for lifetime value."""
    if props.get("model") not in PROBABILITY_MODELS:
        return _number(props.get("score"))
    probability = _number(props.get("probability"))
    if probability is not None:
        return probability
    score = _number(props.get("score"))
    return None if score is None else min(max(score / 100.0, 0.0), 1.0)


def raw_row(event: StoredEvent, loaded_at_us: int) -> dict[str, Any]:
    """One ``raw_events`` row; timestamps are integer microseconds since the epoch (UTC)."""
    props = orjson.loads(event.properties_json)
    props = props if isinstance(props, dict) else {}
    row = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "customer_id": event.customer_id,
        "occurred_at": event.occurred_at_us,
        "recorded_at": event.recorded_at_us,
        "source": event.source,
        "schema_version": event.schema_version,
        "causation_id": event.causation_id,
        "properties": event.properties_json,
        **hot_properties(event.event_type, props),
        "log_position": event.position,
        "loaded_at": loaded_at_us,
    }
    row.update(context_properties(props))  # the columns added later come last, as in RAW_COLUMNS
    return row
