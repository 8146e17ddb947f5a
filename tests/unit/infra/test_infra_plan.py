"""``ame infra init`` without services: the embedded defaults, the agents' subscriptions, and a clear failure naming
each backend that cannot be reached."""

from __future__ import annotations

import inspect
import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import up
from ame.cli import app
from ame.infra import DEFAULT_AGENTS, REGISTRY_MARKER, agent_consumers, initialise, plan
from data.settings import get_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_default_agents_are_those_agents_up_runs() -> None:
    assert tuple(inspect.signature(up).parameters["agents"].default) == DEFAULT_AGENTS


def test_one_subscription_per_shard_filtered_to_the_agents_events_and_the_projectors() -> None:
    consumers = agent_consumers(["journey", "bidding"], 2)
    assert [c.name for c in consumers] == ["agent-journey-0of2", "agent-journey-1of2", "agent-bidding-0of2",
                                           "agent-bidding-1of2", "projector-profile"]
    assert consumers[2].event_types == ("auction_result", "purchase")
    assert "decision_made" in (consumers[0].event_types or ()) and consumers[-1].event_types is None


def test_on_the_embedded_defaults_only_the_registries_are_laid_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_POLICIES_DIR", str(tmp_path / "policies"))
    monkeypatch.setenv("AME_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    runner = CliRunner()
    first = runner.invoke(app, ["infra", "init"], terminal_width=250)
    assert first.exit_code == 0, first.output
    assert "5 created, 2 embedded" in first.output
    marker = json.loads((tmp_path / "policies" / REGISTRY_MARKER).read_text())
    assert marker["registry"] == "policies" and (tmp_path / "policies" / "slots").is_dir()
    second = runner.invoke(app, ["infra", "init"], terminal_width=250)
    assert second.exit_code == 0 and "5 exists, 2 embedded" in second.output


def test_unreachable_backends_are_named_and_the_others_still_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pubsub, postgres, bigquery = _free_port(), _free_port(), _free_port()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{pubsub}")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{bigquery}")
    monkeypatch.setenv("AME_EVENT_LOG", "pubsub://ame-prod/customer-events")
    monkeypatch.setenv("AME_WAREHOUSE", "bigquery://ame-prod/marketing")
    monkeypatch.setenv("AME_STATE_STORE", f"postgresql://ame:secret@127.0.0.1:{postgres}/ame")
    monkeypatch.setenv("AME_POLICIES_DIR", str(tmp_path / "policies"))
    get_settings.cache_clear()
    rows = initialise(plan(get_settings(), agents=["bidding"], shards=1, timeout_s=2))
    failed = {r.kind: r.detail for r in rows if r.status == "failed"}
    assert set(failed) == {"Pub/Sub", "BigQuery", "Pub/Sub to BigQuery", "PostgreSQL"}
    assert f"127.0.0.1:{pubsub}" in failed["Pub/Sub"] and "pubsub://ame-prod/customer-events" in failed["Pub/Sub"]
    assert f"127.0.0.1:{bigquery}" in failed["BigQuery"] and "bigquery://ame-prod/marketing" in failed["BigQuery"]
    assert f"127.0.0.1:{postgres}/ame" in failed["PostgreSQL"] and "secret" not in failed["PostgreSQL"]
    assert (tmp_path / "policies" / REGISTRY_MARKER).is_file()  # the reachable ones were still created
    result = CliRunner().invoke(app, ["infra", "init", "--agent", "bidding", "--shards", "1", "--timeout", "2"],
                                terminal_width=250)
    assert result.exit_code == 1 and "error:" in result.output and "cannot reach PostgreSQL" in result.output


def test_a_bad_log_url_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["infra", "init", "--log", "pubsub://only-a-project"], terminal_width=250)
    assert result.exit_code == 2 and "pubsub://project/topic" in result.output
