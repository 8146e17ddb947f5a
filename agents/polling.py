"""The background loop that agent shards and projectors share: poll the log, back off after a failure, pace, and
measure.

A consumer gives :class:`PollingLoop` its ``step`` (process one batch, return the positions it moved past, 0 when
caught up). The loop calls it on a daemon thread: it waits ``poll_interval_s`` when caught up; after a failure it
counts the error, keeps its message, and retries the batch (from the consumer's last commit) after a wait that
doubles up to ``max_backoff_s``; with ``max_rate`` it sleeps off what a batch read faster than that.
:class:`RateMeter` gives the events/s a status reports, and :func:`was_reconstructed` tells a restarted Ray actor
from a first start.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopTiming:
    """How a :class:`PollingLoop` paces itself.

    :param poll_interval_s: the wait when caught up (and the first wait after a failure).
    :param max_backoff_s: the longest wait after failures in a row.
    :param stop_timeout_s: how long :meth:`PollingLoop.stop` waits for the batch in hand.
    :param max_rate: most positions per second (None: no limit).
    """

    poll_interval_s: float
    max_backoff_s: float
    stop_timeout_s: float
    max_rate: float | None = None


class RateMeter:
    """Events per second over the last ``window`` batches; 0 once no batch came for ``idle_s``."""

    def __init__(self, window: int, idle_s: float) -> None:
        self.total = 0
        self.idle_s = idle_s
        self._samples: deque[tuple[float, int]] = deque(maxlen=window)

    def add(self, events: int) -> None:
        self.total += events
        self._samples.append((time.monotonic(), self.total))

    def per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if time.monotonic() - t1 < self.idle_s and t1 > t0 else 0.0


class PollingLoop:
    """Calls ``step`` on a background thread until stopped (see the module docstring).

    :param name: the thread's name and the name in the logs.
    :param step: processes one batch; returns the positions it moved past (0: caught up).
    :param timing: the waits.
    """

    def __init__(self, name: str, step: Callable[[], int], timing: LoopTiming) -> None:
        self.name = name
        self.step = step
        self.timing = timing
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the thread (idempotent)."""
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return True

    def stop(self) -> bool:
        """Stop after the batch in hand (idempotent); waits at most ``stop_timeout_s`` for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timing.stop_timeout_s)
        return True

    def _run(self) -> None:
        timing = self.timing
        backoff = timing.poll_interval_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                moved = self.step()
            except Exception as error:  # keep consuming; the batch is retried from the last commit
                self.errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("%s: batch failed, retrying from the last commit in %.2f s", self.name, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, timing.max_backoff_s)
                continue
            backoff = timing.poll_interval_s
            if moved == 0:
                self._stop.wait(timing.poll_interval_s)
            elif timing.max_rate:
                spare = moved / timing.max_rate - (time.monotonic() - started)
                if spare > 0:
                    self._stop.wait(spare)


def catch_up(step: Callable[[], int], max_batches: int | None = None) -> int:
    """Call ``step`` until it reports nothing left (or ``max_batches`` times); the positions moved past."""
    done = batches = 0
    while max_batches is None or batches < max_batches:
        moved = step()
        if moved == 0:
            break
        done += moved
        batches += 1
    return done


def was_reconstructed() -> bool:
    """Whether this process is a Ray actor that Ray restarted after a failure (False outside Ray)."""
    ray = sys.modules.get("ray")  # only inside a Ray worker; a plain shard or projector never imports Ray
    if ray is None or not ray.is_initialized():
        return False
    try:
        context = ray.get_runtime_context()
        return context.get_actor_id() is not None and bool(context.was_current_actor_reconstructed)
    except Exception:  # noqa: BLE001 - not in an actor
        return False
