"""The one place where a model's SQL differs by engine. Each macro renders for the gateway's engine."""

from __future__ import annotations

from sqlglot import exp, parse_one
from sqlmesh import macro
from sqlmesh.core.macros import MacroEvaluator


def _engine(evaluator: MacroEvaluator) -> str:
    """The target engine, from the gateway variable ``engine`` (set by data/warehouse/project.py)."""
    return str(evaluator.var("engine") or "duckdb")


@macro()
def json_string_array(evaluator: MacroEvaluator, column: exp.Expression, path: exp.Expression) -> exp.Expression:
    """A JSON array of strings at ``path`` as an array of strings (for UNNEST).

    DuckDB: ``CAST(json_extract(col, path) AS VARCHAR[])``; BigQuery: ``JSON_VALUE_ARRAY(col, path)``.
    """
    if _engine(evaluator) == "bigquery":
        return exp.Anonymous(this="JSON_VALUE_ARRAY", expressions=[column, path])
    return parse_one(f"CAST(json_extract({column.sql('duckdb')}, {path.sql('duckdb')}) AS VARCHAR[])", read="duckdb")


@macro()
def fingerprint(evaluator: MacroEvaluator, value: exp.Expression) -> exp.Expression:
    """A 64-bit hash of a string, to find duplicate candidates by grouping integers instead of strings.

    DuckDB: ``hash(value)``; BigQuery: ``FARM_FINGERPRINT(value)``. Two values can share a hash, so a caller
    only uses it to narrow the rows down, then compares the values themselves.
    """
    name = "FARM_FINGERPRINT" if _engine(evaluator) == "bigquery" else "HASH"
    return exp.Anonymous(this=name, expressions=[value])


@macro()
def as_json(evaluator: MacroEvaluator, column: exp.Expression) -> exp.Expression:
    """A JSON payload column as the engine keeps it. BigQuery: the JSON column itself (BigQuery has no cast to
    JSON). DuckDB: its text (``CAST(col AS VARCHAR)``): DuckDB's JSON type is VARCHAR underneath and every json_*
    function reads either, while SQLMesh's test fixtures cannot hold a null in a JSON column."""
    if _engine(evaluator) == "bigquery":
        return column
    return exp.cast(column, exp.DataType.build("VARCHAR"))
