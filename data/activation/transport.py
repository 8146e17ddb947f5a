"""HTTP for the destinations: a token bucket, retries with exponential backoff and full jitter, Retry-After.

Stdlib only (``urllib``), so a destination needs no client library. Time goes through a :class:`Clock`, so
tests run the backoff and the rate limit on a fake clock without sleeping.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from data.activation.config import RateLimit, RetryPolicy
from data.activation.errors import DestinationError

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 600.0  # a longer Retry-After ends the run's attempts instead of blocking it
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Clock(Protocol):
    """Monotonic time and sleeping, swappable in tests."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wall(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wall(self) -> float:
        return time.time()


@dataclass
class FakeClock:
    """A clock whose sleeps only advance time and are recorded (``sleeps``)."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; :meth:`acquire` waits for a token.

    :param rate: tokens added per second.
    :param burst: bucket size (the longest burst of requests).
    :param clock: time source.
    """

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock.monotonic()
        self.waited_s = 0.0

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping until they are there; returns the seconds waited."""
        waited = 0.0
        for _ in range(10_000):  # bounded: each round either returns or sleeps exactly the deficit
            now = self.clock.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= tokens - 1e-9:
                self.tokens -= tokens
                self.waited_s += waited
                return waited
            deficit = (tokens - self.tokens) / self.rate
            self.clock.sleep(deficit)
            waited += deficit
        raise RuntimeError("token bucket did not refill; is the clock advancing?")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def retry_after_seconds(value: str | None, now_wall: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_wall)


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)] (attempt 0 is the first retry)."""
    return rng.uniform(0.0, min(policy.max_delay_s, policy.base_delay_s * (2**attempt)))


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    slept_s: float = 0.0


class HttpTransport:
    """Sends requests under one rate limit and retry policy (one transport per sync run).

    :param retry: attempts, backoff base and cap, timeout.
    :param rate_limit: the token bucket's rate and burst.
    :param clock: time source (a :class:`FakeClock` in tests).
    :param rng: randomness of the jitter (seeded in tests).
    """

    def __init__(self, retry: RetryPolicy, rate_limit: RateLimit, clock: Clock | None = None,
                 rng: random.Random | None = None) -> None:
        self.retry = retry
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(rate_limit.requests_per_second, rate_limit.burst, self.clock)
        self.stats = TransportStats()

    def _once(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> HttpResponse:
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=self.retry.timeout_s) as response:
                return HttpResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, dict(error.headers.items()) if error.headers else {}, error.read() or b"")

    def request(self, method: str, url: str, json_body: Any = None, headers: Mapping[str, str] | None = None,
                body: bytes | None = None) -> HttpResponse:
        """Send one request, retrying 429/5xx and network errors; returns the final non-retryable response.

        Raises :class:`DestinationError` (``retryable=True``) once the attempts are spent.
        """
        all_headers = {"Accept": "application/json", **(headers or {})}
        if json_body is not None:
            body = orjson.dumps(json_body)
            all_headers.setdefault("Content-Type", "application/json")
        last = "no attempt made"
        last_status: int | None = None
        for attempt in range(self.retry.max_attempts):
            self.bucket.acquire()
            self.stats.requests += 1
            wait: float | None = None
            try:
                response = self._once(method, url, body, all_headers)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
                last, last_status = f"{method} {url}: {error}", None
            else:
                if response.status not in RETRYABLE_STATUS:
                    return response
                last_status = response.status
                last = f"{method} {url}: HTTP {response.status} {response.body[:200].decode('utf-8', 'replace')}"
                if response.status == 429:
                    self.stats.throttled += 1
                header = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
                wait = retry_after_seconds(header, self.clock.wall())
            if attempt + 1 >= self.retry.max_attempts:
                break
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                last += f" (Retry-After {wait:.0f}s is longer than {MAX_RETRY_AFTER_S:.0f}s: run the sync later)"
                break
            delay = backoff_delay(attempt, self.retry, self.rng) if wait is None else wait
            log.info("retrying in %.2fs after %s (attempt %d/%d)", delay, last, attempt + 1, self.retry.max_attempts)
            self.stats.retries += 1
            self.stats.slept_s += delay
            self.clock.sleep(delay)
        raise DestinationError(
            f"{last} (gave up after {self.retry.max_attempts} attempts; raise retry.max_attempts or lower"
            " rate_limit.requests_per_second if the destination keeps throttling)",
            status=last_status, retryable=True,
        )


def raise_for_status(response: HttpResponse, what: str) -> None:
    """A :class:`DestinationError` for a non-2xx response, with a hint for auth failures."""
    if 200 <= response.status < 300:
        return
    text = response.body[:500].decode("utf-8", "replace")
    hint = ""
    if response.status in (401, 403):
        hint = " (check the token in the destination's *_env variable and its scopes)"
    raise DestinationError(f"{what}: HTTP {response.status}: {text}{hint}", status=response.status)
