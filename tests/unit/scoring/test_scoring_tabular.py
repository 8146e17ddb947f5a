"""Tabular preparation: column kinds, coercion, clear errors, leakage guard, batch == online rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policies.scoring.errors import DataError
from policies.scoring.tabular import (
    RecordEncoder,
    coerce_target,
    infer_spec,
    target_vector,
    transform_frame,
)


def customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(n)],
            "visits": rng.poisson(3, n).astype(float),
            "plan": rng.choice(["free", "pro", "team"], n),
            "opted_in": rng.choice(["yes", "no"], n),
            "spend_text": [str(round(v, 2)) for v in rng.gamma(2, 10, n)],
            "constant": 1,
            "signup": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )
    frame.loc[::17, "visits"] = np.nan
    frame.loc[::23, "plan"] = None
    frame.loc[5, "spend_text"] = "n/a"
    frame["converted"] = np.where(rng.random(n) < 0.3, "yes", "no")
    return frame


def test_infer_spec_kinds_and_drops() -> None:
    frame = customers()
    spec = infer_spec(frame, "converted", id_column="customer", drop=["signup"])
    kinds = {c.name: c.kind for c in spec.columns}
    assert kinds == {"visits": "numeric", "plan": "categorical", "opted_in": "numeric", "spend_text": "numeric"}
    assert spec.positive_label == "yes"
    assert spec.dropped["constant"] == "constant"
    assert spec.dropped["signup"] == "listed in --drop"
    assert set(spec.columns[1].categories) == {"free", "pro", "team"}
    assert spec.feature_names[:4] == ["visits", *(f"plan={c}" for c in spec.columns[1].categories)]


def test_identifier_and_date_columns_are_dropped_with_a_reason() -> None:
    spec = infer_spec(customers(), "converted")
    assert "identifier" in spec.dropped["customer"]
    assert "date column" in spec.dropped["signup"]


def test_batch_and_online_rows_are_identical() -> None:
    frame = customers(120)
    spec = infer_spec(frame, "converted", id_column="customer")
    frame.loc[3, "plan"] = "enterprise"  # unseen category -> all zeros
    frame.loc[4, "opted_in"] = "maybe"  # unparseable -> missing
    batch = transform_frame(spec, frame)
    encoder = RecordEncoder(spec)
    online = np.stack([encoder.encode(r) for r in frame.to_dict("records")])
    np.testing.assert_array_equal(np.isnan(batch), np.isnan(online))
    np.testing.assert_array_equal(np.nan_to_num(batch, nan=-7), np.nan_to_num(online, nan=-7))
    plan = [i for i, n in enumerate(spec.feature_names) if n.startswith("plan=")]
    assert batch[3, plan].sum() == 0 and np.isnan(batch[4, spec.feature_names.index("opted_in")])


def test_target_coercion_and_errors() -> None:
    y, label = coerce_target(pd.Series(["No", "Yes", "Yes"]), "t")
    assert label == "Yes" and y.tolist() == [0, 1, 1]
    with pytest.raises(DataError, match="exactly two values"):
        coerce_target(pd.Series(["a", "b", "c"]), "t")
    with pytest.raises(DataError, match="--positive"):
        coerce_target(pd.Series(["red", "blue"]), "t")
    y, label = coerce_target(pd.Series(["red", "blue", "red"]), "t", positive="red")
    assert y.tolist() == [1, 0, 1]


def test_clear_errors_for_missing_columns() -> None:
    frame = customers(50)
    with pytest.raises(DataError, match="not in the table"):
        infer_spec(frame, "outcome")
    spec = infer_spec(frame, "converted", id_column="customer")
    with pytest.raises(DataError, match="trained with column"):
        transform_frame(spec, frame.drop(columns=["plan"]))


def test_leakage_guard_warns_on_a_copy_of_the_target() -> None:
    frame = customers(300)
    frame["refund_amount"] = np.where(frame["converted"] == "yes", 10.0 + np.arange(300) % 5, 0.0)
    spec = infer_spec(frame, "converted", id_column="customer")
    assert any("refund_amount" in w and "--drop refund_amount" in w for w in spec.warnings)
    spec = infer_spec(frame, "converted", id_column="customer", drop=["refund_amount"])
    assert not spec.warnings and "refund_amount" not in spec.input_names


def test_rows_with_missing_target_are_left_out() -> None:
    frame = customers(100)
    frame.loc[:9, "converted"] = None
    spec = infer_spec(frame, "converted", id_column="customer")
    assert target_vector(spec, frame)[:10].sum() == 0
