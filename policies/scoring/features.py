"""Customer features from ONE function, for batch and online alike (no training/serving skew).

:func:`profile_features` maps one profile-shaped record to the model's input columns. It reads the
profile projection's record (:class:`data.projections.profile.CustomerProfile`, or its ``to_dict()``)
and the warehouse's ``marts_marketing_customer_360`` row (whose column names are aliases here).
Batch (:func:`feature_frame`) applies the same function to every row; online, the scoring agent calls it
on one profile. Recency and tenure are measured at ``as_of``, which the caller passes (training uses the
label cut-off, serving uses the decision time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

FEATURE_SET = "profile-v1"
US_PER_DAY = 86_400e6
EVENT_COUNT_FEATURES: dict[str, str] = {
    "page_views": "page_view",
    "content_downloads": "content_download",
    "email_opens": "email_open",
    "email_clicks": "email_click",
    "sms_clicks": "sms_click",
    "push_opens": "push_open",
    "ad_clicks": "ad_click",
    "offers_received": "offer_sent",
    "support_tickets": "support_ticket",
}
"""Feature name -> event type counted."""
CHANNELS = ("email", "sms", "push", "ad")
FEATURE_NAMES: tuple[str, ...] = (
    "events_total", "purchases", "revenue", "avg_order_value", "days_since_seen", "days_since_purchase",
    "tenure_days", *EVENT_COUNT_FEATURES, "last_channel", *(f"consent_{c}" for c in CHANNELS),
)
"""The input columns, in order. ``last_channel`` is categorical; the rest are numbers (NaN when unknown)."""

# customer_360 column -> profile field. The mart's other columns carry the profile's names: events_total, the
# per-type counts (page_views, email_opens, ...), first_seen_at / last_seen_at / last_purchase_at (exact times),
# last_channel (latest inbound engagement, as the fold) and consent_<channel> (true / false / null).
# An alias never overrides a column of the profile's name: preferred_channel (most engagement) stands in for
# last_channel only in rows shaped before the mart carried last_channel.
ALIASES = {"total_purchases": "purchases", "total_revenue": "revenue", "preferred_channel": "last_channel"}
NAN = float("nan")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _micros(value: Any) -> float | None:
    """A moment as microseconds since the epoch: ints are taken as micros, datetimes/dates/strings are parsed."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float((value - _EPOCH) // _ONE_US)  # exact integer micros (timestamp() * 1e6 rounds)
    raise TypeError(f"cannot read {value!r} as a time")


def _number(value: Any) -> float:
    if value is None:
        return NAN
    try:
        number = float(value)
    except (TypeError, ValueError):
        return NAN
    return number if math.isfinite(number) else NAN


def _days_between(later_us: float, earlier: Any) -> float:
    earlier_us = _micros(earlier)
    return NAN if earlier_us is None else (later_us - earlier_us) / US_PER_DAY


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _first(record: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = record.get(name)
        if not _missing(value):
            return value
    return None


def profile_features(record: Mapping[str, Any] | Any, as_of: datetime) -> dict[str, float | str | None]:
    """The model's input columns for one customer. THE one feature function (batch and online).

    :param record: a ``CustomerProfile``, its ``to_dict()``, or a ``marts_marketing_customer_360`` row.
    :param as_of: the moment recency and tenure are measured at (timezone-aware).
    """
    if not isinstance(record, Mapping):
        record = record.to_dict()  # a CustomerProfile
    record = {**{ALIASES[k]: v for k, v in record.items() if k in ALIASES}, **record}
    if not isinstance(as_of, datetime):
        raise TypeError(f"as_of must be a datetime, got {type(as_of).__name__}")
    now_us = _micros(as_of)
    if now_us is None:
        raise TypeError("as_of must be a datetime")
    counts = record.get("event_counts")
    counts = counts if isinstance(counts, Mapping) else {}
    purchases = _number(record.get("purchases"))
    # to the cent: the projection sums amounts in log order, SQL in any order, and float sums differ in the last bit
    revenue = round(_number(record.get("revenue")), 2)
    features: dict[str, float | str | None] = {
        "events_total": _number(record.get("events_total")),
        "purchases": purchases,
        "revenue": revenue,
        "avg_order_value": revenue / purchases if purchases and purchases > 0 and not math.isnan(revenue) else NAN,
        "days_since_seen": _days_between(now_us, _first(record, "last_seen_us", "last_seen_at")),
        "days_since_purchase": _days_between(
            now_us, _first(record, "last_purchase_us", "last_purchase_at", "last_purchase_date")),
        "tenure_days": _days_between(now_us, _first(record, "first_seen_us", "first_seen_at")),
    }
    for name, event_type in EVENT_COUNT_FEATURES.items():
        if event_type in counts:
            features[name] = _number(counts[event_type])
        else:
            features[name] = _number(record.get(name)) if name in record else (0.0 if counts else NAN)
    channel = record.get("last_channel")
    features["last_channel"] = None if _missing(channel) else str(channel)
    consent = record.get("consent")
    for channel_name in CHANNELS:
        if isinstance(consent, Mapping):  # the projection: channel -> ConsentState or [granted, at_us, position]
            state = consent.get(channel_name)
            granted = state[0] if isinstance(state, (list, tuple)) else getattr(state, "granted", None)
        else:  # a customer_360 row: consent_<channel> is true, false or null
            granted = record.get(f"consent_{channel_name}")
        features[f"consent_{channel_name}"] = NAN if _missing(granted) else float(bool(granted))
    return features


def feature_frame(records: Iterable[Mapping[str, Any] | Any] | pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Batch: :func:`profile_features` on every record (profiles, dicts, or the rows of a DataFrame)."""
    rows = records.to_dict("records") if isinstance(records, pd.DataFrame) else records
    return pd.DataFrame([profile_features(r, as_of) for r in rows], columns=list(FEATURE_NAMES))
