"""A seeded history of past leads for the CRM tests: their engagement events, and whether sales won them.

The chance of a win grows with engagement (e-mail clicks, downloads, page views), so a model trained on the scoring
features learns something; the rule scorer's points see the same events with other weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from data.events import EventBase, validate_event


@dataclass(frozen=True, slots=True)
class PastLead:
    customer_id: str
    won: bool
    closed_at: datetime


def past_leads(n: int, seed: int = 11, start: datetime = datetime(2025, 6, 1, tzinfo=UTC),
               views_decide: bool = False) -> tuple[list[EventBase], list[PastLead]]:
    """``n`` leads over 120 days: their events (before the close) and their outcomes, in close order. With
    ``views_decide`` only the page views predict a win, which the rule scorer weighs least (a model learns it)."""
    rng = np.random.default_rng(seed)
    events: list[EventBase] = []
    leads: list[PastLead] = []
    for i in range(n):
        customer = f"past-{i:04d}"
        first = start + timedelta(days=float(rng.uniform(0, 120)))
        engagement = rng.gamma(2.0, 1.0)
        clicks, views, downloads = rng.poisson(engagement), rng.poisson(1 + 2 * engagement), rng.binomial(2, min(0.9, engagement / 4))
        kinds = ["lead_created"] + ["email_click"] * clicks + ["page_view"] * views + ["content_download"] * downloads
        for j, kind in enumerate(kinds):
            at = first + timedelta(hours=6 * j)
            properties = {"page_view": {"url": "/pricing"}, "content_download": {"content_id": "wp-1", "content_type": "whitepaper"}}
            events.append(validate_event({"event_id": f"{customer}-{j}", "event_type": kind, "customer_id": customer,
                                          "occurred_at": at.isoformat(), "source": "test", "properties": properties.get(kind, {})}))
        logit = 1.5 * (views - 5.0) if views_decide else 1.1 * clicks + 0.9 * downloads - 0.15 * views - 2.0
        win = 1 / (1 + np.exp(-logit))
        leads.append(PastLead(customer, bool(rng.random() < win), first + timedelta(hours=6 * len(kinds) + 48)))
    return events, sorted(leads, key=lambda lead: lead.closed_at)
