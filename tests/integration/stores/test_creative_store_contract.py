"""The creative store's contract, run over every backend (``sqlite`` and ``postgresql``): variants keep their
status, approvals follow the guardrails, counts are written absolutely or added, promotions replace each other,
pictures keep their bytes and calendars are replaced week by week."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from policies.creative.models import CalendarEntry, ImageAsset, Status, VariantNotFound, Verdict, make_variant
from policies.creative.serving import check_promotion, select_creative
from policies.creative.store import Counts, CreativeStore, Promotion


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CreativeStore]:
    url = f"sqlite:///{tmp_path / 'creatives.db'}" if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    opened = CreativeStore(url)
    yield opened
    opened.close()


def test_variants_keep_their_status_and_approvals_follow_the_guardrails(store: CreativeStore) -> None:
    plain = make_variant("email_subject", "vip", "Plain subject")
    critical = make_variant("email_subject", "vip", "Critical: 50% off", critical=True)
    failed = make_variant("email_subject", "vip", "Failed subject")
    added = store.add([(plain, Verdict(passed=True, score=0.7), False), (critical, Verdict(passed=True), True),
                       (failed, Verdict(passed=False, reasons=("banned term",)), True)])
    assert [s.status for s in added] == [Status.APPROVED, Status.PENDING, Status.FAILED]
    assert added[0].decided_by == "auto" and added[2].verdict.reasons == ("banned term",)
    again = store.add([(plain, Verdict(passed=True, score=0.7), True)])  # stored again: joins the test, keeps status
    assert again[0].in_test and again[0].status is Status.APPROVED
    assert store.add([(plain, Verdict(passed=True), False)])[0].in_test  # once in the test, it stays there
    with pytest.raises(ValueError, match="cannot be approved"):
        store.decide(failed.variant_id, approve=True, by="alice")
    decided = store.decide(critical.variant_id, approve=True, by="alice", note="checked")
    assert (decided.status, decided.decided_by, decided.note) == (Status.APPROVED, "alice", "checked")
    with pytest.raises(VariantNotFound):
        store.get("nope")
    assert [s.variant.variant_id for s in store.list(status=Status.FAILED)] == [failed.variant_id]
    assert len(store.list(segment="vip", kind="email_subject")) == 3 and store.list(segment="other") == []
    assert {v.variant_id for v, _ in store.arms("vip", "email_subject")} == {plain.variant_id, critical.variant_id}
    assert store.tests() == [("vip", "email_subject")]


def test_counts_and_promotions(store: CreativeStore) -> None:
    a, b = (make_variant("email_subject", "vip", f"Subject {i}") for i in range(2))
    store.add([(a, Verdict(passed=True), True), (b, Verdict(passed=True), True)])
    assert store.counts([]) == {} and store.counts([a.variant_id]) == {a.variant_id: Counts()}
    store.set_counts({a.variant_id: Counts(100, 9, 1)})
    store.set_counts({a.variant_id: Counts(1000, 80, 4)})  # absolute: a replay writes the same numbers again
    store.add_counts(b.variant_id, impressions=600, clicks=10)
    store.add_counts(b.variant_id, impressions=400, clicks=20, conversions=1)
    assert store.counts([a.variant_id, b.variant_id]) == {a.variant_id: Counts(1000, 80, 4), b.variant_id: Counts(1000, 30, 1)}
    assert store.promotion("vip", "email_subject") is None
    promotion = check_promotion(store, "vip", "email_subject")
    assert promotion is not None and promotion.variant_id == a.variant_id
    assert store.promotion("vip", "email_subject") == promotion
    assert select_creative("vip", store=store) == (store.get(a.variant_id).variant, 1.0)
    store.promote(Promotion("vip", "email_subject", b.variant_id, 0.97, 2000))  # a later promotion replaces it
    assert store.promotion("vip", "email_subject").variant_id == b.variant_id


def test_pictures_and_calendars(store: CreativeStore) -> None:
    picture = make_variant("image", "vip", "Meet the parka", critical=True)
    content = bytes(range(256)) * 4  # any bytes, zero and high ones included
    asset = ImageAsset(picture.variant_id, "a parka", "image/png", content, hashlib.sha256(content).hexdigest(), 8, 4, True)
    store.add_images([asset])
    store.add_images([replace(asset, content=b"other")])  # a picture already stored stays as it is
    store.add([(picture, Verdict(passed=True), False)])
    assert store.image(picture.variant_id) == asset and store.get(picture.variant_id).status is Status.PENDING
    with pytest.raises(VariantNotFound):
        store.image("nope")
    week, other = date(2026, 12, 7), date(2026, 12, 14)
    entries = [CalendarEntry(week, week + timedelta(days=d), "09:00", "linkedin", "vip", f"cv-{d}") for d in (1, 0)]
    store.set_calendar(week, "vip", entries)
    assert store.calendar(week, "vip") == entries[::-1] and store.calendar(week, "new") == []
    store.set_calendar(other, "vip", entries[:1])
    store.set_calendar(week, "vip", entries[1:])  # replaced, not added to
    assert store.calendar(week, "vip") == entries[1:]
    assert store.scheduled_variants("vip") == {"cv-0", "cv-1"} and store.scheduled_variants("vip", exclude_week=other) == {"cv-0"}
