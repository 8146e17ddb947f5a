"""Explanations: TreeSHAP contributions from XGBoost itself (``pred_contribs=True``), as top reasons.

Contributions are in the model's margin (log-odds) units and sum, with the bias, to the raw margin.
One-hot columns of one categorical input are summed back into that input, so a reason names a column
of the customer table (``channel``), not an encoding detail (``channel=Web``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from policies.scoring.tabular import TabularSpec


@dataclass(frozen=True, slots=True)
class ReasonItem:
    """One input column's contribution to one score."""

    feature: str
    contribution: float
    value: str | float | None


def group_starts(spec: TabularSpec) -> np.ndarray:
    """Index of the first matrix column of each input column (one-hot groups are contiguous)."""
    groups = spec.groups
    return np.r_[0, np.nonzero(np.diff(groups))[0] + 1].astype(np.int64)


def contributions(booster: xgb.Booster, matrix: np.ndarray, n_threads: int = 0) -> np.ndarray:
    """TreeSHAP values per matrix column plus the bias as the last column, shape (rows, width + 1)."""
    dmatrix = xgb.DMatrix(matrix, missing=np.nan, nthread=n_threads)
    return booster.predict(dmatrix, pred_contribs=True, validate_features=False)


def grouped_contributions(contribs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum one-hot columns back into their input column; the bias column is dropped. Shape (rows, inputs)."""
    return np.add.reduceat(contribs[:, :-1], starts, axis=1)


def top_indices(grouped: np.ndarray, k: int) -> np.ndarray:
    """Per row, the ``k`` inputs with the largest absolute contribution, largest first."""
    k = min(k, grouped.shape[1])
    magnitude = np.abs(grouped)
    if k < grouped.shape[1]:
        part = np.argpartition(-magnitude, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(grouped.shape[1]), (grouped.shape[0], 1))
    order = np.argsort(-np.take_along_axis(magnitude, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def global_importance(booster: xgb.Booster, spec: TabularSpec, matrix: np.ndarray) -> list[dict[str, float | str]]:
    """Mean |SHAP| per input column over ``matrix`` (pass a sample), with XGBoost's total gain beside it."""
    grouped = grouped_contributions(contributions(booster, matrix), group_starts(spec))
    mean_abs = np.abs(grouped).mean(axis=0)
    gain_by_feature = booster.get_score(importance_type="total_gain")
    gains = np.zeros(len(spec.feature_names))
    for key, value in gain_by_feature.items():
        gains[int(key[1:])] = value  # keys are f0, f1, ... (the matrix has no names)
    gain_by_input = np.bincount(spec.groups, weights=gains, minlength=len(spec.columns))
    total_gain = gain_by_input.sum() or 1.0
    rows = [
        {"feature": col.name, "mean_abs_shap": float(mean_abs[i]), "gain_share": float(gain_by_input[i] / total_gain)}
        for i, col in enumerate(spec.columns)
    ]
    return sorted(rows, key=lambda r: -float(r["mean_abs_shap"]))
