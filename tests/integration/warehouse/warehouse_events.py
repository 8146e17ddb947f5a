"""Events for the warehouse's integration tests: a day of page views, clicks, impressions and purchases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def day_events(day: str, n: int, prefix: str, customers: int = 20) -> list[dict[str, Any]]:
    """``n`` events spread over one UTC day: page views, email clicks and purchases of a few customers."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    kinds = ("page_view", "page_view", "email_click", "ad_impression", "purchase")
    events = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        at = start + timedelta(seconds=int(86_399 * i / max(n, 1)))
        props: dict[str, Any] = {
            "page_view": {"url": f"https://shop.example.com/p/{i % 7}", "anonymous_id": f"a-{i % customers}"},
            "email_click": {"campaign_id": f"cmp-{i % 3}"},
            "ad_impression": {"campaign_id": f"cmp-{i % 3}", "cost": 0.01},
            "purchase": {"order_id": f"{prefix}-o{i}", "amount": 10.0 + i % 5},
        }[kind]
        events.append({
            "event_id": f"{prefix}-{i}", "event_type": kind, "customer_id": f"c-{i % customers}",
            "occurred_at": at.isoformat().replace("+00:00", "Z"), "source": "test", "properties": props,
        })
    return events
