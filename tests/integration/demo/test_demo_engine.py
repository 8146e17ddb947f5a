"""``ame demo`` end to end in a tiny configuration on the session Ray cluster (which it must reuse and leave up): a policy
through the gate, the closed loop, the three numbers, report.html and the --json summary."""

from __future__ import annotations

import base64
import csv
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ame.report import SECTIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_runs_the_engine_and_writes_the_report(ray_cluster: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ame.cli import app
    from data.log import open_log
    from data.settings import get_settings
    from data.warehouse import open_warehouse

    monkeypatch.setenv("AME_POLICIES_DIR", str(tmp_path / "no-policies"))  # nothing registered: the demo trains one
    get_settings.cache_clear()
    report, summary = tmp_path / "report.html", tmp_path / "summary.json"
    result = CliRunner().invoke(app, ["demo", "--customers", "300", "--days", "3", "--port", str(free_port()),
                                      "--report", str(report), "--eval-customers", "100", "--eval-seeds", "2",
                                      "--train-steps", "2000", "--json", str(summary)])
    assert result.exit_code == 0, result.output
    out = result.output

    # Ray was reused, and is still up for the rest of the session
    assert "already running: reused" in out
    assert ray_cluster.is_initialized()

    # events from the simulator and from the agents
    folder = tmp_path / "ame-home" / "demo"
    log = open_log(f"sqlite:///{folder / 'events.db'}")
    try:
        sources: dict[str, int] = {}
        after = 0
        while batch := log.read(after=after, limit=10_000).events:
            for e in batch:
                sources[e.source] = sources.get(e.source, 0) + 1
            after = batch[-1].position
    finally:
        log.close()
    assert sources.get("simulator", 0) > 300
    assert sources.get("agent:scoring", 0) > 0 and sources.get("agent:journey", 0) >= 300 * 3, sources

    # a policy trained in the demo went through the gate; the engine decided in the closed loop
    figures = json.loads(summary.read_text())
    assert figures["learning"]["origin"] == "trained in the demo" and figures["learning"]["outcome"] in ("promoted", "refused")
    assert figures["learning"]["gate"] and "journey decisions by the engine" in out
    assert figures["serving"] in ("offer_every_k@builtin", figures["learning"]["candidate"])
    for key in ("live_lift", "offline_prediction", "ope", "prediction_within_live_ci", "bidding"):
        assert key in figures, key
    assert set(figures["ope"]) == {"snips", "dr"}
    assert figures["bidding"]["overspent_days"] == 0 and min(figures["bidding"]["spend_share"]) > 0.5

    # the API answered, and the curl line is printed
    assert "/v1/next-best-action →" in out and "/v1/bid →" in out
    assert re.search(r"curl -s -H 'Authorization: Bearer ame_\S+'", out)

    # the warehouse marts are not empty
    store = open_warehouse(f"duckdb:///{folder / 'warehouse.duckdb'}")
    try:
        for mart in ("marts_marketing_customer_360", "marts_marketing_campaign_performance", "marts_sales_lead_scores"):
            assert store.query(f"SELECT COUNT(*) FROM {store.dataset}.{mart}").rows[0][0] > 0, mart
        # the bidding market's campaigns are stated (campaign_updated): the mart names them, on the ad channel
        named = store.query(f"SELECT DISTINCT campaign_name, channel FROM {store.dataset}.marts_marketing_campaign_performance "
                            "WHERE campaign_id LIKE 'sim-campaign-%'").rows
        assert sorted(map(tuple, named)) == [("Search - prospecting", "ad"), ("Search - retargeting", "ad")]
    finally:
        store.close()

    # the activation file
    files = list((folder / "exports" / "audiences" / "demo_engaged_csv").glob("*.csv"))
    assert len(files) == 1
    with files[0].open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {"_ame_key", "_ame_op", "customer_id", "segment"} <= set(rows[0])

    # the tables: live lift, the three numbers, the policies in the simulator
    assert "treated" in out and "holdout" in out and "offline" in out and "OPE snips" in out
    assert "policies against the baseline" in out
    for name in ("email_every_k", "engagement_ladder", "propensity_threshold", "baseline"):
        assert name in out, name

    # report.html: every section, images embedded as base64 PNGs, no external resources
    page = report.read_text()
    for section in SECTIONS:
        assert f"id='{section}'" in page, section
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 5
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "journey-ppo v0001" in page  # the learning curve of the policy trained in the demo
    assert "http://" not in page.split("</table>", 1)[1].replace("http://127.0.0.1", "")


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    from ame.cli import app

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--quick", "--port", str(port), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output and "Traceback" not in result.output
