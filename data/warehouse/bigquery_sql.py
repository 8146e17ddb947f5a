"""The models' SQL in the BigQuery dialect, rendered by SQLMesh and transpiled by SQLGlot.

In production SQLMesh's BigQuery gateway runs these itself (``ame warehouse build --warehouse
bigquery://...``). This module renders them without credentials, which is how the emulator tests run the
marts SQL in BigQuery's dialect, and how a reviewer can read what BigQuery will execute.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from data.warehouse.project import DEFAULT_START, PROJECT_DIR, sqlmesh_config


@dataclass(frozen=True, slots=True)
class RenderedModel:
    name: str  # table name, for example "staging_events_all"
    kind: str
    sql: str  # the SELECT, in the BigQuery dialect, reading `project.dataset.table`
    # for a model that reads its own table (an incremental merge): the empty table to create first, if missing
    create_if_missing: str | None = None


def render_for_bigquery(project: str, dataset: str, start: str, end: str, execution_time: str) -> list[RenderedModel]:
    """Every model's query for one interval in BigQuery SQL, in dependency order.

    :param project: the BigQuery project the tables live in.
    :param dataset: the dataset of raw_events and of the models' tables.
    :param start: first day of the interval (incremental models read only this range).
    :param end: last day of the interval.
    :param execution_time: the build's "now" (FULL models compute recency against it).
    """
    from sqlmesh import Context  # lazy: SQLMesh is heavy
    from sqlmesh.core.config import DuckDBConnectionConfig, GatewayConfig  # lazy: SQLMesh is heavy

    config = sqlmesh_config("duckdb:///:memory:", start=DEFAULT_START)
    config.gateways = {"duckdb": GatewayConfig(connection=DuckDBConnectionConfig(),
                                               variables={"dataset": dataset, "engine": "bigquery"})}
    context = Context(paths=str(PROJECT_DIR), config=config)
    rendered: list[RenderedModel] = []
    for fqn in context.dag.sorted:
        model = context.get_model(fqn)
        # an embedded model is no table: the models that read it carry its query as a subquery
        if model is None or model.kind.is_external or model.kind.is_embedded or not model.is_sql:
            continue
        query = context.render(model, start=start, end=end, execution_time=execution_time)
        for table in query.find_all(exp.Table):
            if table.db:
                table.set("catalog", exp.to_identifier(project, quoted=True))
                table.set("db", exp.to_identifier(dataset, quoted=True))
        name = model.name.split(".")[-1]
        create = None
        if model.depends_on_self:
            columns = ", ".join(f"`{column}` {dtype.sql(dialect='bigquery')}"
                                for column, dtype in model.columns_to_types.items())
            create = f"CREATE TABLE IF NOT EXISTS `{project}`.`{dataset}`.`{name}` ({columns})"
        rendered.append(RenderedModel(name, str(model.kind.name), query.sql(dialect="bigquery"), create))
    context.close()
    return rendered
