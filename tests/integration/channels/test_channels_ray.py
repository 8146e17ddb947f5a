"""The dispatch agent as `ame agents up` runs it: a Ray actor the supervisor starts beside the journey agent, the providers read
from AME_CHANNELS_* in the actors' environment, a decision sent to the stub once."""

from __future__ import annotations

import time
from pathlib import Path

from agents.journey import JourneyAgent, JourneyConfig
from agents.supervisor import AgentSupervisor
from channels.dispatcher import DispatchAgent, DispatchConfig
from data.log import open_log
from data.ticks import tick_event
from environment.heuristics import EmailEveryK
from tests.integration.activation.activation_stub import StubServer
from tests.integration.channels.conftest import CUSTOMER, DAY, customer_events, events_of, morning


def test_the_supervisor_runs_the_dispatch_agent_and_a_decision_reaches_the_provider(
        ray_cluster: object, tmp_path: Path, log_url: str, state_url: str, provider_stub: StubServer) -> None:
    log = open_log(log_url)
    log.append([*customer_events(morning(), {"email": True}), tick_event(DAY)])
    log.close()
    agents = [JourneyAgent(JourneyConfig(holdout_share=0.0), policy=EmailEveryK(k=1)),
              DispatchAgent(DispatchConfig(clock="event", ledger_url=state_url))]
    env = {"AME_CHANNELS_SENDGRID_URL": provider_stub.url, "AME_CHANNELS_SENDGRID_API_KEY": "sg-key",
           "AME_CHANNELS_EMAIL_FROM": "news@example.com"}
    sup = AgentSupervisor(log_url, tmp_path / "state", agents, shards=1, namespace="test-channels", env=env)
    sup.up()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not events_of(log_url, "email_sent"):
            time.sleep(0.1)
        [sent] = events_of(log_url, "email_sent")
        assert sup.wait_caught_up(30)
        statuses = {(s["agent"], s["shard"]): s for s in sup.status()}
        assert ("dispatch", 0) in statuses and ("journey", 0) in statuses
        assert all(s["errors"] == 0 for s in statuses.values())
    finally:
        sup.down()
    assert sent.customer_id == CUSTOMER and sent.properties.provider_message_id == "sgmsg1"
    [request] = provider_stub.requests
    assert request.headers["authorization"] == "Bearer sg-key"
