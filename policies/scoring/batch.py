"""Batch scoring: score a whole table, as a DataFrame (for the warehouse) and as ``score_updated`` events.

The event ids are derived from (model kind, version, customer, as-of time), so scoring the same table
twice with the same model appends nothing new: the log is idempotent on event ids. The warehouse's
loader writes the DataFrame of :func:`score_table` to ``marts_sales_lead_scores``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd

from data.events import Reason, ScoreUpdated, ScoreUpdatedProperties, derive_event_id
from data.log.base import AppendResult, EventLog
from policies.scoring.errors import DataError
from policies.scoring.explain import ReasonItem
from policies.scoring.model import ScoringModel

SOURCE = "scoring"


def customer_ids(frame: pd.DataFrame, id_column: str | None) -> pd.Series:
    """The customer id of each row: ``id_column`` when given (or the model's), else ``row-<n>``."""
    if id_column is None:
        return pd.Series([f"row-{i}" for i in range(len(frame))], index=frame.index, dtype="object")
    if id_column not in frame.columns:
        raise DataError(f"id column {id_column!r} is not in the table; its columns are {list(frame.columns)}")
    ids = frame[id_column].astype("string").str.strip()
    if ids.isna().any() or (ids == "").any():
        raise DataError(f"id column {id_column!r} has {int((ids.isna() | (ids == '')).sum())} empty values; every row needs a customer id")
    return ids.astype("object")


def score_table(model: ScoringModel, frame: pd.DataFrame, id_column: str | None = None, top_k: int = 3,
                as_of: datetime | None = None) -> pd.DataFrame:
    """Scores of every row: customer_id, model, model_version, scored_at, probability, score, tier and,
    with ``top_k`` > 0, ``reasons`` (list of :class:`ReasonItem`). The shape of ``marts_sales_lead_scores``."""
    as_of = as_of or datetime.now(UTC)
    scored = model.score_frame(frame, top_k=top_k)
    out = pd.DataFrame(
        {
            "customer_id": customer_ids(frame, id_column or model.spec.id_column).to_numpy(),
            "model": model.kind,
            "model_version": model.version,
            "scored_at": pd.Timestamp(as_of),
            "probability": scored["probability"].to_numpy(),
            "score": scored["score"].to_numpy(),
            "tier": scored["tier"].to_numpy(),
        }
    )
    if top_k > 0:
        out["reasons"] = scored["reasons"].to_numpy()
    return out


def _reason(item: ReasonItem) -> Reason:
    value = item.value if not isinstance(item.value, str) else item.value[:256]
    return Reason(feature=item.feature[:256], contribution=item.contribution, value=value)


def score_events(scores: pd.DataFrame) -> Iterator[ScoreUpdated]:
    """One ``score_updated`` event per row of :func:`score_table`, with a deterministic event id."""
    has_reasons = "reasons" in scores.columns
    for row in scores.itertuples(index=False):
        as_of = row.scored_at.to_pydatetime()
        yield ScoreUpdated(
            event_id=derive_event_id("score_updated", row.model, row.model_version, row.customer_id, as_of.isoformat()),
            customer_id=row.customer_id,
            occurred_at=as_of,
            source=SOURCE,
            properties=ScoreUpdatedProperties(
                model=row.model,
                score=float(row.score),
                model_version=row.model_version,
                tier=row.tier,
                probability=min(max(float(row.probability), 0.0), 1.0),
                reasons=[_reason(r) for r in row.reasons] if has_reasons else [],
            ),
        )


def write_scores(log: EventLog, scores: pd.DataFrame, batch_size: int = 1_000) -> AppendResult:
    """Append the score events in batches; returns the summed result (duplicates from a re-run included)."""
    appended = duplicates = last = 0
    batch: list[ScoreUpdated] = []
    for event in score_events(scores):
        batch.append(event)
        if len(batch) >= batch_size:
            result = log.append(batch)
            appended, duplicates, last = appended + result.appended, duplicates + result.duplicates, result.last_position
            batch = []
    if batch:
        result = log.append(batch)
        appended, duplicates, last = appended + result.appended, duplicates + result.duplicates, result.last_position
    return AppendResult(appended=appended, duplicates=duplicates, last_position=last)


def clv_score_table(customers: pd.DataFrame, version: str, as_of: datetime | None = None) -> pd.DataFrame:
    """Lifetime values of a CLV registry entry (its ``customers.csv``) in the shape of :func:`score_table`:
    ``score`` is the discounted CLV (currency), ``probability`` is P(alive), there is no tier."""
    as_of = as_of or datetime.now(UTC)
    missing = [c for c in ("customer_id", "clv", "p_alive") if c not in customers.columns]
    if missing:
        raise DataError(f"the CLV table lacks column(s) {missing}; pass the customers.csv of a `ame train clv` entry")
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].astype(str).to_numpy(),
            "model": "clv",
            "model_version": version,
            "scored_at": pd.Timestamp(as_of),
            "probability": customers["p_alive"].to_numpy(dtype=float),
            "score": customers["clv"].to_numpy(dtype=float),
            "tier": None,
        }
    )
