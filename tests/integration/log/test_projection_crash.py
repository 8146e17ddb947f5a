"""Tracking records: the projection commits its position with its state, so a crash and a replay never
apply an event twice; a replay from scratch or from a snapshot gives the same state hash."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.synthetic import synthetic_events

WORKER = Path(__file__).with_name("projector_worker.py")


@pytest.fixture
def filled_log(log_url: str) -> str:
    log = open_log(log_url)
    events = synthetic_events(20_000, 500, seed=11)
    for i in range(0, len(events), 1_000):
        log.append(events[i : i + 1_000])
    log.close()
    return log_url


def clean_replay_hash(log_url: str, tmp_path: Path) -> str:
    projector = Projector(open_log(log_url), open_state_store(f"sqlite:///{tmp_path / 'clean.db'}"), ProfileProjection())
    projector.rebuild()
    return projector.state_hash()


def run_worker(log_url: str, state_url: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), "--log", log_url, "--state", state_url, *extra])


def test_sigkill_inside_a_batch_then_restart_equals_clean_replay(filled_log: str, state_url: str, tmp_path: Path) -> None:
    crashed = run_worker(filled_log, state_url, "--batch", "700", "--kill-at-batch", "4")
    assert crashed.wait(timeout=120) == -signal.SIGKILL
    store = open_state_store(state_url)
    assert store.position("profile") == 3 * 700  # the fourth batch's state and position were rolled back together
    store.close()
    restarted = run_worker(filled_log, state_url, "--batch", "700")
    assert restarted.wait(timeout=120) == 0
    projector = Projector(open_log(filled_log), open_state_store(state_url), ProfileProjection())
    assert projector.position() == 20_000
    assert projector.state_hash() == clean_replay_hash(filled_log, tmp_path)


def test_sigkill_at_a_random_moment(filled_log: str, state_url: str, tmp_path: Path) -> None:
    slow = run_worker(filled_log, state_url, "--batch", "200", "--sleep", "0.05")  # at least 5 s in all
    store = open_state_store(state_url)
    deadline = time.monotonic() + 60
    while store.position("profile") < 3_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    slow.send_signal(signal.SIGKILL)
    slow.wait(timeout=30)
    assert 0 < store.position("profile") < 20_000
    restarted = run_worker(filled_log, state_url, "--batch", "1000")
    assert restarted.wait(timeout=120) == 0
    projector = Projector(open_log(filled_log), store, ProfileProjection())
    assert projector.state_hash() == clean_replay_hash(filled_log, tmp_path)


def test_incremental_replay_and_snapshot_agree(filled_log: str, state_url: str, tmp_path: Path) -> None:
    log = open_log(filled_log)
    projector = Projector(log, open_state_store(state_url), ProfileProjection(), batch_size=1_234, snapshot_every=8_000)
    projector.catch_up(max_events=9_000)
    assert projector.store.latest_snapshot("profile") is not None
    projector.catch_up()
    incremental = projector.state_hash()
    assert incremental == clean_replay_hash(filled_log, tmp_path)
    more = synthetic_events(3_000, 500, seed=12)
    log.append(more)
    projector.catch_up()
    after_more = projector.state_hash()
    projector.rebuild(from_snapshot=True)
    assert projector.state_hash() == after_more
    projector.rebuild()
    assert projector.state_hash() == after_more
