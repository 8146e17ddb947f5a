"""One feature function for batch and online: profiles folded from events give identical model inputs
whether scored one by one or as a table, and customer_360-shaped rows read the same fields."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
import pytest

from data.log.base import ReplayEvent, to_micros
from data.projections.profile import CustomerProfile, fold_profiles
from policies.scoring.errors import ScoringError
from policies.scoring.features import FEATURE_NAMES, feature_frame, profile_features
from policies.scoring.tabular import RecordEncoder, transform_frame
from policies.scoring.train import TrainArgs, train_scoring

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
TYPES = ["page_view", "email_open", "email_click", "content_download", "ad_click", "purchase", "consent_changed", "sms_click"]


def folded_profiles(n: int = 400, seed: int = 3) -> tuple[dict[str, CustomerProfile], pd.Series]:
    rng = np.random.default_rng(seed)
    events: list[ReplayEvent] = []
    start = AS_OF - timedelta(days=120)
    pos = 0
    engaged = rng.random(n)
    for c in range(n):
        k = 1 + rng.poisson(2 + 20 * engaged[c])
        for _ in range(k):
            pos += 1
            kind = rng.choice(TYPES, p=[0.45, 0.15, 0.1, 0.05, 0.05, 0.1, 0.05, 0.05])
            at = start + timedelta(days=float(rng.uniform(0, 119)))
            props = None
            if kind == "purchase":
                props = orjson.dumps({"order_id": f"o{pos}", "amount": round(float(rng.gamma(2, 30)), 2)}).decode()
            elif kind == "consent_changed":
                props = orjson.dumps({"channel": rng.choice(["email", "sms"]), "granted": bool(rng.random() < 0.7)}).decode()
            events.append(ReplayEvent(pos, str(kind), f"cust-{c:04d}", to_micros(at), props))
    profiles = fold_profiles({}, events)
    label = pd.Series({cid: int(rng.random() < 0.1 + 0.6 * engaged[int(cid[5:])]) for cid in profiles})
    return profiles, label


def test_profile_objects_dicts_and_frames_give_the_same_features() -> None:
    profiles, _ = folded_profiles(50)
    for profile in profiles.values():
        a = profile_features(profile, AS_OF)
        b = profile_features(profile.to_dict(), AS_OF)
        assert list(a) == list(FEATURE_NAMES)
        assert all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)
    frame = feature_frame(pd.DataFrame([p.to_dict() for p in profiles.values()]), AS_OF)
    again = feature_frame(list(profiles.values()), AS_OF)
    pd.testing.assert_frame_equal(frame, again)
    first = next(iter(profiles.values()))
    f = profile_features(first, AS_OF)
    assert f["page_views"] == first.event_counts.get("page_view", 0)
    assert f["days_since_seen"] == pytest.approx(first.recency_days(AS_OF))
    assert f["purchases"] == first.purchases


def test_customer_360_rows_read_the_same_fields() -> None:
    row = {
        "customer_id": "c1", "first_seen_at": pd.Timestamp("2026-01-01 00:00:00"), "last_seen_at": pd.Timestamp("2026-02-20 12:00:00"),
        "total_purchases": 2, "total_revenue": 80.0, "last_purchase_date": pd.Timestamp("2026-02-10").date(),
        "page_views": np.int64(7), "preferred_channel": "email",
    }
    f = profile_features(row, AS_OF)
    assert f["purchases"] == 2 and f["revenue"] == 80.0 and f["avg_order_value"] == 40.0
    assert f["days_since_seen"] == pytest.approx(8.5) and f["tenure_days"] == pytest.approx(59.0)
    assert f["days_since_purchase"] == pytest.approx(19.0)
    assert f["page_views"] == 7 and f["last_channel"] == "email"
    assert math.isnan(f["email_clicks"]) and math.isnan(f["consent_email"])  # the mart has no such column


def test_batch_and_online_paths_give_identical_model_inputs_and_scores() -> None:
    profiles, label = folded_profiles()
    rows = pd.DataFrame([p.to_dict() for p in profiles.values()])
    rows["converted"] = label.reindex(rows["customer_id"]).to_numpy()
    result = train_scoring(rows, TrainArgs(target="converted", id_column="customer_id", feature_set="profile",
                                           as_of=AS_OF.isoformat(), n_estimators=40, n_threads=1))
    model = result.model
    assert model.spec.feature_set == "profile-v1"
    assert set(model.spec.input_names) <= set(FEATURE_NAMES)

    batch_matrix = transform_frame(model.spec, feature_frame(list(profiles.values()), AS_OF))
    encoder = RecordEncoder(model.spec)
    online_matrix = np.stack([encoder.encode(profile_features(p, AS_OF)) for p in profiles.values()])
    np.testing.assert_array_equal(np.isnan(batch_matrix), np.isnan(online_matrix))
    np.testing.assert_array_equal(np.nan_to_num(batch_matrix, nan=-1), np.nan_to_num(online_matrix, nan=-1))

    batch = model.score_profiles(list(profiles.values()), AS_OF, top_k=3)
    for i, profile in enumerate(list(profiles.values())[:40]):
        one = model.score_profile(profile, AS_OF, top_k=3)
        assert one.probability == pytest.approx(batch["probability"].iloc[i], rel=1e-6)
        assert one.score == pytest.approx(batch["score"].iloc[i], rel=1e-6)
        assert [r.feature for r in one.reasons] == [r.feature for r in batch["reasons"].iloc[i]]


def test_a_table_model_refuses_profiles() -> None:
    profiles, label = folded_profiles(200)
    table = feature_frame(list(profiles.values()), AS_OF).assign(converted=label.to_numpy())
    model = train_scoring(table, TrainArgs(target="converted", n_estimators=10, n_threads=1)).model
    with pytest.raises(ScoringError, match="--features profile"):
        model.score_profile(next(iter(profiles.values())), AS_OF)
