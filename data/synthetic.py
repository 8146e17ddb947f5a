"""A seeded stream of plausible events for demos, tests and benchmarks (the simulator in ``environment/``
is the faithful market; this is the small, fast stand-in the log's own tools use)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from data.events import EventBase, derive_event_id, validate_event

# event type -> relative frequency in the stream
MIX: dict[str, float] = {
    "page_view": 0.34,
    "email_sent": 0.18,
    "email_open": 0.08,
    "email_click": 0.03,
    "sms_sent": 0.04,
    "push_sent": 0.04,
    "push_open": 0.01,
    "ad_impression": 0.16,
    "ad_click": 0.02,
    "content_download": 0.02,
    "purchase": 0.03,
    "lead_created": 0.02,
    "consent_changed": 0.01,
    "unsubscribe": 0.005,
    "support_ticket": 0.005,
    "decision_made": 0.01,
}
_CHANNELS = ("email", "sms", "push", "ad")
_CAMPAIGNS = tuple(f"cmp-{i:03d}" for i in range(12))


_Builder = Callable[[int, float, float, str], dict[str, Any]]  # (row, u0, u1, campaign) -> properties


def _message(i: int, u0: float, u1: float, campaign: str) -> dict[str, Any]:
    return {"campaign_id": campaign, "creative_id": f"cr-{int(u1 * 30)}"}


# (utm_source, utm_medium) of a visit; None: a direct visit (no tags)
_TRAFFIC: tuple[tuple[str, str] | None, ...] = (("google", "cpc"), ("google", "organic"), ("newsletter", "email"),
                                                 ("facebook", "social"), None)
_DEVICES = ("desktop", "mobile", "mobile", "tablet")


def _visit_context(u0: float, u1: float, campaign: str) -> dict[str, Any]:
    """A visit's device and UTM tags, as a site's tag manager sends them (drawn from the row's uniforms' low
    digits, so the stream's other values do not change)."""
    context: dict[str, Any] = {"device_type": _DEVICES[int(u0 * 10_000) % len(_DEVICES)]}
    traffic = _TRAFFIC[int(u1 * 10_000) % len(_TRAFFIC)]
    if traffic is not None:
        context.update(utm_source=traffic[0], utm_medium=traffic[1], utm_campaign=campaign)
    return context


_PROPERTIES: dict[str, _Builder] = {
    "page_view": lambda i, u0, u1, campaign: {
        "url": f"https://shop.example.com/p/{int(u0 * 500)}", "session_id": f"s{i // 7}", "duration_s": round(u1 * 120, 1),
        "context": _visit_context(u0, u1, campaign)},
    **dict.fromkeys(("email_sent", "sms_sent", "push_sent", "email_open", "push_open"), _message),
    "email_click": lambda i, u0, u1, campaign: {"campaign_id": campaign, "url": "https://shop.example.com/sale"},
    "ad_impression": lambda i, u0, u1, campaign: {
        "campaign_id": campaign, "creative_id": f"ad-{int(u1 * 20)}", "cost": round(0.002 + u1 * 0.01, 5)},
    "ad_click": lambda i, u0, u1, campaign: {"campaign_id": campaign, "creative_id": f"ad-{int(u1 * 20)}", "cost": round(0.2 + u1, 3)},
    "content_download": lambda i, u0, u1, campaign: {"content_id": f"doc-{int(u0 * 40)}", "content_type": "whitepaper"},
    "purchase": lambda i, u0, u1, campaign: {
        "order_id": f"o-{i}", "amount": round(5 + 200 * u0 * u0, 2), "items": 1 + int(u1 * 3), "campaign_id": campaign},
    "lead_created": lambda i, u0, u1, campaign: {
        "acquisition_source": ("organic", "paid_search", "social", "referral")[int(u0 * 4)], "campaign_id": campaign},
    "consent_changed": lambda i, u0, u1, campaign: {"channel": _CHANNELS[int(u0 * 4)], "granted": u1 < 0.7},
    "unsubscribe": lambda i, u0, u1, campaign: {"channel": _CHANNELS[int(u0 * 3)], "reason": "too_many_messages"},
    "support_ticket": lambda i, u0, u1, campaign: {"ticket_id": f"t-{i}", "category": "billing", "sentiment": round(u1 * 2 - 1, 2)},
    "decision_made": lambda i, u0, u1, campaign: {
        "agent": "journey", "action": ("email", "wait", "sms")[int(u0 * 3)], "propensity": round(0.1 + 0.8 * u1, 3),
        "policy_name": "baseline", "policy_version": "1"},
}


def _properties(kind: str, i: int, rng_row: np.ndarray) -> dict[str, Any]:
    u0, u1 = float(rng_row[0]), float(rng_row[1])
    build = _PROPERTIES.get(kind)
    if build is None:
        raise ValueError(f"no synthetic properties for {kind!r}")
    return build(i, u0, u1, _CAMPAIGNS[int(u0 * len(_CAMPAIGNS))])


def synthetic_dicts(
    n: int, customers: int = 10_000, seed: int = 0, start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    source: str = "synthetic",
) -> Iterator[dict[str, Any]]:
    """``n`` events as JSON-ready dicts, in time order, over ``customers`` customers; same seed, same stream."""
    if n < 0 or customers < 1:
        raise ValueError("n must be >= 0 and customers >= 1")
    rng = np.random.default_rng(seed)
    kinds = list(MIX)
    probs = np.array([MIX[k] for k in kinds])
    kind_idx = rng.choice(len(kinds), size=n, p=probs / probs.sum())
    activity = rng.lognormal(0.0, 1.0, size=customers)  # some customers are far more active than others
    cust = rng.choice(customers, size=n, p=activity / activity.sum())
    gaps = rng.exponential(30.0, size=n)  # seconds between events
    offsets = np.cumsum(gaps)
    uniforms = rng.random((n, 2))
    for i in range(n):
        kind = kinds[kind_idx[i]]
        at = start + timedelta(seconds=float(offsets[i]))
        yield {
            "event_id": derive_event_id(source, seed, i, at=at),
            "event_type": kind,
            "customer_id": f"cust-{int(cust[i]):07d}",
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "source": source,
            "properties": _properties(kind, i, uniforms[i]),
        }


def synthetic_events(n: int, customers: int = 10_000, seed: int = 0, **kwargs: Any) -> list[EventBase]:
    """The same stream as validated, typed events."""
    return [validate_event(d) for d in synthetic_dicts(n, customers, seed, **kwargs)]
