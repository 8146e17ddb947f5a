"""The training report: rich tables for the terminal, a markdown model card and a PNG plot.

The plot needs matplotlib (``pip install 'matplotlib>=3.9'``); without it the report is tables only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from data.privacy.training import privacy_card_line
from policies.scoring.fairness_report import audit_tables, card_lines

if TYPE_CHECKING:
    from policies.scoring.train import TrainResult


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def headline_table(metrics: dict[str, Any], title: str = "Scoring model (test split)") -> Table:
    test = metrics["test"]
    table = Table(title=title)
    for name in ("figure", "value"):
        table.add_column(name, justify="right" if name == "value" else "left")
    rows = [
        ("rows / positives", f"{test['rows']:,} / {test['positives']:,}"),
        ("base rate", _f(test["base_rate"], 4)),
        ("ROC-AUC", _f(test["roc_auc"])),
        ("PR-AUC (average precision)", _f(test["pr_auc"], 4)),
        ("lift, top decile", _f(test["lift_top_decile"], 2)),
        ("lift, top two deciles", _f(test["lift_top_two_deciles"], 2)),
        ("log loss / Brier", f"{_f(test['log_loss'], 4)} / {_f(test['brier'], 5)}"),
        ("calibration error (ECE)", _f(test["ece"], 4)),
        ("train ROC-AUC (overfit check)", _f(metrics.get("train_roc_auc"))),
        ("calibration", str(metrics.get("calibration_method", "-"))),
        ("trees", str(metrics.get("trees", "-"))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def lift_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="Lift by decile (1 = highest scores)")
    for name in ("decile", "rows", "positives", "rate", "lift", "cum. lift", "captured"):
        table.add_column(name, justify="right")
    for r in metrics["test"]["lift"]:
        table.add_row(
            str(r["decile"]), f"{r['rows']:,.0f}", f"{r['positives']:,.0f}", _f(r["rate"], 4), _f(r["lift"], 2),
            _f(r["cumulative_lift"], 2), f"{100 * r['captured']:.1f}%",
        )
    return table


def calibration_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="Calibration (bins of predicted probability, equal counts)")
    for name in ("bin", "rows", "mean predicted", "observed"):
        table.add_column(name, justify="right")
    for r in metrics["test"]["calibration"]:
        table.add_row(str(r["bin"]), f"{r['rows']:,.0f}", _f(r["mean_predicted"], 4), _f(r["observed_rate"], 4))
    return table


def importance_table(metrics: dict[str, Any], top: int = 10) -> Table:
    table = Table(title="Global importance (mean |SHAP|, log-odds)")
    for name in ("feature", "mean |SHAP|", "gain share"):
        table.add_column(name, justify="left" if name == "feature" else "right")
    for r in metrics["importance"][:top]:
        table.add_row(str(r["feature"]), _f(r["mean_abs_shap"], 4), f"{100 * r['gain_share']:.1f}%")
    return table


def render_report(metrics: dict[str, Any], console: Console, warnings: list[str] | None = None) -> None:
    """Print the whole training report."""
    console.print(headline_table(metrics))
    console.print(lift_table(metrics))
    console.print(calibration_table(metrics))
    console.print(importance_table(metrics))
    tiers = metrics.get("tiers", {})
    rates = metrics.get("tier_rates", {})
    said = ", ".join(f"{t} {tiers.get(t, 0):,} (rate {_f(rates.get(t), 4)})" for t in ("High", "Medium", "Low"))
    console.print(f"tiers on the test split: {said}")
    for message in warnings or []:
        console.print(f"[yellow]leakage warning:[/yellow] {message}")
    for table in audit_tables(metrics["fairness"]) if "fairness" in metrics else []:
        console.print(table)


def model_card(result: TrainResult, version: str, data_hash: str) -> str:
    """The model card in markdown: data, split, figures, tiers, what it must not be used for."""
    m, meta = result.metrics, result.metadata
    test = m["test"]
    lines = [
        f"# Model card: {result.model.kind} score, version {version}",
        "",
        "## What it predicts",
        f"P({meta['target']['column']} = {meta['target']['positive_label']}) for one customer, calibrated "
        f"({m['calibration_method']}, fitted on a held-out calibration split), mapped to a 0-100 score "
        "(the percentile among the calibration split) and tiers "
        f"High (score >= {result.model.scale.high:g}), Medium (>= {result.model.scale.medium:g}), Low.",
        "",
        "## Data",
        f"- source: `{meta['data']['source']}`, sha256 `{data_hash}`",
        f"- rows: {meta['data']['rows']:,}; positive rate {meta['target']['positive_rate']:.4f}",
        f"- inputs ({len(meta['features']['inputs'])}): {', '.join(meta['features']['inputs'])}",
        f"- dropped: {', '.join(f'{k} ({v})' for k, v in meta['features']['dropped'].items()) or 'none'}",
        f"- leakage warnings: {'; '.join(meta['leakage_warnings']) or 'none'}",
        f"- privacy: {privacy_card_line(meta['data'].get('privacy'))}",
        f"- split: {meta['split']['method']}, train {meta['split']['train']:,} / calibration "
        f"{meta['split']['calibration']:,} / test {meta['split']['test']:,}",
        "",
        "## Figures on the test split",
        "| figure | value |",
        "|---|---|",
        f"| ROC-AUC | {test['roc_auc']:.4f} |",
        f"| PR-AUC | {test['pr_auc']:.4f} (base rate {test['base_rate']:.4f}) |",
        f"| lift, top decile | {test['lift_top_decile']:.2f} |",
        f"| lift, top two deciles | {test['lift_top_two_deciles']:.2f} |",
        f"| log loss / Brier | {test['log_loss']:.4f} / {test['brier']:.5f} |",
        f"| calibration error (ECE) | {test['ece']:.4f} |",
        f"| train ROC-AUC | {m['train_roc_auc']:.4f} |",
        "",
        "## Most important inputs (mean |SHAP|)",
        *[f"- {r['feature']}: {r['mean_abs_shap']:.4f}" for r in m["importance"][:8]],
        "",
        *(card_lines(m["fairness"]) if "fairness" in m else []),
        "## Limits",
        "- Reasons are TreeSHAP contributions to the raw model's log-odds, before calibration (which is monotone).",
        "- Valid for populations like the training data; watch `ame models drift` (PSI > 0.25 means retrain).",
        "- Associations, not causes: a reason is not an effect of acting on that input.",
    ]
    return "\n".join(lines) + "\n"


def report_plot_writer(metrics: dict[str, Any], title: str = "") -> Callable[[Path], None] | None:
    """A function that draws calibration, lift and gains into a PNG, or None without matplotlib."""
    if not has_matplotlib():
        return None

    def write(path: Path) -> None:
        import matplotlib  # lazy: matplotlib is heavy

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: matplotlib is heavy

        test = metrics["test"]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        cal = test["calibration"]
        top = max(max(r["mean_predicted"] for r in cal), max(r["observed_rate"] for r in cal)) * 1.05
        axes[0].plot([0, top], [0, top], color="grey", lw=1, ls="--")
        axes[0].plot([r["mean_predicted"] for r in cal], [r["observed_rate"] for r in cal], marker="o")
        axes[0].set(title="Calibration", xlabel="mean predicted probability", ylabel="observed rate")
        lift = test["lift"]
        axes[1].bar([r["decile"] for r in lift], [r["lift"] for r in lift])
        axes[1].axhline(1.0, color="grey", lw=1, ls="--")
        axes[1].set(title=f"Lift by decile (AUC {test['roc_auc']:.3f})", xlabel="decile (1 = top scores)", ylabel="lift")
        axes[2].plot([0, *[r["decile"] * 10 for r in lift]], [0, *[100 * r["captured"] for r in lift]], marker="o")
        axes[2].plot([0, 100], [0, 100], color="grey", lw=1, ls="--")
        axes[2].set(title="Cumulative gains", xlabel="% of customers (by score)", ylabel="% of positives captured")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)

    return write
