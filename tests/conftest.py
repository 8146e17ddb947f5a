"""Shared fixtures: temporary log and state URLs, the real data sets, and one Ray cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from data.datasets import dataset_path
from data.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def datasets() -> Path:
    """The repository's datasets/ folder (Hillstrom, CDNOW, Open Bandit), with their SOURCE.md."""
    return dataset_path()


@pytest.fixture
def log_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own AME_HOME, so nothing leaks into ./.ame or between tests."""
    monkeypatch.setenv("AME_HOME", str(tmp_path / "ame-home"))
    for name in ("AME_EVENT_LOG", "AME_STATE_STORE", "AME_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """One local Ray cluster for the whole session (2 CPUs), shut down at the end. Always a new one
    (``address="local"``): a cluster someone started on this machine with ``ray start`` is never joined."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield ray
    ray.shutdown()
