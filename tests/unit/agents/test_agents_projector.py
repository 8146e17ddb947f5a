"""The projector actor's plain class: it folds consent into the profiles Serve reads, resumes from its committed
position, keeps polling in the background, survives a failed batch, and counts restarts."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

import agents.projector as projector_module
from agents.cli import agents_app, status_table
from agents.projector import ProjectionRunner, ProjectorConfig
from data.events import ConsentChanged, PageView
from data.log import open_log
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import Settings

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def views(cid: str, n: int, start: int = 0) -> list[PageView]:
    return [PageView(event_id=f"{cid}-pv{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=i),
                     properties={"url": "/p"}) for i in range(start, start + n)]


def consent(cid: str, granted: bool, minute: int, channel: str = "ad") -> ConsentChanged:
    return ConsentChanged(event_id=f"{cid}-consent-{minute}", customer_id=cid, occurred_at=T0 + timedelta(minutes=minute),
                          properties={"channel": channel, "granted": granted})


def ad_consent(state_url: str, cid: str) -> bool | None:
    """What Serve's ``/v1/bid`` reads: the customer's ad consent in the profile projection."""
    store = open_state_store(state_url)
    try:
        with store.transaction() as conn:
            ProfileProjection().create_tables(conn)
        profile = ProfileProjection().get(store.read(), cid)
        return None if profile is None else profile.consent_for("ad")
    finally:
        store.close()


@pytest.fixture
def config(log_url: str, state_url: str) -> ProjectorConfig:
    return ProjectorConfig(log_url=log_url, state_url=state_url, batch_size=7, poll_interval_s=0.01)


def test_catch_up_folds_consent_into_the_profiles_and_reports_status(config: ProjectorConfig, log_url: str, state_url: str) -> None:
    log = open_log(log_url)
    log.append([*views("c1", 10), consent("c1", True, 11), *views("c2", 5), consent("c1", False, 20)])
    runner = ProjectionRunner(config, start=False)
    try:
        assert runner.catch_up() == 17
        status = runner.status()
        assert status["agent"] == "projector:profile" and status["position"] == status["head"] == 17
        assert status["lag"] == 0 and status["events"] == 17 and status["errors"] == 0 and not status["running"]
        assert ad_consent(state_url, "c1") is False  # the later statement wins
        assert ad_consent(state_url, "c2") is None
    finally:
        runner.close()
        log.close()


def test_a_new_runner_resumes_from_the_committed_position(config: ProjectorConfig, log_url: str, state_url: str) -> None:
    log = open_log(log_url)
    log.append(views("c1", 10))
    first = ProjectionRunner(config, start=False)
    first.catch_up()
    first.close()
    log.append([consent("c1", False, 30), *views("c1", 3, start=40)])
    second = ProjectionRunner(config, start=False)
    try:
        assert second.status()["position"] == 10 and second.status()["lag"] == 4
        assert second.catch_up() == 4  # only what came after the commit
        profile = ProfileProjection().get(second.store.read(), "c1")
        assert profile is not None and profile.events_total == 14  # no event folded twice
        assert ad_consent(state_url, "c1") is False
    finally:
        second.close()
        log.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.005)
    raise AssertionError(f"not true within {timeout_s} s")


def test_the_background_loop_picks_up_a_withdrawal(config: ProjectorConfig, log_url: str, state_url: str) -> None:
    log = open_log(log_url)
    log.append([*views("c1", 5), consent("c1", True, 6)])
    runner = ProjectionRunner(config)
    try:
        wait_for(lambda: ad_consent(state_url, "c1") is True)
        log.append([*views("c9", 20), consent("c1", False, 50)])
        assert wait_for(lambda: ad_consent(state_url, "c1") is False) < 1.0
        assert runner.status()["running"]
    finally:
        runner.close()
        log.close()
    assert not runner.status()["running"]


def test_a_failed_batch_is_counted_and_retried(config: ProjectorConfig, log_url: str, state_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(log_url)
    log.append([*views("c1", 3), consent("c1", False, 5)])
    runner = ProjectionRunner(config, start=False)
    real = runner.projector.catch_up
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner.projector, "catch_up", flaky)
    runner.start()
    try:
        wait_for(lambda: ad_consent(state_url, "c1") is False)
        status = runner.status()
        assert status["errors"] == 1 and status["last_error"] == "OSError: disk hiccup" and status["running"]
    finally:
        runner.close()
        log.close()


def test_a_restarted_actor_counts_the_restart_and_resumes_on_its_own(config: ProjectorConfig, log_url: str,
                                                                       state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(log_url)
    log.append(views("c1", 3))
    ProjectionRunner(config, start=False).close()
    monkeypatch.setattr(projector_module, "was_reconstructed", lambda: True)
    runner = ProjectionRunner(config, start=False)  # Ray re-runs __init__ with the first call's arguments
    try:
        assert runner.status()["restarts"] == 1 and runner.status()["running"]
        wait_for(lambda: runner.status()["position"] == 3)
    finally:
        runner.close()
        log.close()


def test_config_needs_a_sqlite_or_postgres_store_and_makes_a_path_absolute(log_url: str, monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    config = ProjectorConfig(log_url=log_url, state_url="sqlite:///.ame/state.db")
    assert config.state_url == f"sqlite:///{tmp_path / '.ame' / 'state.db'}"
    assert ProjectorConfig(log_url=log_url, state_url="postgresql://db/state").state_url == "postgresql://db/state"
    with pytest.raises(ValidationError, match="state_url"):
        ProjectorConfig(log_url=log_url, state_url="mysql://db/state")
    with pytest.raises(ValidationError, match="poll_interval_s"):
        ProjectorConfig(log_url=log_url, state_url="sqlite:///x.db", poll_interval_s=0)


def test_from_settings_takes_the_poll_interval_from_the_settings(log_url: str, state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_PROJECTOR_POLL_INTERVAL_S", "0.2")
    config = ProjectorConfig.from_settings(log_url, state_url, Settings())
    assert config.poll_interval_s == 0.2 and config.batch_size == Settings().read_batch_size


def test_agents_up_refuses_a_state_store_it_cannot_project_into() -> None:
    result = CliRunner().invoke(agents_app, ["up", "--state-store", "mysql://db/state"])
    assert result.exit_code == 2 and "postgresql://" in result.output and "mysql://db/state" in result.output


def test_the_status_table_shows_the_projector_beside_the_shards(config: ProjectorConfig) -> None:
    runner = ProjectionRunner(config, start=False)
    try:
        console = Console(width=200, record=True)
        console.print(status_table([runner.status()]))
        text = console.export_text()
        assert "projector:profile" in text and "0/1" in text
    finally:
        runner.close()
