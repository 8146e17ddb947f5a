"""Pub/Sub consumer benchmarks on Google's emulator, each beside a streaming-pull baseline measured in the same run:

- throughput: ``PubSubSubscriber`` (unary pull, ordered subscription) folding a published backlog into the profile
  projection on SQLite, events/s from its start until every event is applied; beside the client library's streaming
  pull on its own ordered subscription of the same topic, whose callback only decodes and acks;
- latency of one event from publish to applied (p50, p99), events published one after another into an idle
  consumer, the same two consumers.

The emulator is ``PUBSUB_EMULATOR_HOST`` when set and reachable, else one started with
scripts/start_pubsub_emulator.sh on a free port and stopped at the end. Without gcloud and the emulator the
benchmark says why and returns no results. It is a characterisation: no targets.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from rich.console import Console
from rich.progress import Progress

from benchmarks.common import BenchResult, free_port
from data.events import EventBase
from data.log import EventLog, open_log
from data.log.pubsub import decode_message, holds_pii_token
from data.log.pubsub_admin import TopicRef, ensure_consumer_resources, ensure_subscription, parse_pubsub_url
from data.log.pubsub_subscriber import PubSubSubscriber, projection_handler
from data.privacy.codec import codec_for_log
from data.projections.profile import ProfileProjection
from data.projections.store import SqliteStateStore
from data.settings import get_settings
from data.synthetic import synthetic_events

AREA = "pubsub"
ROOT = Path(__file__).resolve().parents[1]
PUBLISH_BATCH = 1_000
LATENCY_EVENTS = 100
CONSUME_TIMEOUT_S = 600.0
EVENT_TIMEOUT_S = 60.0
STREAMING = "streaming pull (client library), decode + ack only, own ordered subscription, same run"


class EmulatorUnavailable(RuntimeError):
    """No emulator to run against (gcloud or its pubsub-emulator component missing, or it failed to start)."""


def _listening(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


@contextmanager
def _emulator(folder: Path) -> Iterator[str]:
    """``host:port`` of the emulator: ``PUBSUB_EMULATOR_HOST`` when it listens, else one started here for the block."""
    existing = os.environ.get("PUBSUB_EMULATOR_HOST", "")
    if existing and _listening(existing):
        yield existing
        return
    env = {**os.environ, "AME_PUBSUB_EMULATOR_DIR": str(folder / "emulator")}
    try:
        started = subprocess.run([str(ROOT / "scripts" / "start_pubsub_emulator.sh"), str(free_port())],
                                 capture_output=True, text=True, env=env, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EmulatorUnavailable(f"scripts/start_pubsub_emulator.sh failed: {error}") from None
    line = next((w for w in started.stdout.split() if w.startswith("PUBSUB_EMULATOR_HOST=")), "")
    if started.returncode != 0 or not line:
        raise EmulatorUnavailable(started.stderr.strip()[-500:] or "scripts/start_pubsub_emulator.sh printed no host")
    try:
        yield line.split("=", 1)[1]
    finally:
        subprocess.run([str(ROOT / "scripts" / "stop_pubsub_emulator.sh")], env=env, capture_output=True,
                       timeout=60, check=False)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """These environment variables (and fresh settings) for the block; the previous values afterwards."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


class _Stamps:
    """When each event id was applied (``time.perf_counter``), filled from the consumers' threads."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._changed = threading.Condition()

    def mark(self, event_ids: Sequence[str]) -> None:
        now = time.perf_counter()
        with self._changed:
            for event_id in event_ids:
                self.at.setdefault(event_id, now)
            self._changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``done()`` holds (True) or ``timeout_s`` passes (False)."""
        with self._changed:
            return self._changed.wait_for(done, timeout_s)

    def wait_count(self, n: int, progress: Progress, task: Any, timeout_s: float = CONSUME_TIMEOUT_S) -> None:
        """Block until ``n`` events are stamped, showing the count; raises when ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        while not self.wait(lambda: len(self.at) >= n, 0.2):
            progress.update(task, completed=len(self.at))
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.at):,} of {n:,} events consumed within {timeout_s:.0f} s")
        progress.update(task, completed=n)


# -- the two consumers -------------------------------------------------------------------------------------------


@contextmanager
def _pull_consumer(path: str, folder: Path, stamps: _Stamps) -> Iterator[PubSubSubscriber]:
    """Ours: the profile projection into a fresh SQLite store; each batch stamped after its commit, before its ack."""
    store = SqliteStateStore(f"sqlite:///{folder / f'state-{uuid.uuid4().hex[:8]}.db'}")
    with store.transaction() as conn:
        ProfileProjection().create_tables(conn)
    consumer = PubSubSubscriber(path, store, "profile", projection_handler(ProfileProjection()), before_ack=stamps.mark)
    try:
        with consumer:
            yield consumer
        if consumer.failure() is not None:
            raise RuntimeError(f"the pull consumer failed: {consumer.failure()!r}")
    finally:
        store.close()


@contextmanager
def _streaming_consumer(path: str, url: str, stamps: _Stamps) -> Iterator[None]:
    """The baseline: streaming pull whose callback decodes (decrypting PII with the key store of the log at ``url``,
    as ours does) and acks, nothing more."""
    settings = get_settings()
    codec = codec_for_log(url)

    def callback(message: Any) -> None:
        event = decode_message(message.data, codec if holds_pii_token(message.data) else None)
        message.ack()
        stamps.mark([event.event_id])

    client = pubsub_v1.SubscriberClient()
    flow = pubsub_v1.types.FlowControl(max_messages=settings.pubsub_flow_max_messages,
                                       max_bytes=settings.pubsub_flow_max_bytes)
    future = client.subscribe(path, callback=callback, flow_control=flow)
    try:
        yield
    finally:
        future.cancel()
        with suppress(CancelledError, TimeoutError):
            future.result(timeout=30)
        client.close()
        codec.keys.close()


# -- topics ------------------------------------------------------------------------------------------------------


def _topic(prefix: str) -> tuple[str, str, str]:
    """A fresh topic with our consumer's subscription and a baseline subscription: (URL, ours, baseline)."""
    url = f"pubsub://bench/{prefix}-{uuid.uuid4().hex[:8]}"
    ours = ensure_consumer_resources(url, "profile", ack_deadline_s=get_settings().pubsub_ack_deadline_s)
    ref = parse_pubsub_url(url)
    baseline = ref.subscription_path(f"{ref.topic}-streaming")
    subscriber = pubsub_v1.SubscriberClient()
    try:
        ensure_subscription(subscriber, baseline, ref.path, ack_deadline_s=get_settings().pubsub_ack_deadline_s)
    finally:
        subscriber.close()
    return url, ours, baseline


def _delete(ref: TopicRef) -> None:
    """Drop the topic, its dead-letter topic and their subscriptions (best effort: an external emulator stays tidy)."""
    subscriber, publisher = pubsub_v1.SubscriberClient(), pubsub_v1.PublisherClient()
    try:
        for name in ("profile", "streaming", "dead-letter-audit"):
            with suppress(gexc.GoogleAPICallError):
                subscriber.delete_subscription(subscription=ref.subscription_path(f"{ref.topic}-{name}"), timeout=30)
        for path in (ref.path, ref.dead_letter.path):
            with suppress(gexc.GoogleAPICallError):
                publisher.delete_topic(topic=path, timeout=30)
    finally:
        subscriber.close()
        publisher.stop()


def _publish(log: EventLog, events: list[EventBase], progress: Progress) -> float:
    """Append ``events`` in batches with the log's own publisher; events/s."""
    task = progress.add_task(f"publish {len(events):,} events", total=len(events))
    start = time.perf_counter()
    for i in range(0, len(events), PUBLISH_BATCH):
        log.append(events[i:i + PUBLISH_BATCH])
        progress.advance(task, len(events[i:i + PUBLISH_BATCH]))
    return len(events) / (time.perf_counter() - start)


# -- the measurements --------------------------------------------------------------------------------------------


def _throughput(folder: Path, n: int, customers: int, progress: Progress) -> list[BenchResult]:
    """Publish ``n`` events, then time each consumer from its start until it has consumed all of them."""
    events = synthetic_events(n, customers, seed=7)
    url, ours, baseline = _topic("throughput")
    log = open_log(url)
    try:
        published = _publish(log, events, progress)
    finally:
        log.close()
    stamps = _Stamps()
    start = time.perf_counter()
    with _pull_consumer(ours, folder, stamps) as consumer:
        stamps.wait_count(n, progress, progress.add_task("pull consumer folds profiles", total=n))
    pull_rate = n / (max(stamps.at.values()) - start)
    if (consumer.stats.applied, consumer.stats.duplicates) != (n, 0):
        raise RuntimeError(f"the pull consumer applied {consumer.stats}, not {n:,} events once each")
    stamps = _Stamps()
    start = time.perf_counter()
    with _streaming_consumer(baseline, url, stamps):
        stamps.wait_count(n, progress, progress.add_task("streaming pull decodes + acks", total=n))
    stream_rate = n / (max(stamps.at.values()) - start)
    _delete(parse_pubsub_url(url))
    ratio = pull_rate / stream_rate
    distinct = len({e.customer_id for e in events})
    return [BenchResult(
        AREA, f"consumer (unary pull) folds profiles into SQLite, ordered subscription, {n:,} events", pull_rate,
        "events/s", STREAMING, stream_rate, "none", None,
        f"ratio {ratio:.0%}; {n:,} events of {distinct:,} customers; ordering allows one batch in flight per "
        f"customer; published first at {published:,.0f} events/s, consumption timed alone")]


def _latencies(url: str, events: list[EventBase], stamps: _Stamps, progress: Progress,
               label: str) -> tuple[np.ndarray, np.ndarray]:
    """Publish each event to ``url`` once the one before it is consumed (after a pause: the consumer idles).
    Seconds from the append's call until the consumer stamped the event, and until the append returned."""
    task = progress.add_task(f"latency, {label}", total=len(events))
    time.sleep(1.0)  # the consumer is in its first wait for messages
    seconds, appends = [], []
    log = open_log(url)
    try:
        for event in events:
            start = time.perf_counter()
            log.append([event])
            appends.append(time.perf_counter() - start)
            if not stamps.wait(lambda e=event: e.event_id in stamps.at, EVENT_TIMEOUT_S):  # type: ignore[misc]
                raise RuntimeError(f"{label}: event {event.event_id} not consumed within {EVENT_TIMEOUT_S:.0f} s")
            seconds.append(stamps.at[event.event_id] - start)
            progress.advance(task)
            time.sleep(0.05)
    finally:
        log.close()
    return np.array(seconds), np.array(appends)


def _latency(folder: Path, progress: Progress) -> list[BenchResult]:
    """Publish-to-applied latency of single events: ours (pull, fold, commit) beside streaming pull (decode), each
    on a topic of its own, so neither finds the other's events waiting."""
    events = synthetic_events(LATENCY_EVENTS, LATENCY_EVENTS, seed=8)
    url, ours, _ = _topic("latency-pull")
    stamps = _Stamps()
    with _pull_consumer(ours, folder, stamps):
        pull, pull_appends = _latencies(url, events, stamps, progress, "pull consumer")
    _delete(parse_pubsub_url(url))
    url, _, baseline = _topic("latency-streaming")
    stamps = _Stamps()
    with _streaming_consumer(baseline, url, stamps):
        stream, stream_appends = _latencies(url, events, stamps, progress, "streaming pull")
    _delete(parse_pubsub_url(url))
    append_ms = np.median(np.concatenate([pull_appends, stream_appends])) * 1e3
    results = []
    for q in (50, 99):
        ours_ms, base_ms = np.percentile(pull, q) * 1e3, np.percentile(stream, q) * 1e3
        results.append(BenchResult(
            AREA, f"one event, publish to applied, p{q} ({LATENCY_EVENTS} events one after another, idle consumer)",
            ours_ms, "ms", STREAMING, base_ms, "none", None,
            f"ratio {ours_ms / base_ms:.0%}; ours: pull, fold, commit; the append alone (publisher's batching wait and "
            f"the server's acknowledgement) takes {append_ms:.1f} ms at the median"))
    return results


def run(quick: bool = False) -> list[BenchResult]:
    """Throughput and latency of the Pub/Sub consumer beside streaming pull, on the emulator (none without one)."""
    n, customers = (2_000, 400) if quick else (10_000, 2_000)
    with tempfile.TemporaryDirectory(prefix="ame-bench-pubsub-") as tmp:
        folder = Path(tmp)
        try:
            with _emulator(folder) as host, _environment(PUBSUB_EMULATOR_HOST=host, AME_HOME=str(folder)), \
                    Progress(transient=True) as progress:
                return _throughput(folder, n, customers, progress) + _latency(folder, progress)
        except EmulatorUnavailable as why:
            Console().print(f"[yellow]pubsub: no emulator, no results:[/] {why}")
            return []


if __name__ == "__main__":
    import argparse

    from benchmarks.__main__ import print_results

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 events over 400 customers instead of 10,000 over 2,000.")
    print_results(run(quick=parser.parse_args().quick))
