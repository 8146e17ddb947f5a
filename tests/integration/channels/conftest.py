"""Fixtures of the channel tests: a provider stub on 127.0.0.1 answering like SendGrid, Twilio and FCM, the
providers pointed at it, and a log holding one consenting customer with a journey decision to send an e-mail."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import AgentShard, ShardConfig
from channels.config import FcmConfig, ProvidersConfig, SendGridConfig, TwilioConfig
from channels.dispatcher import DispatchAgent, DispatchConfig
from data.activation.config import RetryPolicy
from data.events import ConsentChanged, LeadCreated
from data.log import open_log
from data.settings import get_settings
from data.ticks import tick_event, tick_time
from environment.population import ACTIONS
from serve.decide import PacingCache
from serve.engine import Engine, ServeArgs, Tunables
from serve.routes import build_api
from tests.integration.activation.activation_stub import StubRequest, StubResponse, StubServer

DAY = date(2026, 3, 2)
CUSTOMER = "cust-1"


class Always:
    """A journey policy that always proposes one action."""

    def __init__(self, action: str) -> None:
        self.name = f"always_{action}"
        self.action = ACTIONS.index(action)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        return np.full(len(np.atleast_2d(observation)), self.action, dtype=np.int64), state


def provider_answers(request: StubRequest, ids: Iterator[int]) -> StubResponse:
    """What each provider answers a send with: its own shape of message id."""
    n = next(ids)
    if request.path == "/v3/mail/send":
        return StubResponse(202, b"", {"X-Message-Id": f"sgmsg{n}"})
    if request.path.endswith("/Messages.json"):
        return StubResponse(201, {"sid": f"SM{n:032d}", "status": "queued"})
    if request.path.endswith("/messages:send"):
        return StubResponse(200, {"name": f"projects/ame-test/messages/0:{n}"})
    return StubResponse(404, {"error": "unknown path"})


@pytest.fixture
def provider_stub() -> Iterator[StubServer]:
    server = StubServer()
    ids = itertools.count(1)
    server.responder = lambda request: provider_answers(request, ids)
    try:
        yield server
    finally:
        server.close()


def providers_at(url: str) -> ProvidersConfig:
    return ProvidersConfig(
        sendgrid=SendGridConfig(url=url, api_key=SecretStr("sg-key"), sender="news@example.com"),
        twilio=TwilioConfig(url=url, account_sid="AC123", auth_token=SecretStr("tw-token"), sender="+15550000000"),
        fcm=FcmConfig(url=url, project="ame-test", access_token=SecretStr("fcm-token")),
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.0, timeout_s=5.0))


def dispatch_agent(url: str, state_url: str) -> DispatchAgent:
    return DispatchAgent(DispatchConfig(clock="event", ledger_url=state_url, providers=providers_at(url)))


def customer_events(at: datetime, consent: dict[str, bool]) -> list[Any]:
    lead = LeadCreated.model_validate({
        "event_id": "lead-1", "customer_id": CUSTOMER, "occurred_at": at,
        "properties": {"email": "ann@example.com", "phone": "+15551234567", "push_token": "fcm-token-of-ann"}})
    grants = [ConsentChanged.model_validate({"event_id": f"consent-{ch}", "customer_id": CUSTOMER, "occurred_at": at,
                                            "properties": {"channel": ch, "granted": g}}) for ch, g in consent.items()]
    return [lead, *grants]


def decide(log_url: str, state_dir: Path, action: str, day: date = DAY) -> None:
    """The journey agent (as one shard, in this process) decides ``action`` for the customer on ``day``'s tick."""
    log = open_log(log_url)
    try:
        log.append([tick_event(day)])
    finally:
        log.close()
    agent = JourneyAgent(JourneyConfig(holdout_share=0.0), policy=Always(action))
    run_shard(agent, log_url, state_dir)


def append(log_url: str, events: list[Any]) -> None:
    log = open_log(log_url)
    try:
        log.append(events)
    finally:
        log.close()


def run_shard(agent: Any, log_url: str, state_dir: Path) -> None:
    shard = AgentShard(agent, ShardConfig(log_url=log_url, state_dir=state_dir, state_store=""), start=False)
    try:
        shard.catch_up()
    finally:
        shard.close()


def events_of(log_url: str, *types: str) -> list[Any]:
    log = open_log(log_url)
    try:
        batch = log.read(0, 10_000, list(types))
    finally:
        log.close()
    return [e.to_event() for e in batch.events]


def morning(day: date = DAY) -> datetime:
    return tick_time(day) - timedelta(hours=1)


@contextmanager
def decision_api(tmp_path: Path, log_url: str, state_url: str) -> Iterator[TestClient]:
    """The decision API in-process on this log and state store, reading the settings as the environment has them."""
    get_settings.cache_clear()
    args = ServeArgs(event_log=log_url, state_store=state_url, api_keys=[], pacing_from_agents=False,
                     agent_state_dir=str(tmp_path / "agents"), agent_shards=1)
    engine = Engine(args, Tunables(poll_interval_s=0.05), pacing=PacingCache(lambda c: {}))
    try:
        yield TestClient(build_api(engine))
    finally:
        engine.close()
