"""Fairness bounds a model must meet to be registered: ``--fairness-bound METRIC_diff=V`` or ``METRIC_ratio=V``.

``tpr_diff=0.1``: no judged group's TPR differs from the reference group's by more than 0.1 (either way).
``selection_ratio=0.8``: every judged group's selection rate is between 0.8 and 1/0.8 times the reference's
(the four-fifths rule). Metrics: ``selection``, ``tpr``, ``fpr`` (diff or ratio), ``calibration`` and ``ece``
(diff only). The point estimates are judged; the intervals are reported beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from policies.scoring.errors import ScoringError
from policies.scoring.fairness import RATE_METRICS, comparisons

METRIC_NAMES = {"selection": "selection_rate", "tpr": "tpr", "fpr": "fpr", "calibration": "calibration_gap", "ece": "ece"}
LABELS = {"selection_rate": "selection rate", "tpr": "TPR", "fpr": "FPR", "calibration_gap": "calibration gap", "ece": "ECE"}
BOUND = re.compile(r"^\s*([a-z]+)_(diff|ratio)\s*=\s*([0-9]*\.?[0-9]+)\s*$")


class FairnessBoundExceeded(ScoringError):
    """A trained model breaks a declared fairness bound; it is not registered. ``audit`` holds the figures."""

    def __init__(self, message: str, audit: dict[str, Any]) -> None:
        super().__init__(message)
        self.audit = audit


@dataclass(frozen=True, slots=True)
class FairnessBound:
    """One bound: ``metric`` (an audit metric name), ``kind`` diff or ratio, and the limit."""

    metric: str
    kind: str
    limit: float

    @property
    def text(self) -> str:
        short = next(k for k, v in METRIC_NAMES.items() if v == self.metric)
        return f"{short}_{self.kind}={self.limit:g}"

    def broken_by(self, comparison: dict[str, Any]) -> bool:
        if self.kind == "diff":
            return abs(comparison["difference"]) > self.limit
        ratio = comparison["ratio"]
        return ratio is not None and (ratio < self.limit or ratio > 1.0 / self.limit)


def parse_bound(text: str) -> FairnessBound:
    """``tpr_diff=0.1`` -> FairnessBound("tpr", "diff", 0.1), with an error that lists the valid forms."""
    match = BOUND.match(text)
    valid = ", ".join(f"{k}_diff" for k in METRIC_NAMES) + ", " + ", ".join(f"{k}_ratio" for k in ("selection", "tpr", "fpr"))
    if not match or match.group(1) not in METRIC_NAMES:
        raise ScoringError(f"--fairness-bound {text!r} is not METRIC_diff=V or METRIC_ratio=V; metrics: {valid}")
    metric, kind, limit = METRIC_NAMES[match.group(1)], match.group(2), float(match.group(3))
    if kind == "ratio" and metric not in RATE_METRICS:
        raise ScoringError(f"--fairness-bound {text!r}: a ratio bound applies to selection, tpr or fpr only; use {match.group(1)}_diff")
    if kind == "ratio" and not 0 < limit <= 1:
        raise ScoringError(f"--fairness-bound {text!r}: a ratio bound is between 0 and 1 (0.8 is the four-fifths rule)")
    return FairnessBound(metric, kind, limit)


def describe(bound: FairnessBound, c: dict[str, Any]) -> str:
    """One broken bound in words: the group, the metric, both figures with their intervals, the gap."""
    label = LABELS[bound.metric]
    v, r = c["value"], c["reference_value"]
    low, high = c["difference_ci"]
    gap = f"ratio {c['ratio']:.3f}" if bound.kind == "ratio" else f"difference {c['difference']:+.3f} (95% CI [{low:+.3f}, {high:+.3f}])"
    return (f"{bound.text}: {c['column']}={c['group']} has {label} {v['value']:.3f} (95% CI [{v['low']:.3f}, {v['high']:.3f}], "
            f"n={v['n']:,}) against {r['value']:.3f} ([{r['low']:.3f}, {r['high']:.3f}], n={r['n']:,}) for the reference "
            f"{c['column']}={c['reference']}: {gap}")


def violations(audit: dict[str, Any], bounds: tuple[FairnessBound, ...]) -> list[str]:
    """Every (bound, group) that breaks a bound, described; empty when the model meets them all."""
    out: list[str] = []
    for bound in bounds:
        for column in audit["columns"]:
            out.extend(describe(bound, c) for c in comparisons(column, bound.metric, audit["min_count"]) if bound.broken_by(c))
    return out


def check_bounds(audit: dict[str, Any], bounds: tuple[FairnessBound, ...], what: str) -> None:
    """Raise :class:`FairnessBoundExceeded` naming each group and metric over its bound."""
    broken = violations(audit, bounds)
    if broken:
        raise FairnessBoundExceeded(
            f"{what} breaks {len(broken)} fairness bound(s) and was not registered:\n  " + "\n  ".join(broken), audit
        )
