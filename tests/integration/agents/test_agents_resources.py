"""``AME_AGENT_RESOURCES`` pins every actor ``ame agents up`` starts (shards, projector, scheduler) to the nodes that
offer those Ray resources; a resource no node offers is refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import agents.cli as cli
from agents.cli import agents_app
from data.settings import get_settings


def test_up_refuses_a_resource_that_no_node_offers(ray_cluster: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import ray  # lazy: Ray is heavy

    monkeypatch.setenv("AME_AGENT_RESOURCES", '{"agents-pool": 0.001}')
    get_settings.cache_clear()
    result = CliRunner().invoke(agents_app, ["up", "--address", "auto", "--namespace", "test-resources",
                                             "--log", f"sqlite:///{tmp_path / 'events.db'}",
                                             "--state-dir", str(tmp_path / "agents"), "--no-scheduler"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "no node of the Ray cluster offers 'agents-pool'" in " ".join(result.output.split())
    assert """ray start --resources '{"agents-pool": 1}'""" in result.output
    assert not [a for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "test-resources"]


class _Recorder:
    """Stands in for the supervisor and the scheduler: keeps what ``ame agents up`` asked of them."""

    def __init__(self) -> None:
        self.supervisor: dict[str, Any] = {}
        self.scheduler: dict[str, Any] = {}
        self.handles: dict[tuple[str, int], Any] = {}

    def supervise(self, *args: Any, **kwargs: Any) -> _Recorder:
        self.supervisor = kwargs
        return self

    def up(self) -> dict[tuple[str, int], Any]:
        return self.handles

    def schedule(self, *args: Any, **kwargs: Any) -> str:
        self.scheduler = kwargs
        return "scheduler-handle"


class _Cluster:
    @staticmethod
    def cluster_resources() -> dict[str, float]:
        return {"CPU": 2.0, "agents-pool": 1.0}


def test_up_asks_every_actor_for_the_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(cli, "AgentSupervisor", recorder.supervise)
    monkeypatch.setattr(cli, "start_scheduler", recorder.schedule)
    monkeypatch.setattr(cli, "_ray_init", lambda *args: _Cluster())
    monkeypatch.setenv("AME_AGENT_RESOURCES", '{"agents-pool": 0.001}')
    get_settings.cache_clear()
    result = CliRunner().invoke(agents_app, ["up", "--address", "auto", "--log", f"sqlite:///{tmp_path / 'e.db'}",
                                             "--state-dir", str(tmp_path / "agents")])
    assert result.exit_code == 0, result.output
    assert recorder.supervisor["resources"] == {"agents-pool": 0.001}
    assert recorder.scheduler["resources"] == {"agents-pool": 0.001}
