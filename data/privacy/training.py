"""Erasure reaches training: the next training set drops erased customers, and a model card records which
data trained the model (how many customers, a digest of their ids, how many erased ones were excluded)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from data.privacy.keystore import KeyStore, key_store_path_for


def erased_customers(log_url: str) -> set[str]:
    """The customers erased from a log (its key store's tombstones)."""
    from data.settings import get_settings

    store = KeyStore(key_store_path_for(log_url, get_settings().key_store))
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
    """A pandas frame without the erased customers' rows (training sets, feature snapshots)."""
    return frame[~frame[column].isin(erased)] if erased else frame
