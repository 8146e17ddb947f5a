"""The shards' configuration and the polling loop shards and projectors share (the state repository's
contract runs over every backend in tests/integration/stores)."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from agents.polling import LoopTiming, PollingLoop, RateMeter, catch_up
from agents.runtime import ShardConfig
from data.settings import get_settings


def test_shard_config_takes_its_runtime_numbers_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AME_AGENT_MAX_BACKOFF_S", "0.5")
    monkeypatch.setenv("AME_AGENT_STATE_READ_CHUNK", "7")
    monkeypatch.setenv("AME_AGENT_RATE_WINDOW", "9")
    get_settings.cache_clear()
    try:
        config = ShardConfig(log_url="sqlite:///x.db", state_dir=tmp_path)
    finally:
        get_settings.cache_clear()
    assert (config.max_backoff_s, config.state_read_chunk, config.rate_window) == (0.5, 7, 9)
    assert config.timing() == LoopTiming(config.poll_interval_s, 0.5, config.stop_timeout_s, None)


def test_the_loop_backs_off_to_its_cap_after_failures_and_recovers() -> None:
    calls: list[float] = []
    recovered = threading.Event()

    def step() -> int:
        calls.append(time.monotonic())
        if len(calls) <= 4:
            raise OSError(f"failure {len(calls)}")
        recovered.set()
        return 0

    loop = PollingLoop("test", step, LoopTiming(poll_interval_s=0.05, max_backoff_s=0.2, stop_timeout_s=5))
    loop.start()
    assert recovered.wait(5)
    loop.stop()
    waits = [b - a for a, b in itertools.pairwise(calls)]  # after each failure: 0.05, 0.1, 0.2, then 0.2 (the cap)
    assert loop.errors == 4 and loop.last_error == "OSError: failure 4" and not loop.running
    assert waits[0] >= 0.045 and waits[1] >= 0.095 and min(waits[2], waits[3]) >= 0.19 and waits[3] < 0.35


def test_catch_up_and_the_rate_meter() -> None:
    left = [3, 2, 1, 0, 5]
    assert catch_up(lambda: left.pop(0)) == 6 and left == [5]
    assert catch_up(lambda: 1, max_batches=4) == 4
    meter = RateMeter(window=4, idle_s=60)
    assert meter.per_second() == 0.0
    meter.add(10)
    time.sleep(0.02)
    meter.add(10)
    assert meter.total == 20 and 0 < meter.per_second() <= 10 / 0.02
