"""Evaluation figures of a binary scoring model, as pure numpy functions of (labels, probabilities)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counted as half)."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(p, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (the step-wise sum, no interpolation)."""
    y = np.asarray(y).astype(np.float64)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    p_sorted, y_sorted = np.asarray(p)[order], y[order]
    # one threshold per distinct score: take the last index of each run of equal scores
    last = np.r_[np.nonzero(np.diff(p_sorted))[0], len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=np.float64) - y) ** 2))


def decile_of(p: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin 1 holds the highest scores; ties are broken by row order so the bins have equal sizes."""
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    bins = np.empty(len(p), dtype=np.int64)
    bins[order] = np.arange(len(p)) * n_bins // max(len(p), 1) + 1
    return bins


def lift_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Per decile (1 = top scores): rows, positives, rate, lift, cumulative lift and share of positives captured."""
    y = np.asarray(y, dtype=np.float64)
    bins = decile_of(p, n_bins)
    base = y.mean() if len(y) else float("nan")
    rows: list[dict[str, float]] = []
    cum_n = cum_pos = 0.0
    for b in range(1, n_bins + 1):
        mask = bins == b
        n, pos = float(mask.sum()), float(y[mask].sum())
        cum_n += n
        cum_pos += pos
        rate = pos / n if n else float("nan")
        rows.append(
            {
                "decile": b,
                "rows": n,
                "positives": pos,
                "rate": rate,
                "lift": rate / base if base > 0 else float("nan"),
                "cumulative_lift": (cum_pos / cum_n) / base if base > 0 and cum_n else float("nan"),
                "captured": cum_pos / y.sum() if y.sum() else float("nan"),
                "min_probability": float(np.min(np.asarray(p)[mask])) if n else float("nan"),
            }
        )
    return rows


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Per bin of predicted probability (equal counts, lowest first): mean predicted vs observed rate."""
    y = np.asarray(y, dtype=np.float64)
    bins = n_bins + 1 - decile_of(p, n_bins)
    rows = []
    for b in range(1, n_bins + 1):
        mask = bins == b
        if not mask.any():
            continue
        rows.append(
            {
                "bin": b,
                "rows": float(mask.sum()),
                "mean_predicted": float(np.mean(np.asarray(p)[mask])),
                "observed_rate": float(y[mask].mean()),
            }
        )
    return rows


def expected_calibration_error(table: list[dict[str, float]]) -> float:
    total = sum(r["rows"] for r in table)
    return float(sum(r["rows"] * abs(r["mean_predicted"] - r["observed_rate"]) for r in table) / total) if total else float("nan")


def evaluate(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """All headline figures for one split."""
    calibration = calibration_table(y, p, n_bins)
    lift = lift_table(y, p, n_bins)
    return {
        "rows": len(y),
        "positives": int(np.sum(y)),
        "base_rate": float(np.mean(y)) if len(y) else float("nan"),
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(calibration),
        "lift_top_decile": lift[0]["lift"],
        "lift_top_two_deciles": lift[1]["cumulative_lift"],
        "calibration": calibration,
        "lift": lift,
    }
