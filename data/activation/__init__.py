"""Activation (reverse ETL): syncs from the warehouse's marts to the tools marketers use.

A sync (YAML, :mod:`data.activation.config`) maps a model's columns onto a destination (webhook, CSV or
Parquet files, Salesforce, HubSpot, Braze, Google Ads Customer Match). Each run sends only the rows that
changed since the last successful one (:mod:`data.activation.diff`, state in the state store), retries
429/5xx with backoff, keeps to a rate limit and reports errors per row (:mod:`data.activation.runner`).
"""

from __future__ import annotations

from data.activation.config import SyncConfig, SyncFile, load_syncs, parse_syncs
from data.activation.errors import (
    ActivationError,
    DestinationError,
    MissingSecret,
    SyncConfigError,
)
from data.activation.runner import SyncReport, WarehouseSource, run_sync

__all__ = [
    "ActivationError",
    "DestinationError",
    "MissingSecret",
    "SyncConfig",
    "SyncConfigError",
    "SyncFile",
    "SyncReport",
    "WarehouseSource",
    "load_syncs",
    "parse_syncs",
    "run_sync",
]
