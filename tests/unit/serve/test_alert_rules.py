"""The alerting rules in deploy/alerts/: promtool checks them and runs their unit tests, the GKE manifest carries
the same groups, and every metric a rule reads is one the engine exports.

promtool comes with Debian's prometheus package (scripts/install_prometheus.sh). Without it the promtool tests skip
with that reason, unless ``AME_REQUIRE_PROMTOOL=1`` (CI sets it), where they fail.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agents.runtime import ShardStatus
from environment.auction_market import bid_spec
from environment.bid_facts import DAY_US, CampaignFacts
from environment.config import load_market_config
from policies.bid_pacer import PacerState, PacingParams
from policies.bid_serving import campaign_record
from policies.scoring.drift_record import DriftCheck
from serve.metrics import ServeMetrics
from serve.ops_metrics import OpsSources

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "alerts"
RULES = ALERTS / "rules.yaml"


def promtool() -> str:
    """The promtool binary, or a skip (a failure where AME_REQUIRE_PROMTOOL=1) naming how to install it."""
    found = shutil.which("promtool")
    if found:
        return found
    reason = "promtool is missing: run scripts/install_prometheus.sh (Debian's prometheus package)"
    if os.environ.get("AME_REQUIRE_PROMTOOL") == "1":
        pytest.fail(f"{reason}; AME_REQUIRE_PROMTOOL=1 requires it")
    pytest.skip(reason)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=ALERTS, capture_output=True, text=True, timeout=120, check=False)


def rules() -> dict[str, Any]:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def alert_names() -> set[str]:
    return {r["alert"] for g in rules()["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_checks_the_rules() -> None:
    done = run_promtool("check", "rules", "rules.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in done.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    done = run_promtool("test", "rules", "tests.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests notice a changed threshold (so their passing means something)."""
    changed = RULES.read_text(encoding="utf-8").replace("> 0.25", "> 0.5")
    (tmp_path / "rules.yaml").write_text(changed, encoding="utf-8")
    shutil.copy(ALERTS / "tests.yaml", tmp_path / "tests.yaml")
    done = subprocess.run([promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode != 0
    assert "alertname: ScoreDrift" in done.stdout + done.stderr


def test_every_alert_fires_once_and_stays_quiet_once() -> None:
    """Each alert has a case in tests.yaml where it is expected and one where it is expected not to fire."""
    tests = yaml.safe_load((ALERTS / "tests.yaml").read_text(encoding="utf-8"))
    fires, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == alert_names()
    assert quiet == alert_names()


def test_gke_manifest_carries_the_rule_groups() -> None:
    docs = list(yaml.safe_load_all((ALERTS / "gke-rules.yaml").read_text(encoding="utf-8")))
    assert len(docs) == 1
    manifest = docs[0]
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.googleapis.com/v1", "Rules")
    assert manifest["metadata"]["namespace"] == "ame"
    assert manifest["spec"]["groups"] == rules()["groups"], "regenerate: .venv/bin/python scripts/render_gke_rules.py"


def test_gke_manifest_is_what_the_script_renders() -> None:
    render = runpy.run_path(str(ROOT / "scripts" / "render_gke_rules.py"))["render"]
    assert render() == (ALERTS / "gke-rules.yaml").read_text(encoding="utf-8")


METRIC = re.compile(r"\b(ame_[a-z0-9_]+)")


def test_every_metric_a_rule_reads_is_exported() -> None:
    """The rules read only metrics the engine's code defines (histograms by their ``_count`` series)."""
    exported = exported_metric_names()
    used = {m for g in rules()["groups"] for r in g["rules"] for m in METRIC.findall(r["expr"])}
    assert used, "no metric found in the rules"
    assert used <= exported, f"rules read metrics nobody exports: {sorted(used - exported)}"


def exported_metric_names() -> set[str]:
    """Every sample name the API's registry exposes once each engine-wide source holds a figure."""
    status = {"agent": "journey", "shard": 0, "running": True, "lag": 3, "restarts": 0, "errors": 0}
    record = {"pacer": {"curve": [1.0] * 4}, "spec": {"slots_per_day": 4}, "budget": 10.0, "spend_today": 1.0, "day": 0}
    sources = OpsSources(agent_statuses=lambda: [status], dead_letters=lambda: (1, 0),
                         campaign_records=lambda: {"c1": record}, now_us=lambda: 3_600_000_000,
                         drift_checks=lambda: [DriftCheck("lead", "v1", "2026-01-01T00:00:00+00:00", 10, {"score": 0.1})])
    metrics = ServeMetrics("r1", sources)
    metrics.observe("/v1/bid", 200, 0.001)
    return {s.name for family in text_string_to_metric_families(metrics.render().decode()) for s in family.samples}


def test_gke_scrapes_the_api_metrics_in_the_rules_namespace() -> None:
    scrape = yaml.safe_load((ALERTS / "gke-scrape.yaml").read_text(encoding="utf-8"))
    rules_manifest = yaml.safe_load((ALERTS / "gke-rules.yaml").read_text(encoding="utf-8"))
    serve_config = yaml.safe_load((ROOT / "serve" / "config.yaml").read_text(encoding="utf-8"))
    assert (scrape["apiVersion"], scrape["kind"]) == ("monitoring.googleapis.com/v1", "PodMonitoring")
    assert scrape["metadata"]["namespace"] == rules_manifest["metadata"]["namespace"]
    (endpoint,) = scrape["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == serve_config["http_options"]["port"]


def scrape_of_a_troubled_engine() -> str:
    """/metrics of a replica whose engine has one shard 20,000 events behind, one shard down, a model whose scores
    drifted (PSI 0.3), and a campaign that spent 60% of its budget one hour into the day."""
    day = 20_000
    spec = bid_spec(load_market_config().auction)
    facts = CampaignFacts.empty(1, 10.0, spec)
    facts.day[0], facts.today[0, 0] = day, 6.0
    record, _ = campaign_record("c1", facts, PacerState.empty(1, spec), spec, PacingParams(), day * DAY_US)

    def shard(number: int, lag: int, running: bool) -> dict[str, Any]:
        return ShardStatus("journey", number, 2, 0, lag, lag, 0, 0.0, 0, 0, 0, 0, running).to_dict()

    sources = OpsSources(agent_statuses=lambda: [shard(0, 20_000, True), shard(1, 0, False)],
                         dead_letters=lambda: (4, 1), campaign_records=lambda: {"c1": record},
                         now_us=lambda: day * DAY_US + DAY_US // 24,
                         drift_checks=lambda: [DriftCheck("lead", "v1", "2026-01-01T00:00:00+00:00", 500,
                                                          {"score": 0.3, "recency": 0.1})])
    metrics = ServeMetrics("r1", sources)
    metrics.observe("/v1/bid", 200, 0.001)
    return metrics.render().decode()


def test_the_rules_fire_on_what_the_engine_exports(tmp_path: Path) -> None:
    """The API's own exposition, held for 30 minutes as promtool input, raises exactly the alerts its figures call
    for: the exported names, labels and values match what the rules select."""
    series = [{"series": s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}",
               "values": f"{s.value}x30"}
              for family in text_string_to_metric_families(scrape_of_a_troubled_engine()) for s in family.samples
              if s.name.startswith("ame_")]
    expected = ["AgentLagHigh", "AgentShardDown", "CampaignBudget50Percent", "CampaignSpendAheadOfPlan", "ScoreDrift"]
    test = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": 'count by (alertname) (ALERTS{alertstate="firing"})', "eval_time": "20m",
                              "exp_samples": [{"labels": f'{{alertname="{name}"}}', "value": 1} for name in expected]}],
    }]}
    (tmp_path / "scrape_test.yaml").write_text(yaml.safe_dump(test), encoding="utf-8")
    done = subprocess.run([promtool(), "test", "rules", "scrape_test.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
