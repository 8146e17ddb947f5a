"""Google's Pub/Sub emulator for the Pub/Sub backend's tests: one per session, on 127.0.0.1 only.

If ``PUBSUB_EMULATOR_HOST`` is set (``.ci/run`` starts one with scripts/start_pubsub_emulator.sh), that one is
used; otherwise the emulator from the Google Cloud CLI is started on a free port and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from data.privacy.encrypting_log import EncryptingLog

_START_TIMEOUT_S = 60.0
_MISSING = (
    "the Pub/Sub emulator is not available: install the Google Cloud CLI with its pubsub-emulator component "
    "(apt: google-cloud-cli-pubsub-emulator, plus Java 11+), or set PUBSUB_EMULATOR_HOST to a running emulator"
)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _emulator_binary() -> Path | None:
    if shutil.which("gcloud") is None:
        return None
    try:
        root = subprocess.run(
            ["gcloud", "info", "--format=value(installation.sdk_root)"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    binary = Path(root) / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    return binary if binary.is_file() else None


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator's ``host:port``, with ``PUBSUB_EMULATOR_HOST`` set for the session's clients."""
    existing = os.environ.get("PUBSUB_EMULATOR_HOST")
    if existing:
        host, _, port = existing.rpartition(":")
        if not _port_open(host or "127.0.0.1", int(port)):
            pytest.skip(f"PUBSUB_EMULATOR_HOST={existing} is set but nothing listens there")
        yield existing
        return
    binary = _emulator_binary()
    if binary is None:
        pytest.skip(_MISSING)
    port = _free_port()
    logs = tmp_path_factory.mktemp("pubsub-emulator")
    with open(logs / "emulator.log", "wb") as out:
        # the script execs java, so this process is the server: terminating it leaves nothing behind
        proc = subprocess.Popen(
            [str(binary), "--host=127.0.0.1", f"--port={port}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _port_open("127.0.0.1", port):
            if proc.poll() is not None:
                pytest.skip(f"the Pub/Sub emulator exited at start-up (see {logs / 'emulator.log'})")
            if time.monotonic() > deadline:
                pytest.fail(f"the Pub/Sub emulator did not open 127.0.0.1:{port} in {_START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        host = f"127.0.0.1:{port}"
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        yield host
    finally:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture
def pubsub_url(pubsub_emulator: str) -> str:
    """A fresh topic per test (realistic names: the emulator validates them as production does)."""
    return f"pubsub://ame-test/customer-events-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def log(pubsub_url: str, tmp_path: Path) -> Iterator[Any]:
    """A :class:`~data.log.pubsub.PubSubEventLog` on the test's topic, its dead letters in the test's folder, wrapped
    in the log's encryption as :func:`data.log.open_log` opens it."""
    from data.log.pubsub import PubSubEventLog  # lazy: loads the Google client

    opened = EncryptingLog(PubSubEventLog(pubsub_url, dead_letter_store=f"sqlite:///{tmp_path / 'dl.db'}", publish_timeout_s=30))
    yield opened
    opened.close()
