"""``ame models audit``: per-group figures of a registered lead or churn model on a table, with 95% CIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from policies.scoring.cli import KindOption, RegistryOption, SepOption, _fail, _load_table, console
from policies.scoring.errors import DataError, ScoringError
from policies.scoring.fairness import AuditArgs, SensitiveColumn, fairness_audit, parse_sensitive, resolve_sensitive
from policies.scoring.fairness_report import audit_tables, plain
from policies.scoring.tabular import target_vector


def audit_columns(declared: list[dict[str, Any]], given: list[str] | None, frame: pd.DataFrame) -> list[SensitiveColumn]:
    """``--sensitive`` when given (bins decided on this table), else the columns the model was trained to audit."""
    if given:
        return [resolve_sensitive(parse_sensitive(text), frame) for text in given]
    if not declared:
        raise DataError("the model declares no sensitive columns; name them with --sensitive COL (or retrain with --sensitive)")
    return [SensitiveColumn.model_validate(c) for c in declared]


def parse_reference(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``--reference COL=GROUP`` (repeatable) -> ((COL, GROUP), ...)."""
    out = []
    for text in values or []:
        column, sep, group = text.partition("=")
        if not sep or not column.strip():
            raise DataError(f"--reference {text!r} is not COL=GROUP (for example zip_code=Urban)")
        out.append((column.strip(), group.strip()))
    return tuple(out)


def models_audit(
    kind: KindOption = "lead",
    csv: Annotated[Path | None, typer.Option("--csv", help="Customers with their outcome (the model's target column), as CSV.")] = None,
    sep: SepOption = None,
    table: Annotated[str | None, typer.Option("--table", help="Customers with their outcome, from the warehouse.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Version or unique prefix (default: latest).")] = None,
    sensitive: Annotated[list[str] | None, typer.Option("--sensitive",
        help="Audit these columns (repeatable; COL or COL=E1,E2,...) instead of the ones the model declares.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold",
        help="Score (0-100) from which a customer counts as selected (default: the model's High tier).")] = None,
    reference: Annotated[list[str] | None, typer.Option("--reference",
        help="COL=GROUP: the group others are compared with (default: the largest group).")] = None,
    min_count: Annotated[int, typer.Option("--min-count", help="Judge a group's figure only with this many rows behind it.")] = 30,
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples for calibration gap and ECE.")] = 1_000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the audit as JSON instead of tables.")] = False,
    warehouse: Annotated[str | None, typer.Option("--warehouse")] = None,
    registry: RegistryOption = None,
) -> None:
    """Fairness audit: selection rate, TPR, FPR and calibration per group of each sensitive column, with
    95% CIs, and the largest disparity per metric against the reference group."""
    from policies.scoring.registry import ModelRegistry  # lazy: loads xgboost

    try:
        if min_count < 1 or resamples < 10:
            raise DataError("--min-count must be at least 1 and --resamples at least 10")
        frame, source = _load_table(csv, table, warehouse, sep)
        reg = ModelRegistry(registry)
        model = reg.load_scoring(kind, version)
        columns = audit_columns(reg.metadata(kind, model.version).get("sensitive", []), sensitive, frame)
        frame = frame[frame[model.spec.target].notna()].reset_index(drop=True) if model.spec.target in frame else frame
        y = target_vector(model.spec, frame)
        p, s, _ = model.score_matrix(model.matrix(frame))
        args = AuditArgs(threshold=model.scale.high if threshold is None else threshold, min_count=min_count,
                         resamples=resamples, seed=seed, reference=parse_reference(reference))
        with console.status(f"auditing {kind} {model.version} on {len(frame):,} rows"):
            audit = fairness_audit(frame, columns, y, p, s, args)
    except ScoringError as error:
        raise _fail(error) from None
    audit = {"model": {"kind": kind, "version": model.version}, "source": source, **audit}
    if as_json:
        typer.echo(json.dumps(plain(audit), indent=2))
        return
    console.print(f"fairness audit of {kind} {model.version} on {source}: {len(frame):,} rows, "
                  f"positive = {model.spec.target} {model.spec.positive_label}")
    for table_ in audit_tables(audit):
        console.print(table_)
