"""Training on a small synthetic lead table: split, calibration, registry round trip, explanations,
batch scoring to events, and the online path agreeing with the batch path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from data.log import open_log
from policies.scoring.batch import score_events, score_table, write_scores
from policies.scoring.errors import ModelNotFound
from policies.scoring.explain import contributions
from policies.scoring.metrics import roc_auc
from policies.scoring.registry import ModelRegistry
from policies.scoring.train import TrainArgs, main, split_rows, train_scoring


def lead_table(n: int = 3_000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    channel = rng.choice(["web", "email", "ads"], n, p=[0.5, 0.3, 0.2])
    visits = rng.poisson(4, n).astype(float)
    days = rng.integers(1, 60, n).astype(float)
    margin = -3.0 + 0.35 * visits - 0.03 * days + np.where(channel == "email", 1.0, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(int)
    frame = pd.DataFrame(
        {"lead_id": [f"L{i:05d}" for i in range(n)], "visits": visits, "days_since_seen": days, "channel": channel,
         "noise": rng.normal(size=n), "created": pd.date_range("2025-01-01", periods=n, freq="h").astype(str), "won": y}
    )
    frame.loc[::31, "visits"] = np.nan
    return frame


def oracle_margin(frame: pd.DataFrame) -> np.ndarray:
    visits = frame["visits"].fillna(4.0)
    return (0.35 * visits - 0.03 * frame["days_since_seen"] + np.where(frame["channel"] == "email", 1.0, 0.0)).to_numpy()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("registry")
    frame = lead_table()
    result = main(frame, TrainArgs(target="won", id_column="lead_id", time_column="created", n_estimators=150, n_threads=1,
                                   source="synthetic"), ModelRegistry(root))
    return frame, result, ModelRegistry(root)


def test_time_split_puts_the_newest_rows_in_test() -> None:
    frame = lead_table(500)
    y = frame["won"].to_numpy()
    split = split_rows(y, frame["created"], TrainArgs(target="won"), np.random.default_rng(0))
    assert split.method == "time" and split.train.max() < split.calibration.min() < split.test.min()
    strat = split_rows(y, None, TrainArgs(target="won"), np.random.default_rng(0))
    assert abs(y[strat.test].mean() - y.mean()) < 0.02
    assert len(np.intersect1d(strat.train, strat.test)) == 0


def test_training_learns_the_signal_and_reports(trained) -> None:
    frame, result, _ = trained
    m = result.metrics
    test = frame.iloc[result.test_rows]
    oracle = roc_auc(test["won"].to_numpy(), oracle_margin(test))  # the true model's AUC on the same rows
    assert m["test"]["roc_auc"] > oracle - 0.03 and m["test"]["lift_top_decile"] > 1.5
    assert m["test"]["ece"] < 0.06
    ranked = [r["feature"] for r in m["importance"]]
    assert ranked[0] in {"visits", "days_since_seen"} and ranked.index("noise") == 3
    assert result.metadata["split"]["method"] == "time"


def test_registry_entry_has_everything_and_loads_back(trained) -> None:
    frame, result, registry = trained
    folder = result.path
    for name in ("model.ubj", "preprocessing.json", "calibrator.json", "score_scale.json", "metrics.json",
                 "drift_reference.json", "model_card.md", "metadata.json"):
        assert (folder / name).exists(), name
    meta = registry.metadata("lead")
    assert meta["data"]["rows"] == len(frame) and len(meta["data"]["sha256"]) == 64 and "git_commit" in meta["code"]
    loaded = registry.load_scoring("lead")
    assert loaded.version == folder.name
    np.testing.assert_allclose(loaded.probability(loaded.matrix(frame)), result.model.probability(result.model.matrix(frame)))
    with pytest.raises(ModelNotFound, match="train one"):
        registry.load_scoring("churn")


def test_online_score_equals_batch_score(trained) -> None:
    frame, result, _ = trained
    model = result.model
    batch = model.score_frame(frame.head(50), top_k=3)
    for i, record in enumerate(frame.head(50).to_dict("records")):
        one = model.score_one(record, top_k=3)
        assert one.probability == pytest.approx(batch["probability"].iloc[i], rel=1e-6)
        assert one.tier == batch["tier"].iloc[i]
        assert [r.feature for r in one.reasons] == [r.feature for r in batch["reasons"].iloc[i]]


def test_contributions_sum_to_the_margin_and_reasons_name_input_columns(trained) -> None:
    frame, result, _ = trained
    model = result.model
    x = model.matrix(frame.head(200))
    contrib = contributions(model.booster, x)
    margin = model.booster.predict(xgb.DMatrix(x, missing=np.nan), output_margin=True)
    np.testing.assert_allclose(contrib.sum(axis=1), margin, rtol=1e-4, atol=1e-4)
    _top, values = model.reasons_matrix(x, 3)
    assert np.all(np.abs(values[:, 0]) >= np.abs(values[:, 1]))
    reasons = model.score_frame(frame.head(5), top_k=3)["reasons"]
    assert all(r.feature in {"visits", "days_since_seen", "channel", "noise"} for rs in reasons for r in rs)
    channel_reason = [r for rs in reasons for r in rs if r.feature == "channel"]
    assert all(r.value in {"web", "email", "ads"} for r in channel_reason)


def test_batch_scoring_writes_idempotent_score_events(trained, log_url: str) -> None:
    frame, result, _ = trained
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    scores = score_table(result.model, frame.head(300), top_k=3, as_of=as_of)
    assert list(scores.columns[:7]) == ["customer_id", "model", "model_version", "scored_at", "probability", "score", "tier"]
    assert scores["customer_id"].iloc[0] == "L00000"
    event = next(score_events(scores))
    assert event.properties.model == "lead" and len(event.properties.reasons) == 3
    log = open_log(log_url)
    try:
        first = write_scores(log, scores, batch_size=128)
        again = write_scores(log, scores, batch_size=128)
    finally:
        log.close()
    assert first.appended == 300 and again.appended == 0 and again.duplicates == 300


def test_tiny_training_without_time_uses_stratified_split(tmp_path: Path) -> None:
    frame = lead_table(800, seed=9).drop(columns=["created"])
    result = train_scoring(frame, TrainArgs(target="won", id_column="lead_id", n_estimators=30, n_threads=1, calibration="platt"))
    assert result.metadata["split"]["method"] == "stratified" and result.metrics["calibration_method"] == "platt"


def test_exact_contributions_share_work_without_changing_values(trained) -> None:
    from policies.scoring.explain import exact_contributions, split_edges  # lazy: loads xgboost

    frame, result, _ = trained
    booster = result.model.booster
    x = result.model.matrix(frame.head(400))
    edges = split_edges(booster, x.shape[1])
    # move every value to another point of the same split bin: TreeSHAP must not change at all
    snapped = x.copy()
    for j, e in enumerate(edges):
        if e.size == 0:
            continue
        col = x[:, j]
        bins = np.searchsorted(e, col, side="right")
        rep = np.where(bins == 0, e[0] - np.float32(1), e[np.maximum(bins - 1, 0)])
        snapped[:, j] = np.where(np.isnan(col), np.nan, rep)
    np.testing.assert_array_equal(contributions(booster, snapped), contributions(booster, x))
    tripled = np.vstack([x, snapped, x])
    np.testing.assert_array_equal(exact_contributions(booster, tripled, edges), contributions(booster, tripled))
