"""Commands of the scoring models, mounted by :mod:`policies.cli`:
``ame train scoring``, ``ame train clv``, ``ame models list|show|score|drift``."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import duckdb
import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from data.csvfile import read_csv_table
from data.log import LogError, open_log
from data.settings import get_settings
from data.warehouse.duckdb_backend import DuckDBWarehouse
from policies.scoring.clv import read_transactions
from policies.scoring.drift import drift_metrics, drift_report
from policies.scoring.drift_record import save_drift_check
from policies.scoring.errors import ScoringError
from policies.scoring.fairness_bounds import FairnessBoundExceeded
from policies.scoring.fairness_report import audit_tables
from policies.scoring.report import render_report
from policies.scoring.tabular import read_table

console = Console()
err = Console(stderr=True)
log = logging.getLogger(__name__)

SepOption = Annotated[str | None, typer.Option("--sep", help="The CSV's separator (default: sniffed from the file; '\\t' for tab).")]
RegistryOption = Annotated[Path | None, typer.Option("--registry", help="Registry folder (default: AME_MODELS_DIR, artifacts/models).")]
KindOption = Annotated[str, typer.Option("--kind", help="lead or churn.")]
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _fail(error: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {error}")
    return typer.Exit(2)


def _split_list(values: list[str] | None) -> tuple[str, ...]:
    """``--drop a,b --drop c`` -> (a, b, c)."""
    return tuple(v.strip() for value in values or [] for v in value.split(",") if v.strip())


def read_warehouse_table(name: str, url: str | None) -> pd.DataFrame:
    """A whole warehouse table as a DataFrame (``--table``). The name may be ``schema.table``."""
    if not TABLE_NAME.match(name):
        raise ScoringError(f"table name {name!r} is not a plain [schema.]table name")

    url = url or get_settings().warehouse_url()
    if not url.startswith("duckdb:///"):
        raise ScoringError(f"--table reads DuckDB warehouses only in this build (got {url!r}); export the table to CSV and pass --csv")


    warehouse = DuckDBWarehouse(url)
    try:
        qualified = name if "." in name else f"{warehouse.dataset}.{name}"
        result = warehouse.query(f"SELECT * FROM {qualified}")
    except duckdb.Error as error:  # a missing table or schema is duckdb's CatalogException
        raise ScoringError(f"cannot read table {name!r} from {url}: {error}") from None
    finally:
        warehouse.close()
    return pd.DataFrame(result.rows, columns=result.columns)


def _load_table(csv: Path | None, table: str | None, warehouse: str | None, sep: str | None = None) -> tuple[pd.DataFrame, str]:
    if (csv is None) == (table is None):
        raise ScoringError("pass exactly one of --csv FILE or --table NAME")
    if csv is not None:
        return read_table(csv, sep), str(csv)
    return read_warehouse_table(str(table), warehouse), f"table:{table}"


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScoringError(f"--as-of {text!r} is not an ISO 8601 time (for example 2026-01-31T00:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---- ame train scoring / clv -------------------------------------------------------------------------


def train_scoring(
    target: Annotated[str, typer.Option("--target", help="The binary outcome column (for example conversion).")],
    kind: KindOption = "lead",
    csv: Annotated[Path | None, typer.Option("--csv", help="Training table as CSV, one row per customer.")] = None,
    sep: SepOption = None,
    table: Annotated[str | None, typer.Option("--table", help="Training table in the warehouse: name or schema.name.")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="Customer id column (kept out of the features).")] = None,
    time_column: Annotated[str | None, typer.Option("--time", help="Time column: split by time (oldest train, newest test).")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop",
        help="Columns to drop (comma-separated or repeated): outcomes known only after the target.")] = None,
    positive: Annotated[str | None, typer.Option("--positive", help="The target value that counts as positive, when not obvious.")] = None,
    calibration: Annotated[str, typer.Option("--calibration", help="auto, isotonic or platt.")] = "auto",
    seed: Annotated[int, typer.Option("--seed")] = 7,
    max_rows: Annotated[int | None, typer.Option("--max-rows", help="Train on a random sample of this many rows (quick runs).")] = None,
    features: Annotated[str | None, typer.Option("--features",
        help="profile: derive the inputs from profile rows (projection or customer_360) with the one feature function.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of",
        help="With --features profile: when recency is measured (the label cut-off), ISO 8601.")] = None,
    warehouse: Annotated[str | None, typer.Option("--warehouse", help="Warehouse URL for --table (default: AME_WAREHOUSE).")] = None,
    sensitive: Annotated[list[str] | None, typer.Option("--sensitive",
        help="A sensitive column to audit per group (repeatable): COL, or COL=E1,E2,... to bin a number; not a feature.")] = None,
    sensitive_as_feature: Annotated[bool, typer.Option("--sensitive-as-feature",
        help="Use the --sensitive columns as features too (by default they are audited only).")] = False,
    fairness_bound: Annotated[list[str] | None, typer.Option("--fairness-bound",
        help="METRIC_diff=V or METRIC_ratio=V (repeatable), e.g. tpr_diff=0.1, selection_ratio=0.8: "
             "a model over a bound fails and is not registered.")] = None,
    registry: RegistryOption = None,
) -> None:
    """Train a calibrated XGBoost lead or churn score on any customer table and save it in the registry."""
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost
    from policies.scoring.train import TrainArgs, main  # lazy: loads xgboost

    if kind not in ("lead", "churn"):
        raise _fail(ScoringError(f"--kind must be lead or churn, not {kind!r}"))
    try:
        frame, source = _load_table(csv, table, warehouse, sep)
        if max_rows is not None and max_rows < len(frame):
            frame = frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)
        args = TrainArgs(
            target=target, kind=kind, id_column=id_column, time_column=time_column, drop=_split_list(drop), positive=positive,
            calibration=calibration, seed=seed, n_threads=get_settings().model_threads, source=source,
            feature_set=features, as_of=as_of, sensitive=tuple(sensitive or ()), sensitive_as_feature=sensitive_as_feature,
            fairness_bounds=_split_list(fairness_bound),
        )
        with console.status(f"training the {kind} score on {len(frame):,} rows"):
            result = main(frame, args, ModelRegistry(registry))
    except FairnessBoundExceeded as error:
        for table_ in audit_tables(error.audit):
            console.print(table_)
        raise _fail(error) from None
    except ScoringError as error:
        raise _fail(error) from None
    render_report(result.metrics, console, result.metadata["leakage_warnings"])
    console.print(f"saved [bold]{kind}[/] model [bold]{result.model.version}[/] to {result.path}")


def train_clv(
    transactions: Annotated[Path, typer.Option("--transactions",
                                               help="Transactions file: CSV with customer, date, amount columns, or a CDNOW file.")],
    calibration_end: Annotated[str, typer.Option("--calibration-end", help="Last day of the calibration period (YYYY-MM-DD).")],
    holdout_end: Annotated[str | None, typer.Option("--holdout-end",
                                                    help="Last day of a holdout period to check the forecast against.")] = None,
    horizon_weeks: Annotated[float, typer.Option("--horizon-weeks", help="CLV horizon in weeks.")] = 52.0,
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="Annual discount rate (0.10 = 10%).")] = 0.10,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv or cdnow.")] = "auto",
    sep: SepOption = None,
    customer_col: Annotated[str, typer.Option("--customer-col")] = "customer_id",
    date_col: Annotated[str, typer.Option("--date-col")] = "date",
    amount_col: Annotated[str, typer.Option("--amount-col")] = "amount",
    registry: RegistryOption = None,
) -> None:
    """Fit BG/NBD + Gamma-Gamma lifetime value by maximum likelihood and save it in the registry."""
    from policies.scoring.clv_train import CLVArgs, main  # lazy: loads xgboost
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost

    try:
        frame = read_transactions(transactions, fmt, customer_col, date_col, amount_col, sep)
        args = CLVArgs(calibration_end, holdout_end, horizon_weeks, discount_rate, source=str(transactions))
        result = main(frame, args, ModelRegistry(registry))
    except (ScoringError, ValueError) as error:
        raise _fail(error) from None
    m = result.metrics
    table_ = Table(title=f"Lifetime value: {m['customers']:,} customers, {m['repeat_buyers']:,} repeat buyers")
    table_.add_column("model")
    table_.add_column("parameters")
    table_.add_column("log-likelihood", justify="right")
    b, g = m["bgnbd"], m["gamma_gamma"]
    table_.add_row("BG/NBD", f"r={b['r']:.4f} alpha={b['alpha']:.4f} a={b['a']:.4f} b={b['b']:.4f}", f"{b['log_likelihood']:.2f}")
    table_.add_row("Gamma-Gamma", f"p={g['p']:.4f} q={g['q']:.4f} gamma={g['gamma']:.4f}", f"{g['log_likelihood']:.2f}")
    console.print(table_)
    if "holdout" in m:
        h = m["holdout"]
        console.print(
            f"holdout {h['weeks']:g} weeks: forecast [bold]{h['forecast_repeat_purchases']:,.1f}[/] repeat purchases, "
            f"actual [bold]{h['actual_repeat_purchases']:,.0f}[/] ({h['error_pct']:+.1f}%), per-customer MAE {h['customer_mae']:.3f}"
        )
    console.print(f"CLV over {horizon_weeks:g} weeks at {100 * discount_rate:g}%/year: "
                  f"mean {m['clv']['mean']:,.2f}, total {m['clv']['total']:,.0f}")
    console.print(f"saved clv model [bold]{result.path.name if result.path else '?'}[/] to {result.path}")


# ---- ame models … ------------------------------------------------------------------------------------


def models_list(registry: RegistryOption = None) -> None:
    """List the registry's entries, newest last."""
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost

    reg = ModelRegistry(registry)
    entries = reg.entries()
    if not entries:
        console.print(f"no models in {reg.root}; train one with `ame train scoring` or `ame train clv`")
        return
    table = Table(title=f"Models in {reg.root}")
    for name in ("kind", "version", "created", "rows", "headline"):
        table.add_column(name)
    for e in entries:
        table.add_row(e.kind, e.version, e.created_at[:19], f"{e.rows:,}" if e.rows else "-", e.headline)
    console.print(table)


def models_show(
    kind: Annotated[str, typer.Argument(help="lead, churn or clv.")],
    version: Annotated[str | None, typer.Option("--version", help="Version or unique prefix (default: latest).")] = None,
    registry: RegistryOption = None,
) -> None:
    """Show one entry: its model card, metadata and files."""
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost

    try:
        reg = ModelRegistry(registry)
        folder = reg.path(kind, version)
    except ScoringError as error:
        raise _fail(error) from None
    meta = json.loads((folder / "metadata.json").read_text())
    console.print(Markdown((folder / "model_card.md").read_text()))
    console.print(f"folder: {folder}")
    console.print(f"code: {meta.get('code')}")
    console.print(f"files: {', '.join(meta.get('files', []))}")


def models_score(
    kind: Annotated[str, typer.Option("--kind", help="lead, churn or clv.")] = "lead",
    csv: Annotated[Path | None, typer.Option("--csv", help="Customers to score, as CSV.")] = None,
    sep: SepOption = None,
    table: Annotated[str | None, typer.Option("--table", help="Customers to score, from the warehouse.")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="Customer id column (default: the model's, else row numbers).")] = None,
    reasons: Annotated[int, typer.Option("--reasons", help="Top reasons per score (0: none).")] = 3,
    version: Annotated[str | None, typer.Option("--version")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the scores to this CSV.")] = None,
    events: Annotated[bool, typer.Option("--events/--no-events", help="Append score_updated events to the log.")] = True,
    log_url: Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of",
        help="Scoring time, ISO 8601 (default: now); a re-run with the same time and model appends nothing.")] = None,
    warehouse: Annotated[str | None, typer.Option("--warehouse")] = None,
    registry: RegistryOption = None,
) -> None:
    """Batch-score a table with a registered model: score_updated events to the log, and optionally a CSV.
    With ``--kind clv``, the customers of the CLV entry are sent (score = CLV, probability = P(alive))."""
    from policies.scoring.batch import clv_score_table, score_table, write_scores  # lazy: loads xgboost
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost

    try:
        when = _parse_time(as_of)
        reg = ModelRegistry(registry)
        if kind == "clv":
            folder = reg.path("clv", version)
            scores = clv_score_table(read_csv_table(folder / "customers.csv", dtype={"customer_id": str}), folder.name, when)
            model_version = folder.name
        else:
            frame, _ = _load_table(csv, table, warehouse, sep)
            model = reg.load_scoring(kind, version)
            scores = score_table(model, frame, id_column, top_k=reasons, as_of=when)
            model_version = model.version
    except ScoringError as error:
        raise _fail(error) from None
    if kind == "clv":
        console.print(f"{len(scores):,} lifetime values from clv {model_version}: mean {scores['score'].mean():,.2f}")
    else:
        counts = scores["tier"].value_counts()
        tiers = ", ".join(f"{t} {counts.get(t, 0):,}" for t in ("High", "Medium", "Low"))
        console.print(f"scored {len(scores):,} customers with {kind} {model_version}: {tiers}")
    if out is not None:
        flat = scores.copy()
        if "reasons" in flat:
            flat["reasons"] = [json.dumps([[r.feature, round(r.contribution, 5), r.value] for r in rs]) for rs in flat["reasons"]]
        flat.to_csv(out, index=False)
        console.print(f"wrote {out}")
    if events:
        try:
            event_log = open_log(log_url)
        except (LogError, ValueError) as error:
            raise _fail(error) from None
        try:
            result = write_scores(event_log, scores)
        finally:
            event_log.close()
        console.print(f"appended {result.appended:,} score_updated events ({result.duplicates:,} already in the log)")


def models_drift(
    kind: KindOption = "lead",
    csv: Annotated[Path | None, typer.Option("--csv", help="Recent customers, as CSV.")] = None,
    sep: SepOption = None,
    table: Annotated[str | None, typer.Option("--table", help="Recent customers, from the warehouse.")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the PSI gauges as JSON (for the metrics exporter).")] = None,
    warehouse: Annotated[str | None, typer.Option("--warehouse")] = None,
    registry: RegistryOption = None,
) -> None:
    """Population stability index of the scores and the top features: recent table against training."""
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost

    try:
        frame, source = _load_table(csv, table, warehouse, sep)
        reg = ModelRegistry(registry)
        model = reg.load_scoring(kind, version)
        reference = reg.read_json(kind, model.version, "drift_reference.json")
        _, scores, _ = model.score_matrix(model.matrix(frame))
        rows = drift_report(reference, frame, np.asarray(scores))
    except ScoringError as error:
        raise _fail(error) from None
    out = Table(title=f"Drift of {kind} {model.version}: {source} against the training test split")
    for name in ("what", "PSI", "status", "rows"):
        out.add_column(name, justify="left" if name in ("what", "status") else "right")
    colour = {"stable": "green", "moderate": "yellow", "major": "red"}
    for r in rows:
        out.add_row(r.name, f"{r.psi:.4f}", f"[{colour[r.status]}]{r.status}[/]", f"{r.rows:,}")
    console.print(out)
    console.print("PSI < 0.1 stable, 0.1-0.25 moderate, > 0.25 major (retrain)")
    save_drift_check(reg.root, kind, model.version, rows)  # the API's /metrics exports it as ame_model_psi
    if json_out is not None:
        json_out.write_text(json.dumps(drift_metrics(kind, model.version, rows), indent=2))
        console.print(f"wrote {json_out}")
