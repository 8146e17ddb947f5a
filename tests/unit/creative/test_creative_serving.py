"""select_creative: only approved variants are served, with propensities in (0, 1]; promotion; approval flow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from policies.creative.models import NoCreativeAvailable, Status, Verdict, make_variant
from policies.creative.serving import check_promotion, exposure_event, select_creative
from policies.creative.store import CreativeStore


@pytest.fixture
def store(tmp_path: Path) -> CreativeStore:
    s = CreativeStore(f"sqlite:///{tmp_path / 'creatives.db'}")
    yield s
    s.close()


def _seed(store: CreativeStore) -> tuple[list, object]:
    plain = [make_variant("email_subject", "vip", f"Plain subject {i}") for i in range(2)]
    critical = make_variant("email_subject", "vip", "Critical subject: 50% off today", critical=True)
    failed = make_variant("email_subject", "vip", "Failed subject")
    store.add([(v, Verdict(passed=True), True) for v in plain] + [(critical, Verdict(passed=True), True)])
    store.add([(failed, Verdict(passed=False, reasons=("banned term",)), True)])
    return plain, critical


def test_unapproved_critical_variant_is_never_served_even_while_exploring(store: CreativeStore) -> None:
    plain, critical = _seed(store)
    assert store.get(critical.variant_id).status is Status.PENDING
    # make the critical arm look like the best possible arm: if it were a candidate, TS would pick it almost always
    store.add_counts(critical.variant_id, impressions=10, clicks=10)
    store.add_counts(plain[0].variant_id, impressions=2000, clicks=1)
    rng = np.random.default_rng(7)
    served = {select_creative("vip", store=store, rng=rng, n_draws=200)[0].variant_id for _ in range(2000)}
    assert critical.variant_id not in served
    assert served == {v.variant_id for v in plain}  # both plain arms explored
    store.decide(critical.variant_id, approve=True, by="alice")
    served = [select_creative("vip", store=store, rng=rng, n_draws=200)[0].variant_id for _ in range(200)]
    assert served.count(critical.variant_id) > 150  # approved: now it is served, and mostly


def test_rejected_and_failed_variants_are_never_served(store: CreativeStore) -> None:
    plain, critical = _seed(store)
    store.decide(critical.variant_id, approve=False, by="bob", note="claims")
    with pytest.raises(ValueError, match="cannot be approved"):
        store.decide(store.list(status=Status.FAILED)[0].variant.variant_id, approve=True, by="bob")
    rng = np.random.default_rng(1)
    served = {select_creative("vip", store=store, rng=rng, n_draws=100)[0].variant_id for _ in range(300)}
    assert served <= {v.variant_id for v in plain}


def test_propensities_are_positive_and_match_choice_frequencies(store: CreativeStore) -> None:
    plain, _ = _seed(store)
    store.add_counts(plain[0].variant_id, 200, 20)
    store.add_counts(plain[1].variant_id, 200, 14)
    rng = np.random.default_rng(3)
    picks = [select_creative("vip", store=store, rng=rng, n_draws=4000) for _ in range(3000)]
    props = np.array([p for _, p in picks])
    assert (props > 0).all() and (props <= 1).all()
    first = np.array([v.variant_id == plain[0].variant_id for v, _ in picks])
    # the logged propensity of arm 0 averages to its empirical frequency
    assert abs(first.mean() - props[first].mean()) < 0.03


def test_promotion_serves_the_winner_with_propensity_one(store: CreativeStore) -> None:
    plain, _ = _seed(store)
    store.add_counts(plain[0].variant_id, 1000, 80)
    store.add_counts(plain[1].variant_id, 1000, 30)
    promotion = check_promotion(store, "vip", "email_subject")
    assert promotion is not None and promotion.variant_id == plain[0].variant_id and promotion.p_best >= 0.95
    variant, propensity = select_creative("vip", store=store)
    assert variant.variant_id == plain[0].variant_id and propensity == 1.0


def test_no_promotion_while_uncertain(store: CreativeStore) -> None:
    plain, _ = _seed(store)
    store.add_counts(plain[0].variant_id, 300, 12)
    store.add_counts(plain[1].variant_id, 300, 10)
    assert check_promotion(store, "vip", "email_subject") is None


def test_no_creative_raises_with_a_fix(store: CreativeStore) -> None:
    with pytest.raises(NoCreativeAvailable, match="ame creatives generate"):
        select_creative("nobody", store=store)


def test_exposure_event_is_a_valid_decision(store: CreativeStore) -> None:
    _seed(store)
    variant, p = select_creative("vip", store=store, rng=np.random.default_rng(0))
    event = exposure_event(variant, p, "cust-1", datetime(2025, 1, 1, tzinfo=UTC), "req-1")
    assert event.properties.action == variant.variant_id and event.properties.propensity == p
    assert event.event_id == exposure_event(variant, p, "cust-1", datetime(2025, 1, 1, tzinfo=UTC), "req-1").event_id
