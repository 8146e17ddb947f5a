"""The fairness audit as rich tables (terminal), markdown (model card) and plain JSON (``--json``)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from policies.scoring.fairness import METRICS
from policies.scoring.fairness_bounds import LABELS


def _ci(figure: dict[str, Any]) -> str:
    """``0.212 [0.201, 0.224]``; ``-`` when there is no value."""
    value = figure["value"]
    if value is None or not math.isfinite(value):
        return "-"
    if not math.isfinite(figure["low"]):
        return f"{value:.3f}"
    return f"{value:.3f} [{figure['low']:.3f}, {figure['high']:.3f}]"


RATES = ("group", "rows", "positives", "selection rate", "TPR", "FPR")
CALIBRATION = ("group", "mean predicted", "observed rate", "calibration gap", "ECE")
HEADERS = (*RATES, *CALIBRATION[1:])


def _difference(d: dict[str, Any]) -> str:
    low, high = d["difference_ci"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{d['difference']:+.3f}"
    return f"{d['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"


def _rate_cells(g: dict[str, Any]) -> list[str]:
    return [f"{g['rows']:,}", f"{g['positives']:,}", _ci(g["selection_rate"]), _ci(g["tpr"]), _ci(g["fpr"])]


def _calibration_cells(g: dict[str, Any]) -> list[str]:
    return [f"{g['mean_predicted']:.3f}", _ci(g["observed_rate"]), _ci(g["calibration_gap"]), _ci(g["ece"])]


def _group_cells(g: dict[str, Any]) -> list[str]:
    return [*_rate_cells(g), *_calibration_cells(g)]


def groups_tables(audit: dict[str, Any], column: dict[str, Any]) -> list[Table]:
    """One sensitive column: its rates, then its calibration; a row per group (the reference marked) and all rows."""
    bins = f", bins {column['edges']}" if column["edges"] else ""
    titles = (f"{column['column']}{bins}: selected = score >= {audit['threshold']:g}, 95% CIs",
              f"{column['column']}: calibration, 95% CIs")
    tables = []
    for title, headers, cells in zip(titles, (RATES, CALIBRATION), (_rate_cells, _calibration_cells), strict=True):
        table = Table(title=title)
        for name in headers:
            table.add_column(name, justify="left" if name == "group" else "right")
        for g in column["groups"]:
            table.add_row(f"{g['group']} (reference)" if g["group"] == column["reference"] else g["group"], *cells(g))
        table.add_row("[dim]all rows[/]", *cells(audit["overall"]))
        tables.append(table)
    return tables


def disparity_table(audit: dict[str, Any]) -> Table:
    """The largest disparity per column and metric: the group, its value, the reference's, difference and ratio."""
    table = Table(title=f"Largest disparity per metric (judged: >= {audit['min_count']} rows behind both figures)")
    for name in ("column", "metric", "group", "value", "reference", "difference [95% CI]", "ratio"):
        table.add_column(name, justify="left" if name in ("column", "metric", "group") else "right")
    for column in audit["columns"]:
        for metric in METRICS:
            d = column["disparities"][metric]
            if d is None:
                table.add_row(column["column"], LABELS[metric], "-", "-", "-", "-", "-")
                continue
            ratio = "-" if d["ratio"] is None else f"{d['ratio']:.3f}"
            table.add_row(column["column"], LABELS[metric], d["group"], f"{d['value']['value']:.3f}",
                          f"{d['reference_value']['value']:.3f} ({d['reference']})", _difference(d), ratio)
    return table


def audit_tables(audit: dict[str, Any]) -> list[Table]:
    return [*(t for c in audit["columns"] for t in groups_tables(audit, c)), disparity_table(audit)]


def card_lines(audit: dict[str, Any]) -> list[str]:
    """The model card's fairness section (markdown)."""
    lines = ["## Fairness on the test split",
             f"Selected = score >= {audit['threshold']:g}. Figures with 95% intervals (Wilson for rates, "
             f"bootstrap for calibration gap and ECE); disparities only for groups with >= {audit['min_count']} rows "
             "in the denominator.", ""]
    for column in audit["columns"]:
        bins = f" (bins from edges {column['edges']})" if column["edges"] else ""
        lines += [f"### {column['column']}{bins}, reference {column['reference']}", "",
                  "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += [f"| {g['group']} | " + " | ".join(_group_cells(g)) + " |" for g in column["groups"]]
        lines += ["", "| metric | group | value | reference | difference [95% CI] | ratio |", "|---|---|---|---|---|---|"]
        for metric in METRICS:
            d = column["disparities"][metric]
            if d is not None:
                ratio = "-" if d["ratio"] is None else f"{d['ratio']:.3f}"
                lines.append(f"| {LABELS[metric]} | {d['group']} | {d['value']['value']:.3f} | "
                             f"{d['reference_value']['value']:.3f} | {_difference(d)} | {ratio} |")
        lines.append("")
    return lines


def plain(value: Any) -> Any:
    """The audit with NaN as None, so ``json.dumps`` writes standard JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
