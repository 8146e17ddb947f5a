"""Explanations: TreeSHAP contributions from XGBoost itself (``pred_contribs=True``), as top reasons.

Contributions are in the model's margin (log-odds) units and sum, with the bias, to the raw margin.
One-hot columns of one categorical input are summed back into that input, so a reason names a column
of the customer table (``channel``), not an encoding detail (``channel=Web``).
"""

from __future__ import annotations

import json
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


def split_edges(booster: xgb.Booster, width: int) -> list[np.ndarray]:
    """Per matrix column, the sorted float32 thresholds the trees split it on (read from the model's JSON)."""
    model = json.loads(booster.save_raw(raw_format="json"))
    edges: list[set[float]] = [set() for _ in range(width)]
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        for index, condition, left in zip(tree["split_indices"], tree["split_conditions"], tree["left_children"], strict=True):
            if left != -1:
                edges[index].add(condition)
    return [np.sort(np.asarray(list(e), dtype=np.float32)) for e in edges]


def split_signature(matrix: np.ndarray, edges: list[np.ndarray]) -> np.ndarray | None:
    """One int64 key per row that is equal for two rows exactly when they fall on the same side of every
    split of the model (and are missing in the same columns), or None when the key would overflow.
    XGBoost sends ``x < threshold`` left, so the side pattern is the count of thresholds <= x."""
    key = np.zeros(len(matrix), dtype=np.int64)
    capacity = 1
    for j, e in enumerate(edges):
        if e.size == 0:  # never split on: it cannot change the prediction or any contribution
            continue
        radix = e.size + 2  # bins 0..size, plus one for missing
        capacity *= radix
        if capacity >= 2**62:
            return None
        column = matrix[:, j]
        bins = np.searchsorted(e, column, side="right").astype(np.int64)
        bins[np.isnan(column)] = e.size + 1
        key = key * radix + bins
    return key


def exact_contributions(booster: xgb.Booster, matrix: np.ndarray, edges: list[np.ndarray] | None, n_threads: int = 0) -> np.ndarray:
    """:func:`contributions`, computed once per distinct split pattern and copied to the rows that share it.

    Exact (not an approximation): TreeSHAP of a row depends only on which side of each split it falls.
    It pays when many rows share a pattern (coarse or categorical inputs); otherwise it falls back."""
    if edges is None or len(matrix) < 64:
        return contributions(booster, matrix, n_threads)
    key = split_signature(matrix, edges)
    if key is None:
        return contributions(booster, matrix, n_threads)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if len(first) > 0.9 * len(matrix):
        return contributions(booster, matrix, n_threads)
    return contributions(booster, matrix[first], n_threads)[inverse.ravel()]


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
    grouped = grouped_contributions(exact_contributions(booster, matrix, split_edges(booster, matrix.shape[1])), group_starts(spec))
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
