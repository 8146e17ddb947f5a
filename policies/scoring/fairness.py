"""Per-group figures of a scoring model for declared sensitive columns, each with a 95% confidence interval.

A sensitive column is declared as ``COL`` or ``COL=E1,E2,...`` (bin edges). A column with at most
:data:`MAX_DISTINCT_UNBINNED` distinct values is read as categories. A numeric column with more is cut into
bins: the given edges, else the age bands :data:`AGE_EDGES` for a column named ``age``, else quintiles of the
training data. The edges are fixed at training and saved with the model, so an audit bins the same way.

For each group: selection rate (the share whose score reaches the threshold), TPR and FPR (the share selected
among positives and among negatives), each with a Wilson interval (scipy); the mean predicted probability
beside the observed rate (Wilson), the calibration gap (mean predicted - observed) and the ECE, each with
a percentile bootstrap interval (scipy, resampling the group's rows).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy.stats import binomtest, bootstrap

from policies.scoring.errors import DataError
from policies.scoring.tabular import category_text, coerce_numeric

MAX_DISTINCT_UNBINNED = 10  # a numeric column with more distinct values is binned
AGE_EDGES = (25.0, 35.0, 45.0, 55.0, 65.0)  # <25, 25-35, 35-45, 45-55, 55-65, >=65 (each bin includes its lower edge)
QUANTILES = (0.2, 0.4, 0.6, 0.8)  # the default bins of any other continuous column: quintiles of the training data
MISSING = "<missing>"
RATE_METRICS = ("selection_rate", "tpr", "fpr")
METRICS = (*RATE_METRICS, "calibration_gap", "ece")
Statistic = Callable[..., np.ndarray]  # row indices (..., n) -> one value per leading index, as scipy's bootstrap calls it
DECLARATION = re.compile(r"^\s*([^=]+?)\s*(?:=\s*(.*))?$")


class SensitiveColumn(BaseModel):
    """A declared sensitive column; ``edges`` set when it is binned (bins ``[e_i, e_i+1)``, open at both ends)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    edges: tuple[float, ...] | None = None

    @property
    def labels(self) -> list[str]:
        """The bins' names: ``<25``, ``25-35`` (25 included, 35 not), ..., ``>=65``."""
        if not self.edges:
            return []
        e = [f"{x:g}" for x in self.edges]
        return [f"<{e[0]}", *(f"{a}-{b}" for a, b in itertools.pairwise(e)), f">={e[-1]}"]

    def groups(self, frame: pd.DataFrame) -> pd.Series:
        """Each row's group: its bin, or its value as text; missing values are the group ``<missing>``."""
        if self.name not in frame.columns:
            raise DataError(f"sensitive column {self.name!r} is not in the table; its columns are {list(frame.columns)}")
        values = frame[self.name]
        if self.edges is None:
            return category_text(values).fillna(MISSING).astype(str).reset_index(drop=True)
        numbers = coerce_numeric(values).to_numpy()
        codes = np.searchsorted(np.asarray(self.edges), numbers, side="right")
        labels = np.asarray(self.labels, dtype=object)[np.minimum(codes, len(self.edges))]
        return pd.Series(np.where(np.isnan(numbers), MISSING, labels), dtype=object).astype(str)


def parse_sensitive(text: str) -> SensitiveColumn:
    """``COL`` or ``COL=E1,E2,...`` (increasing bin edges) -> a declaration; the edges of a plain ``COL`` are
    decided on the training data by :func:`resolve_sensitive`."""
    match = DECLARATION.match(text)
    if not match or not match.group(1):
        raise DataError(f"--sensitive {text!r} is not COL or COL=E1,E2,... (for example age=25,35,45,55,65)")
    name, edges_text = match.group(1), match.group(2)
    if edges_text is None:
        return SensitiveColumn(name=name)
    try:
        edges = tuple(float(e) for e in edges_text.split(",") if e.strip())
    except ValueError:
        raise DataError(f"--sensitive {text!r}: the bin edges after '=' must be numbers separated by commas") from None
    if not edges or any(b <= a for a, b in itertools.pairwise(edges)):
        raise DataError(f"--sensitive {text!r}: give at least one bin edge, in increasing order")
    return SensitiveColumn(name=name, edges=edges)


def resolve_sensitive(column: SensitiveColumn, frame: pd.DataFrame) -> SensitiveColumn:
    """Fix how a declared column is grouped, from the training table: categories, or bins with their edges."""
    if column.name not in frame.columns:
        raise DataError(f"sensitive column {column.name!r} is not in the table; its columns are {list(frame.columns)}")
    if column.edges is not None:
        return column
    values = frame[column.name]
    numbers = coerce_numeric(values)
    numeric = pd.api.types.is_numeric_dtype(values) or numbers.notna().sum() >= 0.95 * max(values.notna().sum(), 1)
    if not numeric or numbers.nunique(dropna=True) <= MAX_DISTINCT_UNBINNED:
        return column
    if column.name.strip().lower() == "age":
        return column.model_copy(update={"edges": AGE_EDGES})
    quantiles = np.quantile(numbers.dropna().to_numpy(), QUANTILES)
    edges = tuple(sorted({float(f"{e:.4g}") for e in quantiles}))  # 4 significant digits: readable bin names
    return column.model_copy(update={"edges": edges})


@dataclass(frozen=True, slots=True)
class AuditArgs:
    """How an audit is computed.

    :param threshold: the score (0-100) from which a customer counts as selected (default: the High tier).
    :param min_count: a group's figure is judged (disparities, bounds) only when its denominator has this many rows.
    :param resamples: bootstrap resamples for the calibration gap and the ECE.
    :param bins: equal-count bins of predicted probability per group, for the ECE.
    :param reference: column -> the group every other group is compared with (default: the largest group).
    """

    threshold: float = 80.0
    min_count: int = 30
    resamples: int = 1_000
    bins: int = 10
    confidence: float = 0.95
    seed: int = 7
    reference: tuple[tuple[str, str], ...] = ()


def wilson(successes: int, trials: int, confidence: float = 0.95) -> dict[str, Any]:
    """A proportion with its Wilson score interval (NaN without trials)."""
    if trials == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return {"value": successes / trials, "low": float(ci.low), "high": float(ci.high), "n": trials}


def ece_statistic(p: np.ndarray, y: np.ndarray, bins: int) -> Statistic:
    """The ECE of rows ``idx`` of (p, y): equal-count bins of p fixed on the whole group, then
    sum over bins of |sum(p - y)| / rows. Vectorized over the bootstrap's leading axes."""
    order = np.argsort(p, kind="stable")
    bin_of = np.empty(len(p), dtype=np.int64)
    bin_of[order] = np.arange(len(p)) * bins // max(len(p), 1)
    gap = p - y

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx, dtype=np.int64), axis, -1)
        flat = idx.reshape(-1, idx.shape[-1])
        offset = np.arange(len(flat))[:, None] * bins
        sums = np.bincount((bin_of[flat] + offset).ravel(), weights=gap[flat].ravel(), minlength=len(flat) * bins)
        return (np.abs(sums.reshape(len(flat), bins)).sum(axis=1) / flat.shape[1]).reshape(idx.shape[:-1])

    return statistic


def bootstrap_ci(statistic: Statistic, n: int, args: AuditArgs, rng: np.random.Generator) -> dict[str, Any]:
    """A statistic of a group's row indices with its percentile bootstrap interval (scipy)."""
    idx = np.arange(n)
    value = float(statistic(idx[None, :])[0])
    if n < 2:
        return {"value": value, "low": float("nan"), "high": float("nan"), "n": n}
    res = bootstrap((idx,), statistic, vectorized=True, n_resamples=args.resamples, batch=200, method="percentile",
                    confidence_level=args.confidence, random_state=rng)
    return {"value": value, "low": float(res.confidence_interval.low), "high": float(res.confidence_interval.high), "n": n}


def group_figures(y: np.ndarray, p: np.ndarray, selected: np.ndarray, args: AuditArgs, rng: np.random.Generator) -> dict[str, Any]:
    """All figures of one group of rows."""
    y, p, selected = np.asarray(y, dtype=np.int64), np.asarray(p, dtype=np.float64), np.asarray(selected, dtype=bool)
    pos = y == 1
    gap = p - y
    return {
        "rows": len(y),
        "positives": int(pos.sum()),
        "selection_rate": wilson(int(selected.sum()), len(y), args.confidence),
        "tpr": wilson(int(selected[pos].sum()), int(pos.sum()), args.confidence),
        "fpr": wilson(int(selected[~pos].sum()), int((~pos).sum()), args.confidence),
        "mean_predicted": float(p.mean()) if len(p) else float("nan"),
        "observed_rate": wilson(int(pos.sum()), len(y), args.confidence),
        "calibration_gap": bootstrap_ci(lambda idx, axis=-1: gap[idx].mean(axis=axis), len(y), args, rng),
        "ece": bootstrap_ci(ece_statistic(p, y.astype(np.float64), args.bins), len(y), args, rng),
    }


def group_order(column: SensitiveColumn, labels: np.ndarray) -> list[str]:
    """Bins in their order, categories from the largest; ``<missing>`` last."""
    present = set(labels.tolist())
    if column.edges:
        ordered = [g for g in column.labels if g in present]
    else:
        ordered = sorted(present - {MISSING}, key=lambda g: (-int((labels == g).sum()), g))
    return ordered + ([MISSING] if MISSING in present else [])


def audit_column(column: SensitiveColumn, groups: pd.Series, y: np.ndarray, p: np.ndarray, selected: np.ndarray,
                 args: AuditArgs, rng: np.random.Generator) -> dict[str, Any]:
    """The figures of every group of one sensitive column, the reference group and the largest disparities."""
    labels = groups.to_numpy()
    names = group_order(column, labels)
    figures = []
    for name in names:
        mask = labels == name
        figures.append({"group": name, **group_figures(y[mask], p[mask], selected[mask], args, rng)})
    reference = dict(args.reference).get(column.name, max(names, key=lambda g: int((labels == g).sum())))
    if reference not in names:
        raise DataError(f"--reference {column.name}={reference}: no such group; the groups are {names}")
    out = {"column": column.name, "edges": list(column.edges) if column.edges else None, "reference": reference, "groups": figures}
    out["disparities"] = {m: largest_disparity(out, m, args.min_count) for m in METRICS}
    return out


def comparisons(column_audit: dict[str, Any], metric: str, min_count: int) -> list[dict[str, Any]]:
    """Each judged group against the reference on one metric: difference and (for rates) ratio.
    A group is judged when its and the reference's denominators have ``min_count`` rows and both values are finite."""
    by_name = {g["group"]: g for g in column_audit["groups"]}
    ref = by_name[column_audit["reference"]][metric]
    if ref["n"] < min_count or not np.isfinite(ref["value"]):
        return []
    out = []
    for name, figures in by_name.items():
        value = figures[metric]
        if name == column_audit["reference"] or value["n"] < min_count or not np.isfinite(value["value"]):
            continue
        ratio = value["value"] / ref["value"] if metric in RATE_METRICS and ref["value"] > 0 else None
        out.append({"metric": metric, "column": column_audit["column"], "group": name, "value": value,
                    "reference": column_audit["reference"], "reference_value": ref,
                    "difference": value["value"] - ref["value"], "difference_ci": difference_interval(value, ref), "ratio": ratio})
    return out


def difference_interval(a: dict[str, Any], b: dict[str, Any]) -> list[float]:
    """The interval of a - b for independent groups from their own intervals (MOVER; with Wilson intervals this is
    Newcombe's hybrid score interval for a difference of proportions)."""
    d = a["value"] - b["value"]
    low = d - float(np.hypot(a["value"] - a["low"], b["high"] - b["value"]))
    high = d + float(np.hypot(a["high"] - a["value"], b["value"] - b["low"]))
    return [low, high]


def largest_disparity(column_audit: dict[str, Any], metric: str, min_count: int) -> dict[str, Any] | None:
    """The judged group farthest from the reference on ``metric`` (by absolute difference), or None."""
    found = comparisons(column_audit, metric, min_count)
    return max(found, key=lambda c: abs(c["difference"])) if found else None


def fairness_audit(frame: pd.DataFrame, columns: Sequence[SensitiveColumn], y: np.ndarray, p: np.ndarray,
                   scores: np.ndarray, args: AuditArgs) -> dict[str, Any]:
    """The audit of one model on one table: ``frame`` holds the sensitive columns, row for row with the
    labels ``y``, calibrated probabilities ``p`` and 0-100 ``scores``."""
    if not columns:
        raise DataError("no sensitive columns to audit; declare them with --sensitive COL")
    unknown = sorted(set(dict(args.reference)) - {c.name for c in columns})
    if unknown:
        raise DataError(f"--reference names column(s) {unknown}, which are not audited; audited: {[c.name for c in columns]}")
    rng = np.random.default_rng(args.seed)
    selected = np.asarray(scores) >= args.threshold
    y = np.asarray(y, dtype=np.int64)
    return {
        "rows": len(y),
        "threshold": args.threshold,
        "confidence": args.confidence,
        "min_count": args.min_count,
        "resamples": args.resamples,
        "overall": group_figures(y, p, selected, args, rng),
        "columns": [audit_column(c, c.groups(frame), y, np.asarray(p), selected, args, rng) for c in columns],
    }
