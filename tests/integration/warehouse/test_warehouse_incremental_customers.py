"""The per-customer models built one day at a time: only what the new day touched is recomputed, and the result
equals one build of every day. Covers the two ways that could silently go wrong: a customer the new day did
not touch must still move with the build date (churn risk, lifecycle stage, segment), and a new day can merge
two identity components built on earlier days (or split one again)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from data.warehouse.build import WarehouseProject
from tests.integration.warehouse.test_warehouse_duckdb import _append, _load
from tests.integration.warehouse.warehouse_events import day_events

# SQLMesh's models still use pydantic's json_encoders
pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")

C360 = "SELECT * FROM ame.marts_marketing_customer_360 ORDER BY customer_id"
IDENTITY = "SELECT customer_id, canonical_customer_id, component_size, is_merged FROM ame.intermediate_identity ORDER BY 1"


def _build_day_by_day(paths: dict[str, str], days: list[list[dict]]) -> WarehouseProject:
    project = WarehouseProject(paths["warehouse"])
    for events in days:
        _append(paths, events)
        _load(paths)
        project.build()
    return project


def _build_once(folder: Path, days: list[list[dict]]) -> WarehouseProject:
    folder.mkdir()  # same file name as the daily build's: SQLMesh's cached models name the catalog after it
    once = {"log": f"sqlite:///{folder / 'events.db'}", "warehouse": f"duckdb:///{folder / 'wh.duckdb'}"}
    _append(once, [e for events in days for e in events])
    _load(once)
    project = WarehouseProject(once["warehouse"])
    project.build()
    return project


def _assert_same(daily: WarehouseProject, whole: WarehouseProject, sql: str) -> None:
    a, b = daily.context.fetchdf(sql), whole.context.fetchdf(sql)
    assert len(a) == len(b) > 0
    for column in b.columns:
        if b[column].dtype.kind == "f":
            assert (a[column] - b[column]).abs().max() < 1e-9, column
        else:
            assert a[column].equals(b[column]), column


def test_a_customer_the_new_day_does_not_touch_still_ages_with_the_build_date(paths, tmp_path):
    # c-0..c-19 on 2026-03-01 (c-4, c-9, c-14, c-19 buy); 199 days later only c-0 and c-1 come back
    days = [day_events("2026-03-01", 200, "d1", customers=20), day_events("2026-09-15", 10, "d2", customers=2)]
    daily = _build_day_by_day(paths, days)
    # c-9 was not recomputed by the second build: its summary row is the first build's
    assert daily.context.engine_adapter.fetchone(
        "SELECT built_through FROM ame.intermediate_customers_summary WHERE customer_id = 'c-9'"
    )[0] == date(2026, 3, 1)
    row = daily.context.fetchdf(
        "SELECT churn_risk_score, lifecycle_stage, customer_segment, predicted_clv"
        " FROM ame.marts_marketing_customer_360 WHERE customer_id = 'c-9'"
    ).iloc[0]
    days_unseen = (date(2026, 9, 16) - date(2026, 3, 1)).days - 1  # as of the second build's execution date
    assert row.churn_risk_score == pytest.approx(1 - math.exp(-days_unseen / 90))
    assert (row.lifecycle_stage, row.customer_segment) == ("churned", "lost")
    whole = _build_once(tmp_path / "once", days)
    _assert_same(daily, whole, C360)
    daily.close()
    whole.close()


def _lead(event_id: str, customer: str, at: str, email: str, anonymous_id: str) -> dict:
    return {"event_id": event_id, "event_type": "lead_created", "customer_id": customer, "occurred_at": at,
            "source": "test", "properties": {"email": email, "first_name": customer, "anonymous_id": anonymous_id}}


def _view(event_id: str, customer: str, at: str, anonymous_id: str) -> dict:
    return {"event_id": event_id, "event_type": "page_view", "customer_id": customer, "occurred_at": at,
            "source": "test", "properties": {"url": "https://shop.example.com/", "anonymous_id": anonymous_id}}


def test_a_new_day_merges_two_old_components_and_a_later_one_splits_them(paths, tmp_path):
    background = day_events("2026-03-01", 100, "bg", customers=10)
    day1 = [
        *background,
        _view("v1", "anon-1", "2026-03-01T08:00:00Z", "web-ann"),
        _lead("l1", "lead-1", "2026-03-01T09:00:00Z", "ann@example.com", "web-ann"),
        _view("v2", "anon-2", "2026-03-01T10:00:00Z", "web-bob"),
        _lead("l2", "lead-2", "2026-03-01T11:00:00Z", "bob@example.com", "web-bob"),
    ]
    # lead-2 gives ann's email: the two components of day 1 are one customer, canonical the earlier lead
    day2 = [*day_events("2026-03-02", 50, "bg2", customers=10),
            _lead("l2b", "lead-2", "2026-03-02T09:00:00Z", "ANN@example.com", "web-bob")]
    # lead-2 corrects the email back: its latest email no longer links it, the customer splits again
    day3 = [*day_events("2026-03-03", 50, "bg3", customers=10),
            _lead("l2c", "lead-2", "2026-03-03T09:00:00Z", "bob@example.com", "web-bob")]
    daily = _build_day_by_day(paths, [day1, day2])
    mapping = dict(daily.context.engine_adapter.fetchall(
        "SELECT customer_id, canonical_customer_id FROM ame.intermediate_identity"
        " WHERE customer_id IN ('anon-1', 'lead-1', 'anon-2', 'lead-2')"))
    assert set(mapping.values()) == {"lead-1"}
    merged = daily.context.fetchdf(
        "SELECT customer_id, merged_ids, page_views FROM ame.marts_marketing_customer_360"
        " WHERE customer_id IN ('lead-1', 'lead-2')")
    assert merged.values.tolist() == [["lead-1", 4, 2]]  # lead-2 keeps a stale summary row, not shown
    whole = _build_once(tmp_path / "two", [day1, day2])
    _assert_same(daily, whole, IDENTITY)
    _assert_same(daily, whole, C360)
    whole.close()
    _append(paths, day3)
    _load(paths)
    daily.build()
    split = daily.context.fetchdf(
        "SELECT customer_id, merged_ids FROM ame.marts_marketing_customer_360 WHERE customer_id IN ('lead-1', 'lead-2')"
        " ORDER BY 1")
    assert split.values.tolist() == [["lead-1", 2], ["lead-2", 2]]
    whole = _build_once(tmp_path / "three", [day1, day2, day3])
    _assert_same(daily, whole, IDENTITY)
    _assert_same(daily, whole, C360)
    daily.close()
    whole.close()
