"""Batch scoring reaches the warehouse: a lead model trained on customer_360 features scores every customer,
the scores go into the log as ``score_updated`` events, and after load + build ``marts_sales_lead_scores``
shows each lead's calibrated probability and the model's tier."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from data.log import open_log
from data.synthetic import synthetic_dicts
from data.warehouse import open_warehouse
from data.warehouse.build import WarehouseProject
from data.warehouse.loader import load_events
from policies.scoring.batch import score_table, write_scores
from policies.scoring.features import feature_frame
from policies.scoring.train import TrainArgs, train_scoring

os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")
pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")

START = datetime(2026, 1, 1, tzinfo=UTC)


def _load_and_build(log_url: str, wh_path: Path) -> None:
    log, wh = open_log(log_url), open_warehouse(f"duckdb:///{wh_path}")
    try:
        load_events(log, wh, batch_size=1_000)
    finally:
        wh.close()
        log.close()
    project = WarehouseProject(f"duckdb:///{wh_path}")
    project.build()
    project.close()


def _frame(wh_path: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(wh_path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_batch_scores_land_in_marts_sales_lead_scores_with_the_model_tier(tmp_path: Path) -> None:
    log_url, wh_path = f"sqlite:///{tmp_path / 'events.db'}", tmp_path / "wh.duckdb"
    log = open_log(log_url)
    log.append(list(synthetic_dicts(3_000, customers=400, seed=31, start=START)))
    log.close()
    _load_and_build(log_url, wh_path)

    # a tiny lead model on the mart's features (the one feature function), with a target of engagement + noise
    mart = _frame(wh_path, "SELECT * FROM ame.marts_marketing_customer_360 ORDER BY customer_id")
    leads_sql = "SELECT customer_id, lead_probability, lead_score, lead_tier, score_source FROM ame.marts_sales_lead_scores"
    before = _frame(wh_path, leads_sql)
    assert len(before) > 10 and set(before["score_source"]) == {"rule"}
    as_of = START + timedelta(days=2)
    features = feature_frame(mart, as_of)
    rng = np.random.default_rng(3)
    engagement = features["page_views"] + 3 * features["email_clicks"] + features["events_total"] / 4
    features["won"] = (engagement + rng.normal(0, 2, len(features)) > engagement.median()).astype(int)
    features["customer_id"] = mart["customer_id"].to_numpy()
    result = train_scoring(features, TrainArgs(target="won", id_column="customer_id", n_estimators=30, n_threads=1,
                                               calibration="platt", source="test"))
    scores = score_table(result.model, features.drop(columns=["won"]), top_k=0, as_of=as_of)
    assert set(scores["tier"]) == {"High", "Medium", "Low"}

    log = open_log(log_url)
    try:
        assert write_scores(log, scores).appended == len(scores)
    finally:
        log.close()
    _load_and_build(log_url, wh_path)

    leads = _frame(wh_path, leads_sql)
    assert set(leads["customer_id"]) == set(before["customer_id"])  # scoring does not change who is a lead
    joined = leads.merge(scores, on="customer_id", how="left", validate="one_to_one")
    assert joined["probability"].notna().all(), "every lead was scored"
    np.testing.assert_allclose(joined["lead_probability"], joined["probability"], rtol=0, atol=1e-12)
    # the 0-100 scale beside it: 100 x the probability to 2 decimals (a half-cent may round either way)
    np.testing.assert_allclose(joined["lead_score"], 100 * joined["probability"], rtol=0, atol=0.005 + 1e-9)
    assert (joined["lead_tier"] == joined["tier"]).all()  # the model's tier, not the mart's 0.7 / 0.4 cut
    # only lead scores were sent (no churn or clv): some scores come from models, so 'mixed'
    assert set(joined["score_source"]) == {"mixed"}
    # the tiers differ from what the probability thresholds would say for some lead (else the check is empty)
    by_threshold = np.where(joined["probability"] >= 0.7, "High", np.where(joined["probability"] >= 0.4, "Medium", "Low"))
    assert (by_threshold != joined["lead_tier"].to_numpy()).any()
    ranks = leads.sort_values("lead_score", ascending=False)
    assert ranks["lead_score"].is_monotonic_decreasing
    c360 = _frame(wh_path, "SELECT customer_id, lead_model_tier FROM ame.marts_marketing_customer_360")
    assert c360["lead_model_tier"].notna().all()
