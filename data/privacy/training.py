"""Erasure reaches training: the next training set drops erased customers, and a model card records which
data trained the model (how many customers, a digest of their ids, how many erased ones were excluded)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from data.postgres_db import is_postgres_url
from data.privacy.keystore import key_store_path_for, open_key_store
from data.settings import get_settings


def erased_customers(log_url: str) -> set[str]:
    """The customers erased from a log (its key store's tombstones)."""
    configured = get_settings().key_store
    if not is_postgres_url(configured) and not key_store_path_for(log_url, configured).exists():
        return set()  # no key store file yet: nobody was ever erased
    store = open_key_store(log_url, configured)
    try:
        return store.erased_customers()
    finally:
        store.close()


def training_data_record(customer_ids: Iterable[str], erased: set[str]) -> dict[str, Any]:
    """What a model card records about its training customers: count, SHA-256 of the sorted ids (so a later
    audit can check whether an erased customer was in it), and the erased customers excluded."""
    ids = sorted(set(customer_ids))
    kept = [c for c in ids if c not in erased]
    digest = hashlib.sha256("\n".join(kept).encode()).hexdigest()
    return {"customers": len(kept), "customers_sha256": digest, "erased_excluded": len(ids) - len(kept)}


def without_erased(frame: Any, erased: set[str], column: str = "customer_id") -> Any:
    """A pandas frame without the erased customers' rows (training sets, feature snapshots); ids are compared
    as text, so a numeric id column matches too."""
    return frame[~frame[column].astype(str).isin(erased)].reset_index(drop=True) if erased else frame


def exclude_erased(frame: Any, id_column: str | None, log_url: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The training frame without the customers erased from ``log_url`` (default: the configured log), and the
    model card's record of it. Without an id column nobody can be excluded, and the record says so."""
    if not id_column:
        return frame, {"customers": None, "erased_excluded": None,
                       "note": "no customer id column: erased customers could not be excluded"}
    if id_column not in frame.columns:
        raise KeyError(f"the customer id column {id_column!r} is not in the training data; its columns are {list(frame.columns)}")
    if log_url is None:
        log_url = get_settings().event_log_url()
    erased = erased_customers(log_url)
    record = training_data_record(frame[id_column].astype(str), erased)
    kept = without_erased(frame, erased, id_column)
    return kept, {**record, "rows_excluded": int(len(frame) - len(kept)), "key_store_of": log_url}


def privacy_card_line(record: dict[str, Any] | None) -> str:
    """The model card's line about the training customers and the erased ones left out."""
    if not record:
        return "not recorded"
    if record.get("customers") is None:
        return record.get("note", "erased customers could not be excluded")
    return (f"{record['customers']:,} customers (ids sha256 `{record['customers_sha256'][:16]}…`); "
            f"{record['erased_excluded']:,} erased customers excluded ({record['rows_excluded']:,} rows)")
