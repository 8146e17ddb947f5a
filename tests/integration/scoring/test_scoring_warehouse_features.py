"""No training/serving skew: the profile projection and the built ``marts_marketing_customer_360`` give
identical features through the one feature function, for every customer of a synthetic log."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import CustomerProfile, ProfileProjection
from data.projections.store import open_state_store
from data.synthetic import synthetic_dicts
from data.warehouse import open_warehouse
from data.warehouse.build import WarehouseProject
from data.warehouse.loader import load_events
from policies.scoring.features import FEATURE_NAMES, profile_features

os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")
pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")

START = datetime(2026, 1, 1, tzinfo=UTC)


def _event(event_id: str, kind: str, customer: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": kind, "customer_id": customer,
            "occurred_at": at.isoformat().replace("+00:00", "Z"), "source": "test", "properties": props}


def edge_events() -> list[dict[str, Any]]:
    """Ties in event time (broken by log position), events logged out of time order, consent flipped
    at one moment, cents that sum differently in another order, a customer with no engagement at all."""
    t = START + timedelta(hours=5)
    return [
        # same moment: the later in the log wins (sms), for channel and consent alike
        _event("tie-1", "email_open", "edge-a", t, campaign_id="cmp-001"),
        _event("tie-2", "sms_click", "edge-a", t, campaign_id="cmp-001"),
        _event("tie-3", "consent_changed", "edge-a", t, channel="email", granted=True),
        _event("tie-4", "unsubscribe", "edge-a", t, channel="email", reason="too_many_messages"),
        _event("tie-5", "consent_changed", "edge-a", t, channel="push", granted=False),
        # logged later, happened earlier: event time decides (ad click at t+1h stays the last channel)
        _event("ooo-1", "ad_click", "edge-b", t + timedelta(hours=1), campaign_id="cmp-002", cost=0.5),
        _event("ooo-2", "page_view", "edge-b", t - timedelta(hours=1), url="https://shop.example.com/p/1"),
        _event("ooo-3", "consent_changed", "edge-b", t + timedelta(hours=1), channel="sms", granted=True),
        _event("ooo-4", "consent_changed", "edge-b", t, channel="sms", granted=False),
        # 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1 in floating point
        *(_event(f"cents-{i}", "purchase", "edge-c", t + timedelta(minutes=i), order_id=f"oc-{i}", amount=a, items=1)
          for i, a in enumerate((0.1, 0.2, 0.3, 19.99, 0.07))),
        # no inbound engagement, no consent: last_channel and consent stay unknown
        _event("quiet-1", "email_sent", "edge-d", t, campaign_id="cmp-003", creative_id="cr-1"),
        _event("quiet-2", "support_ticket", "edge-d", t + timedelta(minutes=3), ticket_id="t-1", category="billing", sentiment=0.1),
        _event("offer-1", "offer_sent", "edge-d", t + timedelta(minutes=4), discount_pct=10.0, channel="email"),
        _event("offer-2", "offer_sent", "edge-d", t + timedelta(minutes=5), discount_pct=15.0, channel="sms"),
        _event("offer-3", "offer_sent", "edge-a", t + timedelta(minutes=5), discount_pct=5.0),
    ]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, CustomerProfile], dict[str, dict[str, Any]]]:
    tmp: Path = tmp_path_factory.mktemp("skew")
    log_url, state_url = f"sqlite:///{tmp / 'events.db'}", f"sqlite:///{tmp / 'state.db'}"
    wh_url = f"duckdb:///{tmp / 'wh.duckdb'}"
    log = open_log(log_url)
    events = list(synthetic_dicts(4_000, customers=300, seed=23, start=START))
    for i in range(0, len(events), 1_000):
        log.append(events[i : i + 1_000])
    log.append(edge_events())
    log.close()

    projector = Projector(open_log(log_url), open_state_store(state_url), ProfileProjection())
    projector.rebuild()
    with projector.store.transaction() as conn:
        profiles = ProfileProjection().load_all(conn)
    projector.store.close()
    projector.log.close()

    log, wh = open_log(log_url), open_warehouse(wh_url)
    try:
        assert load_events(log, wh, batch_size=1_000).rows == len(events) + len(edge_events())
    finally:
        wh.close()
        log.close()
    project = WarehouseProject(wh_url)
    project.build()
    project.close()
    con = duckdb.connect(str(tmp / "wh.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT COUNT(*) FROM ame.intermediate_identity WHERE is_merged").fetchone()[0] == 0
        cursor = con.execute("SELECT * FROM ame.marts_marketing_customer_360")
        names = [d[0] for d in cursor.description]
        rows = {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
    finally:
        con.close()
    return profiles, rows


def test_profile_and_customer_360_give_identical_features(built) -> None:
    profiles, rows = built
    assert len(profiles) > 250 and set(rows) == set(profiles)
    as_of = START + timedelta(days=3, hours=7, microseconds=123_457)
    mismatches = []
    for cid, profile in profiles.items():
        online = profile_features(profile.to_dict(), as_of)
        batch = profile_features(rows[cid], as_of)
        assert list(online) == list(FEATURE_NAMES)
        mismatches += [(cid, name, online[name], batch[name]) for name in FEATURE_NAMES if not _same(online[name], batch[name])]
    assert not mismatches, mismatches[:20]


def test_the_mart_columns_carry_the_fold_semantics(built) -> None:
    _, rows = built
    as_of = START + timedelta(days=3)
    a, b, c, d = (profile_features(rows[k], as_of) for k in ("edge-a", "edge-b", "edge-c", "edge-d"))
    assert a["last_channel"] == "sms" and a["consent_email"] == 0.0 and a["consent_push"] == 0.0 and math.isnan(a["consent_sms"])
    assert b["last_channel"] == "ad" and b["consent_sms"] == 1.0
    assert c["revenue"] == 20.66 and c["purchases"] == 5.0
    assert d["last_channel"] is None and d["support_tickets"] == 1.0 and d["offers_received"] == 2.0 and d["email_opens"] == 0.0
    assert all(math.isnan(d[f"consent_{ch}"]) for ch in ("email", "sms", "push", "ad"))
    # the synthetic log exercises every feature on some customer
    features = [profile_features(r, as_of) for r in rows.values()]
    for name in FEATURE_NAMES:
        values = {f[name] for f in features if not (isinstance(f[name], float) and math.isnan(f[name]))}
        assert len(values) > 1, f"{name} is constant over the synthetic customers: the test would not see a skew"
