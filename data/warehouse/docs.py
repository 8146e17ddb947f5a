"""Lineage and column documentation of the warehouse, rendered from the SQLMesh models themselves."""

from __future__ import annotations

from data.warehouse.base import RAW_COLUMNS


def _short(fqn: str) -> str:
    return fqn.split(".")[-1].strip('"')


def warehouse_docs_markdown(context) -> str:  # context: sqlmesh.Context
    """Markdown: the lineage graph (raw → staging → intermediate → marts) and every model's columns with their meaning."""
    models = {_short(name): model for name, model in context.models.items()}
    order = sorted(models, key=lambda n: (not n.startswith("staging"), n))
    lines = ["# Warehouse models", "", "## Lineage", "", "```"]
    for name in order:
        parents = sorted(_short(p) for p in models[name].depends_on) or ["(none)"]
        lines.append(f"{', '.join(parents)} -> {name}")
    lines += ["```", "", "## raw_events", "", "Written by the loader (tracked by log position). Not built by SQLMesh.", "",
              "| column | DuckDB | BigQuery | meaning |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.duckdb} | {c.bigquery} | {c.doc} |" for c in RAW_COLUMNS]
    for name in order:
        model = models[name]
        kind = str(model.kind.name.value if hasattr(model.kind.name, "value") else model.kind.name)
        lines += ["", f"## {name}", "", f"*{kind}*" + (f", partitioned by {', '.join(e.sql() for e in model.partitioned_by)}"
                                                       if model.partitioned_by else "")
                  + (f", clustered by {', '.join(e.sql() for e in model.clustered_by)}" if model.clustered_by else ""), ""]
        if model.description:
            lines += [" ".join(model.description.split()), ""]
        audits = ", ".join(a[0] for a in model.audits)
        if audits:
            lines += [f"Audits: {audits}", ""]
        lines += ["| column | type | meaning |", "|---|---|---|"]
        types = model.columns_to_types or {}
        for column, dtype in types.items():
            lines.append(f"| {column} | {dtype.sql('duckdb')} | {model.column_descriptions.get(column, '')} |")
    return "\n".join(lines) + "\n"
