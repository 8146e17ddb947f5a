"""The warehouse's interface: what every backend (embedded DuckDB, BigQuery) offers, and its errors.

The loader writes ``raw_events`` through :class:`Warehouse`; SQLMesh builds staging and marts on top of it.
A backend is chosen by URL: ``duckdb:///path`` (default) or ``bigquery://project/dataset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class WarehouseError(RuntimeError):
    """Base of the warehouse's own errors."""


class UnsupportedWarehouse(WarehouseError):
    """The URL names a backend that this build does not know."""


class WarehouseUnavailable(WarehouseError):
    """The backend cannot be reached or opened."""


class BuildFailed(WarehouseError):
    """SQLMesh could not build the models (a model query failed or an audit found bad data)."""


@dataclass(frozen=True, slots=True)
class RawColumn:
    """One column of ``raw_events``, with its type in each dialect and what it means."""

    name: str
    duckdb: str
    bigquery: str
    doc: str
    required: bool = False


RAW_COLUMNS: tuple[RawColumn, ...] = (
    RawColumn("event_id", "VARCHAR", "STRING", "Idempotency key of the event (unique).", True),
    RawColumn("event_type", "VARCHAR", "STRING", "The event's type, as in data/events.py.", True),
    RawColumn("customer_id", "VARCHAR", "STRING", "The id the event was logged under (before identity resolution).", True),
    RawColumn("occurred_at", "TIMESTAMP", "TIMESTAMP", "Event time, UTC.", True),
    RawColumn("recorded_at", "TIMESTAMP", "TIMESTAMP", "Log time, UTC."),
    RawColumn("source", "VARCHAR", "STRING", "Producer of the event."),
    RawColumn("schema_version", "INTEGER", "INT64", "Envelope schema version."),
    RawColumn("causation_id", "VARCHAR", "STRING", "The event that caused this one."),
    RawColumn("properties", "JSON", "JSON", "The event's typed payload, verbatim."),
    # Hot properties, copied out of `properties` by the writer so that staging never parses JSON at scale.
    RawColumn("campaign_id", "VARCHAR", "STRING", "properties.campaign_id"),
    RawColumn("creative_id", "VARCHAR", "STRING", "properties.creative_id"),
    RawColumn("anonymous_id", "VARCHAR", "STRING", "properties.anonymous_id (web or app visitor id)"),
    RawColumn("session_id", "VARCHAR", "STRING", "properties.session_id"),
    RawColumn("url", "VARCHAR", "STRING", "properties.url"),
    RawColumn("amount", "DOUBLE", "FLOAT64", "properties.amount (purchase revenue)"),
    RawColumn("cost", "DOUBLE", "FLOAT64", "properties.cost, or properties.price_paid of an auction"),
    RawColumn("channel", "VARCHAR", "STRING", "properties.channel, else the channel the event type belongs to"),
    RawColumn("score_model", "VARCHAR", "STRING", "properties.model of a score_updated event"),
    RawColumn("score", "DOUBLE", "FLOAT64",
        "score of a score_updated event: the probability in [0, 1] for lead, churn and conversion "
        "(0-100 score / 100 when the event has none), the value for clv"),
    RawColumn("log_position", "BIGINT", "INT64", "Position in the event log (null for rows streamed by Pub/Sub)."),
    RawColumn("loaded_at", "TIMESTAMP", "TIMESTAMP", "When the row reached the warehouse."),
    # Added later, so last: an older raw_events gains them in place (ensure_raw adds missing columns).
    RawColumn("device_type", "VARCHAR", "STRING", "properties.context.device_type (desktop, mobile, tablet, ...)"),
    RawColumn("traffic_source", "VARCHAR", "STRING", "properties.context.utm_source (else .source): where a visit came from"),
    RawColumn("traffic_medium", "VARCHAR", "STRING", "properties.context.utm_medium (else .medium)"),
    RawColumn("traffic_campaign", "VARCHAR", "STRING", "properties.context.utm_campaign (else .campaign)"),
)
RAW_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in RAW_COLUMNS)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load did: rows written, and the log positions it covered."""

    rows: int
    from_position: int
    to_position: int
    batches: int


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass(slots=True)
class ModelRun:
    """One model evaluated by a build: the intervals it processed and the rows those intervals hold."""

    model: str
    kind: str
    intervals: list[tuple[str, str]] = field(default_factory=list)
    rows: int | None = None
    audits_passed: int = 0
    audits_failed: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class BuildReport:
    """What a build did, model by model."""

    execution_time: str | None
    models: dict[str, ModelRun] = field(default_factory=dict)
    restated: list[str] = field(default_factory=list)


@runtime_checkable
class Warehouse(Protocol):
    """Where raw events land and the models are built."""

    url: str
    dataset: str

    def ensure_raw(self) -> None:
        """Create the dataset, ``raw_events`` and the loader's tracking tables if they are missing."""
        ...

    def loaded_position(self, stream: str) -> int:
        """The last log position loaded from ``stream`` (0 if none)."""
        ...

    def append_raw(self, stream: str, rows: Sequence[dict[str, Any]], to_position: int) -> int:
        """Append raw rows and move ``stream``'s position to ``to_position`` in one transaction."""
        ...

    def query(self, sql: str) -> QueryResult:
        """Run SQL (in the backend's dialect) and return all rows."""
        ...

    def close(self) -> None: ...
