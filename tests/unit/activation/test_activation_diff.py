"""The diff: only new or changed rows are sent, unchanged ones are not, mirror finds the rows that left."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from data.activation.destinations.base import Record
from data.activation.diff import batches, map_row, plan_sync, row_hash


def rec(key: str, **fields: object) -> Record:
    return Record(key, dict(fields))


def test_map_row_renames_and_makes_values_json_ready() -> None:
    row = {"customer_id": 7, "email": "a@b.c", "seen": datetime(2024, 1, 2, tzinfo=UTC), "clv": Decimal("1.5")}
    r = map_row(row, {"Email": "email", "LastSeen": "seen", "Value": "clv"}, "customer_id")
    assert r == Record("7", {"Email": "a@b.c", "LastSeen": "2024-01-02T00:00:00+00:00", "Value": 1.5})


def test_hash_ignores_key_order_and_sees_value_changes() -> None:
    assert row_hash(rec("a", x=1, y="z")) == row_hash(rec("a", y="z", x=1))
    assert row_hash(rec("a", x=1)) != row_hash(rec("a", x=2))
    assert row_hash(rec("a", x=1)) != row_hash(rec("a", x=None))


def test_plan_sends_new_and_changed_rows_only() -> None:
    state = {"a": (row_hash(rec("a", v=1)), {"v": 1}), "b": (row_hash(rec("b", v=1)), {"v": 1})}
    plan = plan_sync([rec("a", v=1), rec("b", v=2), rec("c", v=3)], state, mirror=False)
    assert [r.key for r, _ in plan.upserts] == ["b", "c"] and plan.unchanged == 1 and plan.deletes == []


def test_mirror_deletes_rows_that_left_with_their_last_fields() -> None:
    state = {"a": (row_hash(rec("a", e="a@x")), {"e": "a@x"}), "gone": ("h", {"e": "gone@x"})}
    plan = plan_sync([rec("a", e="a@x")], state, mirror=True)
    assert plan.upserts == [] and plan.deletes == [Record("gone", {"e": "gone@x"})]
    assert plan_sync([rec("a", e="a@x")], state, mirror=False).deletes == []


def test_duplicate_keys_are_sent_once_and_batches_cover_everything() -> None:
    plan = plan_sync([rec("a", v=1), rec("a", v=2)], {}, mirror=False)
    assert len(plan.upserts) == 1
    assert [list(b) for b in batches(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
