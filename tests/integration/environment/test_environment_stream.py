"""The market stream into a real SQLite event log, and the ``ame sim`` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from data.log import open_log
from environment.cli import sim_app
from environment.stream import stream_market


def test_stream_writes_valid_events_idempotently(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        report = stream_market(log, customers=300, days=6, seed=3)
        assert report.appended == report.events > 300
        assert report.by_type["lead_created"] == report.by_type["customer_attributes"] == 300
        assert report.policy == "offer_every_k"  # the journey slot's default
        for kind in ("decision_made", "offer_sent", "page_view", "consent_changed"):
            assert report.by_type.get(kind, 0) > 0, kind
        batch = log.read(after=0, limit=100_000)
        assert len(batch) == report.events
        for stored in batch.events[:2000]:
            stored.to_event()  # every stored event validates against its schema
        again = stream_market(log, customers=300, days=6, seed=3)
        assert again.appended == 0 and again.duplicates == report.events
    finally:
        log.close()


def test_stream_policies_differ(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        waiting = stream_market(log, customers=200, days=4, policy="wait", seed=1)
        assert "decision_made" not in waiting.by_type
        ticked = stream_market(log, customers=20, days=3, policy="email_every_k", seed=2, ticks=True)
        assert ticked.by_type["decision_made"] >= 3 and "offer_sent" not in ticked.by_type
        with pytest.raises(ValueError, match="unknown journey policy"):
            stream_market(log, customers=10, days=1, policy="nope")
    finally:
        log.close()


def test_cli_sim_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(sim_app, ["run", "--customers", "100", "--days", "3", "--log", url, "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "lead_created" in result.output


def test_cli_rejects_unknown_policy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(sim_app, ["run", "--customers", "10", "--days", "1", "--log", url, "--policy", "x"])
    assert result.exit_code != 0
