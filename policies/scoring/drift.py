"""Drift: the population stability index (PSI) of scores and top features, recent against training.

At training time :func:`reference_profile` stores, in the registry entry, the bins and shares of the score
and of the most important inputs on the held-out rows. :func:`drift_report` bins a recent table the same
way. Reading (the usual rule of thumb): PSI < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policies.scoring.tabular import TabularSpec, category_text, coerce_numeric

FLOOR = 1e-4  # share given to an empty bin, so the log stays finite
MISSING = "<missing>"
OTHER = "<other>"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), FLOOR)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def status_of(value: float) -> str:
    return "stable" if value < 0.1 else "moderate" if value < 0.25 else "major"


def numeric_bins(values: np.ndarray, n_bins: int = 10) -> list[float]:
    """Inner edges at the deciles of the non-missing reference values (duplicates removed)."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return []
    return np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1])).tolist()


def numeric_shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Shares per bin (right-closed at the inner edges) plus a last bin for missing values."""
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(np.asarray(edges), values[~missing], side="right"), minlength=len(edges) + 1)
    out = np.r_[counts, missing.sum()].astype(np.float64)
    return out / max(len(values), 1)


def categorical_shares(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    text = category_text(values)
    counts = text.value_counts(dropna=False)
    known = [float(counts.get(c, 0)) for c in categories]
    n_missing = float(text.isna().sum())
    other = float(len(text)) - sum(known) - n_missing
    return np.asarray([*known, other, n_missing]) / max(len(text), 1)


def reference_profile(spec: TabularSpec, frame: pd.DataFrame, scores: np.ndarray, features: Sequence[str]) -> dict[str, Any]:
    """The binned distribution of the scores and of ``features`` on reference rows, saved with the model."""
    score_edges = numeric_bins(np.asarray(scores, dtype=np.float64))
    out: dict[str, Any] = {
        "score": {"kind": "numeric", "edges": score_edges,
                  "shares": numeric_shares(np.asarray(scores, dtype=np.float64), score_edges).tolist()},
        "features": {},
    }
    kinds = {c.name: c for c in spec.columns}
    for name in features:
        col = kinds[name]
        if col.kind == "numeric":
            values = coerce_numeric(frame[name]).to_numpy()
            edges = numeric_bins(values)
            out["features"][name] = {"kind": "numeric", "edges": edges, "shares": numeric_shares(values, edges).tolist()}
        else:
            out["features"][name] = {
                "kind": "categorical",
                "categories": list(col.categories),
                "shares": categorical_shares(frame[name], col.categories).tolist(),
            }
    return out


@dataclass(frozen=True, slots=True)
class DriftRow:
    """One PSI figure: what was compared, the value and its reading."""

    name: str
    psi: float
    status: str
    rows: int


def drift_report(reference: dict[str, Any], frame: pd.DataFrame, scores: np.ndarray) -> list[DriftRow]:
    """PSI of the recent scores and of each reference feature present in ``frame``."""
    rows: list[DriftRow] = []
    ref = reference["score"]
    value = psi(ref["shares"], numeric_shares(np.asarray(scores, dtype=np.float64), ref["edges"]))
    rows.append(DriftRow("score", value, status_of(value), len(scores)))
    for name, ref in reference["features"].items():
        if name not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            shares = numeric_shares(coerce_numeric(frame[name]).to_numpy(), ref["edges"])
        else:
            shares = categorical_shares(frame[name], ref["categories"])
        value = psi(ref["shares"], shares)
        rows.append(DriftRow(name, value, status_of(value), len(frame)))
    return rows


def drift_metrics(kind: str, version: str, rows: Sequence[DriftRow]) -> dict[str, float]:
    """Flat gauges for the metrics layer (``ame_model_psi{model,version,input}``), keyed by their labels."""
    return {f'ame_model_psi{{model="{kind}",version="{version}",input="{r.name}"}}': r.psi for r in rows}
