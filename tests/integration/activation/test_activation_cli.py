"""End to end on a DuckDB warehouse: `ame activate run` to CSV, Parquet and a webhook stub, twice; then status."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ame.cli import app
from data.settings import get_settings
from tests.integration.activation.activation_stub import StubResponse, StubServer

runner = CliRunner()


def make_warehouse(path: Path, tiers: dict[str, str]) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA IF NOT EXISTS ame")
    con.execute("CREATE OR REPLACE TABLE ame.marts_sales_lead_scores (customer_id VARCHAR, email VARCHAR,"
                " lead_score DOUBLE, lead_tier VARCHAR, last_seen_at TIMESTAMP)")
    con.executemany("INSERT INTO ame.marts_sales_lead_scores VALUES (?, ?, ?, ?, TIMESTAMP '2024-05-01 10:00:00')",
                    [(cid, f"{cid}@example.com", 0.9 if tier == "High" else 0.2, tier) for cid, tier in tiers.items()])
    con.close()


def write_config(tmp_path: Path, hook: str) -> Path:
    config = tmp_path / "syncs.yaml"
    config.write_text(f"""
syncs:
  - name: high_leads_csv
    model: marts_sales_lead_scores
    filter: "lead_tier = 'High'"
    mapping: {{customer_id: customer_id, email: email, score: lead_score, seen: last_seen_at}}
    mode: mirror
    destination: {{type: csv, path: {tmp_path / 'out'}}}
  - name: leads_parquet
    model: marts_sales_lead_scores
    mapping: {{customer_id: customer_id, tier: lead_tier}}
    destination: {{type: parquet, path: {tmp_path / 'out'}}}
  - name: leads_hook
    model: marts_sales_lead_scores
    mapping: {{id: customer_id, tier: lead_tier}}
    destination: {{type: webhook, url: "{hook}"}}
""", encoding="utf-8")
    return config


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AME_WAREHOUSE", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    monkeypatch.setenv("AME_STATE_STORE", f"sqlite:///{tmp_path / 'state.db'}")

    get_settings.cache_clear()
    return {}


def test_run_twice_then_a_change_with_mirror_delete(tmp_path: Path, stub: StubServer, env: dict[str, str]) -> None:
    make_warehouse(tmp_path / "wh.duckdb", {"a": "High", "b": "High", "c": "Low"})
    config = write_config(tmp_path, stub.url + "/hook")
    result = runner.invoke(app, ["activate", "run", "--config", str(config), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    reports = {r["sync"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert reports["high_leads_csv"]["succeeded"] == 2 and reports["leads_parquet"]["succeeded"] == 3
    assert len(stub.requests) == 1 and len(stub.requests[0].json["records"]) == 3
    (csv_file,) = (tmp_path / "out" / "high_leads_csv").glob("*.csv")
    lines = csv_file.read_text().splitlines()
    assert lines[0] == "_ame_key,_ame_op,customer_id,email,score,seen" and len(lines) == 3
    (parquet_file,) = (tmp_path / "out" / "leads_parquet").glob("*.parquet")
    assert duckdb.sql(f"SELECT count(*) FROM '{parquet_file}'").fetchone() == (3,)

    second = runner.invoke(app, ["activate", "run", "--config", str(config), "--report", str(tmp_path / "r.json")])
    assert second.exit_code == 0, second.output
    assert all(r["upserts_sent"] == 0 and r["deletes_sent"] == 0 for r in json.loads((tmp_path / "r.json").read_text()))
    assert len(stub.requests) == 1 and len(list((tmp_path / "out" / "high_leads_csv").glob("*.csv"))) == 1

    make_warehouse(tmp_path / "wh.duckdb", {"a": "High", "b": "Low", "c": "Low"})  # b leaves the audience
    third = runner.invoke(app, ["activate", "run", "--config", str(config), "-s", "high_leads_csv", "-s", "leads_hook"])
    assert third.exit_code == 0, third.output
    newest = max((tmp_path / "out" / "high_leads_csv").glob("*.csv"), key=lambda p: p.name)
    assert newest.read_text().splitlines()[1].startswith("b,delete,b,b@example.com")
    assert [r["key"] for r in stub.requests[1].json["records"]] == ["b"]

    status = runner.invoke(app, ["activate", "status", "--json"])
    assert status.exit_code == 0, status.output
    runs = json.loads(status.output)
    assert {(r["sync"], r["status"]) for r in runs} == {("high_leads_csv", "ok"), ("leads_parquet", "ok"),
                                                        ("leads_hook", "ok")} and len(runs) == 8
    assert next(r for r in runs if r["sync"] == "high_leads_csv")["held"] == 1
    assert runner.invoke(app, ["activate", "status"]).exit_code == 0


def test_failures_exit_nonzero_with_a_row_error_table(tmp_path: Path, stub: StubServer, env: dict[str, str]) -> None:
    make_warehouse(tmp_path / "wh.duckdb", {"a": "High", "b": "Low"})
    config = write_config(tmp_path, stub.url + "/hook")
    stub.responder = lambda r: StubResponse(200, {"errors": [{"key": "b", "message": "tier unknown"}]})
    result = runner.invoke(app, ["activate", "run", "--config", str(config), "--sync", "leads_hook"])
    assert result.exit_code == 1 and "partial" in result.output and "tier unknown" in result.output


def test_config_errors_and_unknown_syncs_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("syncs:\n  - {name: x, model: m, mapping: {a: b}, schedule: 'hourly', destination: {type: csv, path: o}}\n")
    result = runner.invoke(app, ["activate", "run", "--config", str(bad)])
    assert result.exit_code == 2 and "schedule" in result.output
    good = write_config(tmp_path, "http://127.0.0.1:9/x")
    result = runner.invoke(app, ["activate", "run", "--config", str(good), "--sync", "nope"])
    assert result.exit_code == 2 and "no sync named nope" in result.output


def test_missing_model_names_the_fix(tmp_path: Path, env: dict[str, str]) -> None:
    duckdb.connect(str(tmp_path / "wh.duckdb")).close()
    config = write_config(tmp_path, "http://127.0.0.1:9/x")
    result = runner.invoke(app, ["activate", "run", "--config", str(config), "-s", "leads_parquet"])
    assert result.exit_code == 1 and "ame warehouse build" in " ".join(result.output.split())
