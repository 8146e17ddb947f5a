"""The warehouse end to end on the embedded backends: SQLite log → loader → DuckDB → SQLMesh models."""

from __future__ import annotations

import io
from datetime import datetime

import duckdb
import pytest
from typer.testing import CliRunner

from data.identity import identity_links, resolve_identities
from data.log import open_log
from data.warehouse import BuildFailed, open_warehouse
from data.warehouse.build import WarehouseProject
from data.warehouse.cli import warehouse_app
from data.warehouse.loader import load_events
from tests.integration.warehouse.warehouse_events import day_events

# SQLMesh's models still use pydantic's json_encoders
pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")


def _load(paths: dict[str, str]) -> int:
    log, wh = open_log(paths["log"]), open_warehouse(paths["warehouse"])
    try:
        return load_events(log, wh, batch_size=500).rows
    finally:
        wh.close()
        log.close()


def _append(paths: dict[str, str], events: list[dict]) -> None:
    log = open_log(paths["log"])
    try:
        log.append(events)
    finally:
        log.close()


def _scalar(paths: dict[str, str], sql: str):
    wh = open_warehouse(paths["warehouse"])
    try:
        return wh.query(sql).rows[0][0]
    finally:
        wh.close()


def test_loading_twice_adds_nothing_and_reconciles_with_the_log(paths):
    _append(paths, day_events("2026-03-01", 1200, "d1"))
    assert _load(paths) == 1200
    assert _load(paths) == 0
    _append(paths, day_events("2026-03-02", 300, "d2"))
    assert _load(paths) == 300
    assert _scalar(paths, "SELECT COUNT(*) FROM ame.raw_events") == 1500
    assert _scalar(paths, "SELECT COUNT(DISTINCT event_id) FROM ame.raw_events") == 1500
    assert _scalar(paths, "SELECT SUM(rows) FROM ame.raw_loads") == 1500
    assert _scalar(paths, "SELECT position FROM ame.raw_load_state") == open_log(paths["log"]).head()
    # hot properties are typed columns
    assert _scalar(paths, "SELECT COUNT(*) FROM ame.raw_events WHERE event_type = 'purchase' AND amount > 0") == 300


def test_second_build_after_one_new_day_recomputes_only_that_partition(paths):
    _append(paths, day_events("2026-03-01", 500, "d1") + day_events("2026-03-02", 500, "d2"))
    _load(paths)
    project = WarehouseProject(paths["warehouse"])
    first = project.build()
    assert first.models["staging_events_all"].rows == 1000
    _append(paths, day_events("2026-03-03", 250, "d3"))
    _load(paths)
    second = project.build()
    staging = second.models["staging_events_all"]
    assert staging.intervals == [("2026-03-03", "2026-03-03")]
    assert staging.rows == 250  # the rows processed: the new day's events, nothing older
    assert second.models["intermediate_web_sessions"].intervals == [("2026-03-03", "2026-03-03")]
    assert second.models["marts_marketing_campaign_performance"].intervals == [("2026-03-03", "2026-03-03")]
    # older partitions untouched, the new one complete
    assert project.context.fetchdf(
        "SELECT event_date, COUNT(*) AS n FROM ame.staging_events_all GROUP BY 1 ORDER BY 1"
    )["n"].tolist() == [500, 500, 250]
    third = project.build()
    assert "staging_events_all" not in third.models  # nothing new: nothing recomputed
    project.close()


def test_late_events_restate_the_day_they_belong_to(paths):
    _append(paths, day_events("2026-03-01", 200, "d1") + day_events("2026-03-02", 200, "d2"))
    _load(paths)
    project = WarehouseProject(paths["warehouse"])
    project.build()
    _append(paths, day_events("2026-03-01", 50, "late"))  # arrives after 2026-03-01 was built
    _load(paths)
    report = project.build()
    assert report.restated
    counts = project.context.fetchdf("SELECT event_date, COUNT(*) AS n FROM ame.staging_events_all GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [250, 200]
    # the per-id activity is rebuilt with the restated day, not added to twice
    assert _customer_360_events(project) == 450
    project.close()


def _customer_360_events(project: WarehouseProject) -> int:
    return int(project.context.fetchdf("SELECT SUM(events_total) AS n FROM ame.marts_marketing_customer_360")["n"][0])


def test_customer_360_built_day_by_day_equals_one_build_of_every_day(paths, tmp_path):
    """customer_360 reads the per-id activity that each build merges with the new day's: a build per day gives the
    same table as one build over all days."""
    days = [day_events("2026-03-01", 300, "d1", customers=30), day_events("2026-03-02", 200, "d2", customers=40),
            day_events("2026-03-03", 250, "d3", customers=25)]
    project = WarehouseProject(paths["warehouse"])
    for events in days:
        _append(paths, events)
        _load(paths)
        project.build()
    # another file name in the same AME_HOME: SQLMesh's cached models name the DuckDB catalog after the file, so
    # each warehouse has its own cache (a shared one failed with 'Catalog "once" does not exist')
    once = {"log": f"sqlite:///{tmp_path / 'once-events.db'}", "warehouse": f"duckdb:///{tmp_path / 'once.duckdb'}"}
    _append(once, [e for events in days for e in events])
    _load(once)
    single = WarehouseProject(once["warehouse"])
    single.build()
    sql = "SELECT * FROM ame.marts_marketing_customer_360 ORDER BY customer_id"
    daily, whole = project.context.fetchdf(sql), single.context.fetchdf(sql)
    assert len(daily) == len(whole) > 0
    for column in whole.columns:
        if whole[column].dtype.kind == "f":
            assert (daily[column] - whole[column]).abs().max() < 1e-9, column
        else:
            assert daily[column].equals(whole[column]), column
    assert _customer_360_events(project) == 750
    project.close()
    single.close()


def test_an_injected_duplicate_key_fails_the_audit(paths):
    _append(paths, day_events("2026-03-01", 300, "d1"))
    _load(paths)
    con = duckdb.connect(paths["warehouse"].removeprefix("duckdb:///"))
    con.execute("INSERT INTO ame.raw_events SELECT * FROM ame.raw_events WHERE event_id = 'd1-7'")
    con.close()
    project = WarehouseProject(paths["warehouse"])
    with pytest.raises(BuildFailed, match="raw_unique_event_id"):
        project.build()
    project.close()


def test_an_injected_duplicate_key_in_a_model_fails_its_audit(paths):
    """The model audits bite too: a duplicate customer in the identity map breaks customer_360's uniqueness."""
    _append(paths, day_events("2026-03-01", 300, "d1"))
    _load(paths)
    project = WarehouseProject(paths["warehouse"])
    project.build()
    assert project.context.audit(start="2026-03-01", end="2026-03-01", models=iter(["ame.marts_marketing_customer_360"]))
    identity = project.context.fetchdf(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
        "WHERE table_name LIKE 'ame__intermediate_identity__%'"
    )["t"].tolist()[0]
    project.context.engine_adapter.execute(
        f"INSERT INTO {identity} SELECT customer_id, 'someone-else', 1, TRUE, built_through FROM {identity} LIMIT 1"
    )
    assert not project.context.audit(start="2026-03-01", end="2026-03-01",
                                     models=iter(["ame.intermediate_identity"]))
    project.close()


def test_sqlmesh_unit_tests_pass():
    project = WarehouseProject("duckdb:///:memory:")
    result = project.context.test(stream=io.StringIO())
    assert result.testsRun >= 3
    assert result.wasSuccessful(), [f[1] for f in result.failures + result.errors]


def test_anonymous_page_views_join_the_lead_profile_and_sql_agrees_with_python(paths):
    """A visitor browses anonymously, then fills in a form: the earlier page views join the lead's profile.
    A recorded identity_merged event links two more ids. The SQL model and data/identity.py agree."""
    story = [
        {"event_id": "s1", "event_type": "page_view", "customer_id": "anon-7", "occurred_at": "2026-03-01T09:00:00Z",
         "properties": {"url": "/pricing", "anonymous_id": "anon-7"}},
        {"event_id": "s2", "event_type": "page_view", "customer_id": "anon-7", "occurred_at": "2026-03-01T09:04:00Z",
         "properties": {"url": "/demo", "anonymous_id": "anon-7"}},
        {"event_id": "s3", "event_type": "lead_created", "customer_id": "lead-7", "occurred_at": "2026-03-02T10:00:00Z",
         "properties": {"email": "ann@example.com", "first_name": "Ann", "anonymous_id": "anon-7"}},
        {"event_id": "s4", "event_type": "purchase", "customer_id": "crm-77", "occurred_at": "2026-03-02T11:00:00Z",
         "properties": {"order_id": "o-7", "amount": 30.0}},
        {"event_id": "s5", "event_type": "identity_merged", "customer_id": "lead-7",
         "occurred_at": "2026-03-02T12:00:00Z", "properties": {"merged_ids": ["crm-77"]}},
    ]
    events = day_events("2026-03-01", 200, "d1") + day_events("2026-03-02", 200, "d2") + story
    _append(paths, events)
    _load(paths)
    project = WarehouseProject(paths["warehouse"])
    project.build()
    lead = project.context.fetchdf(
        "SELECT page_views, total_purchases, email, merged_ids, lifecycle_stage FROM ame.marts_marketing_customer_360"
        " WHERE customer_id = 'lead-7'"
    ).iloc[0]
    assert (lead.page_views, lead.total_purchases, lead.email, lead.merged_ids) == (2, 1, "ann@example.com", 3)
    assert project.context.fetchdf(
        "SELECT COUNT(*) AS n FROM ame.marts_marketing_customer_360 WHERE customer_id IN ('anon-7', 'crm-77')"
    )["n"][0] == 0
    sql_mapping = dict(project.context.engine_adapter.fetchall(
        "SELECT customer_id, canonical_customer_id FROM ame.intermediate_identity"
    ))
    links = [link for e in events for link in identity_links(e["event_type"], e["customer_id"], e["properties"])]
    created = {e["customer_id"]: e["occurred_at"] for e in events if e["event_type"] == "lead_created"}
    assert resolve_identities(links, {k: _ts(v) for k, v in created.items()}) == sql_mapping
    project.close()


def _ts(iso: str):
    return datetime.fromisoformat(iso)


def test_the_cli_loads_builds_queries_and_documents(paths, tmp_path):
    _append(paths, day_events("2026-03-01", 150, "d1"))
    runner = CliRunner()
    wh = ["--warehouse", paths["warehouse"]]
    loaded = runner.invoke(warehouse_app, ["load", "--log", paths["log"], *wh])
    assert loaded.exit_code == 0 and "150" in loaded.output, loaded.output
    built = runner.invoke(warehouse_app, ["build", *wh])
    assert built.exit_code == 0 and "staging_events_all" in built.output, built.output
    queried = runner.invoke(warehouse_app, ["query", "SELECT COUNT(*) AS n FROM ame.staging_events_all", *wh])
    assert queried.exit_code == 0 and "150" in queried.output, queried.output
    bad = runner.invoke(warehouse_app, ["query", "SELECT * FROM ame.no_such_table", *wh])
    assert bad.exit_code == 1 and "the query failed" in bad.output
    docs = tmp_path / "warehouse.md"
    assert runner.invoke(warehouse_app, ["docs", "-o", str(docs), *wh]).exit_code == 0
    assert "marts_marketing_customer_360" in docs.read_text() and "## Lineage" in docs.read_text()
    unknown = runner.invoke(warehouse_app, ["query", "SELECT 1", "--warehouse", "postgres://x/y"])
    assert unknown.exit_code == 1 and "duckdb:///" in unknown.output
