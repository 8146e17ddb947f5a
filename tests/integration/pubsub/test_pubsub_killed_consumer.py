"""A consumer killed while it held an ordered subscription's messages holds no customer back: its successor applies
every event once the dead consumer's ack deadline has passed, each customer's in publish order.

The consumer pulls (unary Pull), so the server keeps no stream of the dead process; with streaming pull the emulator
kept the killed stream's customers from every later subscriber (:mod:`data.log.pubsub_pull`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from data.log.pubsub_admin import ensure_consumer_resources
from data.log.pubsub_subscriber import PubSubSubscriber
from data.projections.store import SqliteStateStore
from data.synthetic import synthetic_events

pytestmark = pytest.mark.emulator

ACK_DEADLINE_S = 10  # the least Pub/Sub allows
WAIT_S = 60.0

HOLDER = """
import sys, threading, time
from data.log.pubsub_subscriber import PubSubSubscriber
from data.projections.store import SqliteStateStore
def hold(conn, batch):  # the first batch never commits: its messages stay leased to this process
    open(sys.argv[2], "w").write(str(len(batch)))
    threading.Event().wait()
PubSubSubscriber(sys.argv[1], SqliteStateStore("sqlite:///" + sys.argv[3]), "successor", hold).start()
time.sleep(600)
"""


def hold_then_die(subscription: str, work: Path) -> int:
    """The consumer in a child process takes a batch, holds it unacked, and is killed (SIGKILL); returns its size."""
    flag = work / "holding"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, subscription, str(flag), str(work / "child.db")],
                             env=os.environ.copy())
    try:
        deadline = time.monotonic() + WAIT_S
        while not (flag.exists() and flag.read_text()):
            assert child.poll() is None and time.monotonic() < deadline, "the first consumer never got a batch"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    return int(flag.read_text())


def test_a_killed_consumers_customers_reach_its_successor_in_order(log: Any, pubsub_url: str,
                                                                   tmp_path: Path) -> None:
    path = ensure_consumer_resources(pubsub_url, "successor", ack_deadline_s=ACK_DEADLINE_S, retry_backoff_s=None)
    events = synthetic_events(400, 16, seed=5)
    log.append(events)
    held = hold_then_die(path, tmp_path)

    applied: dict[str, list[str]] = defaultdict(list)

    def record(conn: Any, batch: Sequence[Any]) -> None:
        for e in batch:
            applied[e.customer_id].append(e.event_id)

    store = SqliteStateStore(f"sqlite:///{tmp_path / 'state.db'}")
    started = time.monotonic()
    with PubSubSubscriber(path, store, "successor", record, full_events=True) as consumer:
        got_all = consumer.wait_for(lambda s: s.applied >= len(events), WAIT_S)
    took = time.monotonic() - started
    store.close()
    assert held > 0
    assert got_all, f"after {took:.0f} s the successor had {consumer.stats.applied} of {len(events)} events"
    sent: dict[str, list[str]] = defaultdict(list)
    for e in events:
        sent[e.customer_id].append(e.event_id)
    misordered = {c: [sent[c].index(x) for x in applied[c]] for c in sent if applied[c] != sent[c]}
    assert not misordered, f"each customer's events applied once, in publish order (publish indexes): {misordered}"
    assert consumer.stats.duplicates == 0 and consumer.failure() is None
    assert took < ACK_DEADLINE_S + 20, took
