"""Fit the lifetime-value models on a transaction file and save them: ``ame train clv``.

transactions -> RFM summary at the calibration end -> BG/NBD + Gamma-Gamma (maximum likelihood) ->
CLV per customer over a horizon with a discount rate -> holdout check (forecast vs actual repeat
purchases after the calibration end) -> registry entry ``clv/<version>/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.privacy.training import exclude_erased, privacy_card_line
from policies.scoring.clv import BGNBD, GammaGamma, customer_lifetime_value, fit_bgnbd, fit_gamma_gamma, rfm_summary, tracking_curve
from policies.scoring.errors import DataError
from policies.scoring.registry import ModelRegistry
from policies.scoring.report import has_matplotlib


@dataclass(frozen=True, slots=True)
class CLVArgs:
    calibration_end: str
    holdout_end: str | None = None
    horizon_weeks: float = 52.0
    annual_discount_rate: float = 0.10
    source: str = "dataframe"


@dataclass
class CLVResult:
    bgnbd: BGNBD
    spend: GammaGamma
    customers: pd.DataFrame
    metrics: dict[str, Any]
    weekly: pd.DataFrame = field(default_factory=pd.DataFrame)
    path: Path | None = None


def weekly_tracking(transactions: pd.DataFrame, summary: pd.DataFrame, bgnbd: BGNBD, end: pd.Timestamp) -> pd.DataFrame:
    """Cumulative repeat purchases by week since the cohort's first day: actual against the BG/NBD forecast."""
    start = summary["first_purchase"].min()
    n_weeks = int(np.ceil(((end - start).days + 1) / 7))
    weeks = np.arange(1, n_weeks + 1, dtype=np.float64)
    days = transactions.assign(day=transactions["date"].dt.normalize()).drop_duplicates(["customer_id", "day"])
    days = days[days["customer_id"].isin(summary.index)]
    first = days["customer_id"].map(summary["first_purchase"])
    repeat_day = (days.loc[days["day"] > first, "day"] - start).dt.days.to_numpy()
    actual = np.searchsorted(np.sort(repeat_day), weeks * 7, side="left")
    first_weeks = (summary["first_purchase"] - start).dt.days.to_numpy() / 7.0
    return pd.DataFrame({"week": weeks.astype(int), "actual": actual, "forecast": tracking_curve(bgnbd, first_weeks, weeks)})


def fit_clv(transactions: pd.DataFrame, args: CLVArgs) -> CLVResult:
    """Fit both models at the calibration end and, with a holdout end, check the forecast against it."""
    summary = rfm_summary(transactions, args.calibration_end, args.holdout_end)
    x, t_x, T, zbar = (summary[c].to_numpy() for c in ("x", "t_x", "T", "zbar"))
    bgnbd = fit_bgnbd(x, t_x, T)
    spend = fit_gamma_gamma(x, zbar)
    customers = summary.copy()
    customers["p_alive"] = bgnbd.p_alive(x, t_x, T)
    customers["expected_purchases"] = bgnbd.conditional_expected_transactions(args.horizon_weeks, x, t_x, T)
    customers["expected_spend"] = np.where(x > 0, spend.expected_spend(x, zbar), spend.population_mean)
    customers["clv"] = customer_lifetime_value(
        bgnbd, spend, x, t_x, T, np.where(x > 0, zbar, 0.0), horizon=args.horizon_weeks, annual_discount_rate=args.annual_discount_rate
    )
    metrics: dict[str, Any] = {
        "customers": len(summary),
        "repeat_buyers": int((x > 0).sum()),
        "calibration_repeat_purchases": float(x.sum()),
        "bgnbd": {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b, "log_likelihood": bgnbd.log_likelihood},
        "gamma_gamma": {"p": spend.p, "q": spend.q, "gamma": spend.gamma, "log_likelihood": spend.log_likelihood,
                        "population_mean": spend.population_mean},
        "clv": {"horizon_weeks": args.horizon_weeks, "annual_discount_rate": args.annual_discount_rate,
                "total": float(customers["clv"].sum()), "mean": float(customers["clv"].mean())},
    }
    weekly = pd.DataFrame()
    if args.holdout_end is not None:
        length = float(summary["holdout_length"].iloc[0])
        forecast = bgnbd.conditional_expected_transactions(length, x, t_x, T)
        customers["holdout_forecast"] = forecast
        actual = summary["x_holdout"].to_numpy()
        metrics["holdout"] = {
            "weeks": length,
            "forecast_repeat_purchases": float(forecast.sum()),
            "actual_repeat_purchases": float(actual.sum()),
            "error_pct": float(100 * (forecast.sum() - actual.sum()) / max(actual.sum(), 1)),
            "customer_mae": float(np.mean(np.abs(forecast - actual))),
            "correlation": float(np.corrcoef(forecast, actual)[0, 1]) if actual.std() > 0 else float("nan"),
        }
        weekly = weekly_tracking(transactions, summary, bgnbd, pd.Timestamp(args.holdout_end))
    return CLVResult(bgnbd, spend, customers, metrics, weekly)


def holdout_plot_writer(result: CLVResult, calibration_weeks: float | None) -> Callable[[Path], None] | None:
    """Cumulative repeat purchases by week, actual vs BG/NBD, the calibration end marked (matplotlib)."""
    if result.weekly.empty or not has_matplotlib():
        return None

    def write(path: Path) -> None:
        import matplotlib  # lazy: matplotlib is heavy

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: matplotlib is heavy

        w = result.weekly
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.plot(w["week"], w["actual"], label="actual", color="black")
        ax.plot(w["week"], w["forecast"], label="BG/NBD", color="tab:blue", ls="--")
        if calibration_weeks:
            ax.axvline(calibration_weeks, color="grey", lw=1, ls=":")
        h = result.metrics.get("holdout", {})
        ax.set(
            xlabel="week", ylabel="cumulative repeat purchases",
            title=f"Holdout: forecast {h.get('forecast_repeat_purchases', 0):,.0f} vs actual {h.get('actual_repeat_purchases', 0):,.0f}",
        )
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)

    return write


def clv_card(result: CLVResult, version: str, data_hash: str, args: CLVArgs, privacy: dict[str, Any] | None = None) -> str:
    m = result.metrics
    b, g = m["bgnbd"], m["gamma_gamma"]
    lines = [
        f"# Model card: customer lifetime value, version {version}",
        "",
        f"BG/NBD (purchase frequency) and Gamma-Gamma (spend), maximum likelihood, calibration end {args.calibration_end}.",
        f"Data: `{args.source}`, sha256 `{data_hash}`; {m['customers']:,} customers, {m['repeat_buyers']:,} repeat buyers.",
        f"Privacy: {privacy_card_line(privacy)}.",
        "",
        "| model | parameters | log-likelihood |",
        "|---|---|---|",
        f"| BG/NBD | r={b['r']:.4f}, alpha={b['alpha']:.4f}, a={b['a']:.4f}, b={b['b']:.4f} | {b['log_likelihood']:.2f} |",
        f"| Gamma-Gamma | p={g['p']:.4f}, q={g['q']:.4f}, gamma={g['gamma']:.4f} | {g['log_likelihood']:.2f} |",
        "",
        f"CLV over {args.horizon_weeks:g} weeks at {100 * args.annual_discount_rate:g}% a year: "
        f"total {m['clv']['total']:,.0f}, mean {m['clv']['mean']:,.2f} (revenue, not margin).",
    ]
    if "holdout" in m:
        h = m["holdout"]
        lines += [
            "",
            f"Holdout ({h['weeks']:g} weeks to {args.holdout_end}): forecast {h['forecast_repeat_purchases']:,.1f} repeat purchases, "
            f"actual {h['actual_repeat_purchases']:,.0f} ({h['error_pct']:+.1f}%); per-customer MAE {h['customer_mae']:.3f}.",
        ]
    lines += ["", "Limits: non-contractual, continuous-time purchasing; spend independent of frequency (Gamma-Gamma's assumption)."]
    return "\n".join(lines) + "\n"


def main(transactions: pd.DataFrame, args: CLVArgs, registry: ModelRegistry | None = None) -> CLVResult:
    """Fit, then save ``clv/<version>/`` with params, metrics, per-customer predictions, card and plot."""
    if transactions.empty:
        raise DataError("the transactions file has no rows")

    registry = registry or ModelRegistry()
    transactions, privacy = exclude_erased(transactions, "customer_id")
    if transactions.empty:
        raise DataError("every customer in the transactions file has been erased")
    result = fit_clv(transactions, args)
    digest = hashlib.sha256(pd.util.hash_pandas_object(transactions, index=False).to_numpy().tobytes()).hexdigest()
    version = registry.new_version("clv", digest)
    cal_weeks = None
    if not result.weekly.empty:
        start = result.customers["first_purchase"].min()
        cal_weeks = (pd.Timestamp(args.calibration_end) - start).days / 7 + 1 / 7
    files: dict[str, Any] = {
        "params.json": json.dumps({"bgnbd": asdict(result.bgnbd), "gamma_gamma": asdict(result.spend)}, indent=2),
        "metrics.json": json.dumps(result.metrics, indent=2),
        "customers.csv": result.customers.to_csv(),
        "model_card.md": clv_card(result, version, digest, args, privacy),
    }
    if not result.weekly.empty:
        files["tracking.csv"] = result.weekly.to_csv(index=False)
    plot = holdout_plot_writer(result, cal_weeks)
    if plot is not None:
        files["holdout.png"] = plot
    metadata = {
        "headline": f"BG/NBD LL {result.bgnbd.log_likelihood:.1f}"
        + (f", holdout {result.metrics['holdout']['error_pct']:+.1f}%" if "holdout" in result.metrics else ""),
        "data": {"source": args.source, "rows": len(transactions), "columns": list(transactions.columns), "privacy": privacy},
        "args": asdict(args),
    }
    result.path = registry.save("clv", version, digest, files, metadata)
    return result


def load_clv(registry: ModelRegistry, version: str | None = None) -> tuple[BGNBD, GammaGamma]:
    """The fitted parameters of a saved entry."""
    params = registry.read_json("clv", version, "params.json")
    return BGNBD(**params["bgnbd"]), GammaGamma(**params["gamma_gamma"])
