"""Token bucket, backoff with jitter and Retry-After, on a fake clock (no sleeping)."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from data.activation.config import RetryPolicy
from data.activation.destinations.google_ads import (
    normalize_email,
    normalize_phone,
    sha256_hex,
)
from data.activation.transport import (
    FakeClock,
    TokenBucket,
    backoff_delay,
    retry_after_seconds,
)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.acquire() == 0
    for _ in range(10):
        bucket.acquire()
    assert clock.now == pytest.approx(10 / 5)
    clock.sleep(100)  # idle time refills to the burst, not beyond
    for _ in range(3):
        assert bucket.acquire() == 0
    assert bucket.acquire() == pytest.approx(0.2)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4)
    rng = random.Random(1)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (8, 4.0)]:
        delays = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= cap and max(delays) > cap * 0.8


def test_retry_after_in_seconds_or_http_date() -> None:
    assert retry_after_seconds("12", 0) == 12
    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), 1_000_000) == pytest.approx(30)
    assert retry_after_seconds("soon", 0) is None and retry_after_seconds(None, 0) is None


def test_customer_match_email_normalization() -> None:
    assert normalize_email("  Jane.Doe@GMAIL.com ") == "jane.doe@gmail.com"
    assert normalize_email("Jane.Doe@gmail.com", remove_gmail_dots=True) == "janedoe@gmail.com"
    assert normalize_email("j.d@googlemail.com", remove_gmail_dots=True) == "jd@googlemail.com"
    assert normalize_email("j.d@example.com", remove_gmail_dots=True) == "j.d@example.com"
    assert normalize_email("no-at-sign") is None


def test_customer_match_phone_is_e164() -> None:
    assert normalize_phone("+1 (415) 555-0100") == "+14155550100"
    assert normalize_phone("415.555.0100") == "+14155550100"
    assert normalize_phone("0044 20 7946 0958") == "+442079460958"
    assert normalize_phone("020 7946 0958", default_country_code="44") == "+442079460958"
    assert normalize_phone("12") is None and normalize_phone("") is None


def test_sha256_is_lowercase_hex_of_the_normalized_value() -> None:
    assert sha256_hex("test@gmail.com") == "87924606b4131a8aceeeae8868531fbb9712aaa07a5d3a756b26ce0f5d6ca674"
