"""Erasure reaches training: the next retrain leaves erased customers out and its model card says so."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data.privacy.keystore import KeyStore, key_store_path_for
from data.privacy.training import exclude_erased, training_data_record
from data.settings import get_settings


def erase(*customers: str) -> None:
    """Record erasures in the key store of the configured (default) event log."""
    settings = get_settings()
    path = key_store_path_for(settings.event_log_url(), settings.key_store)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = KeyStore(path)
    try:
        for c in customers:
            store.keys([c], create=True)
            store.erase(c, requested_by="test")
    finally:
        store.close()


def test_no_key_store_means_nobody_is_left_out() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "x": [1, 2]})
    kept, record = exclude_erased(frame, "id")
    assert len(kept) == 2 and record["erased_excluded"] == 0 and record["customers"] == 2
    assert not (get_settings().home / "events.keys.db").exists(), "reading the erasures must not create a key store"


def test_erased_customers_leave_the_training_frame_and_are_counted() -> None:
    erase("b", "zz-not-in-frame")
    frame = pd.DataFrame({"id": ["a", "b", "b", "c"], "x": [1, 2, 3, 4]})
    kept, record = exclude_erased(frame, "id")
    assert kept["id"].tolist() == ["a", "c"]
    assert record["erased_excluded"] == 1 and record["rows_excluded"] == 2 and record["customers"] == 2
    assert record["customers_sha256"] == training_data_record(["a", "c"], set())["customers_sha256"]


def test_a_frame_without_the_id_column_is_a_clear_error_and_no_column_is_recorded() -> None:
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(KeyError, match="'lead_id' is not in the training data"):
        exclude_erased(frame, "lead_id")
    kept, record = exclude_erased(frame, None)
    assert kept is frame and record["customers"] is None and "could not be excluded" in record["note"]


def test_retrain_excludes_erased_leads_and_the_model_card_records_it(tmp_path: Path) -> None:
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost
    from policies.scoring.train import TrainArgs, main  # lazy: loads xgboost
    from tests.unit.scoring.test_scoring_train import lead_table  # lazy: loads xgboost

    frame = lead_table(1_500)
    erased = frame["lead_id"].iloc[:40].tolist()
    erase(*erased)
    args = TrainArgs(target="won", id_column="lead_id", n_estimators=30, n_threads=1, source="synthetic")
    result = main(frame, args, ModelRegistry(tmp_path / "registry"))
    privacy = result.metadata["data"]["privacy"]
    assert privacy["erased_excluded"] == 40 and privacy["customers"] == 1_460
    assert result.metadata["data"]["rows"] == 1_460
    card = (result.path / "model_card.md").read_text()
    assert "40 erased customers excluded" in card and "1,460 customers" in card
