"""The Pub/Sub consumers keep their state on PostgreSQL when ``AME_STATE_STORE`` names it: a shard killed and started
again with another node's folder (nothing on its disk) resumes from the shared state, and the projector folds the profiles into
that database, where Serve reads them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.projector import ProjectorConfig
from agents.pubsub_projector import PubSubProjectionRunner
from agents.pubsub_shard import PubSubAgentShard, pubsub_shard_actor_class
from agents.scoring import ScoringAgent
from data.log import open_log
from data.log.pubsub import encode_event
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings
from tests.integration.pubsub.test_pubsub_agents import warm_lead
from tests.unit.privacy.test_privacy_pubsub import FakeMessage

pytestmark = pytest.mark.emulator
WAIT_S = 60.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_S:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_a_shard_resumes_from_the_shared_state_on_another_node(ray_cluster, pubsub_emulator: str, pubsub_url: str,
                                                               postgres_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ray = ray_cluster
    shared = {"AME_STATE_STORE": postgres_url, "AME_KEY_STORE": postgres_url, "AME_PUBSUB_DEAD_LETTER_STORE": postgres_url,
              "AME_PUBSUB_ACK_DEADLINE_S": "10"}  # what a killed shard held comes again after this
    for name, value in shared.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    def shard_on(node: str) -> Any:  # a node's environment: its own AME_HOME; the state store from AME_STATE_STORE
        env = {**shared, "PUBSUB_EMULATOR_HOST": pubsub_emulator, "AME_HOME": str(tmp_path / node)}
        return pubsub_shard_actor_class().options(runtime_env={"env_vars": env}).remote(
            ScoringAgent(), pubsub_url, tmp_path / node / "agents")

    def status(actor: Any) -> dict[str, Any]:
        return ray.get(actor.status.remote(), timeout=30)

    log = open_log(pubsub_url)
    first = shard_on("node-a")
    try:
        assert status(first)["running"]
        log.append(warm_lead("lead-1"))
        wait_until(lambda: status(first)["applied"] >= 13, "the first shard to apply lead-1's 13 events")
    finally:
        ray.kill(first, no_restart=True)  # its node is gone: nothing it held unacked is lost, only redelivered
    monkeypatch.setenv("AME_HOME", str(tmp_path / "node-b"))  # the second node: a fresh disk
    get_settings.cache_clear()
    second = PubSubAgentShard(ScoringAgent(), pubsub_url, tmp_path / "node-b" / "agents", start=False)
    try:
        assert second.records()["lead-1"]["counts"]["page_view"] == 10 and second.status()["position"] == 13
        # fed straight to its consumer: which messages come again, and when, is up to the server
        again = warm_lead("lead-1")[:3] + warm_lead("lead-2")  # 3 delivered again (same ids), 13 new
        messages = [FakeMessage(encode_event(e, 1), {"event_type": e.event_type, "event_id": e.event_id}) for e in again]
        second.subscriber._process(messages)
        assert all(m.acked == [True] for m in messages)
        records = second.records()
        assert records["lead-1"]["counts"] == {"lead_created": 1, "page_view": 10, "email_click": 2}
        assert records["lead-2"]["counts"]["page_view"] == 10
        assert second.status()["position"] == 26  # the 3 delivered again were not applied again
    finally:
        second.stop()
        log.close()
    assert not [p for node in ("node-a", "node-b") for p in (tmp_path / node).rglob("*.db*")], "state on a node's disk"


def test_the_pubsub_projector_folds_profiles_into_postgres(pubsub_url: str, postgres_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    runner = PubSubProjectionRunner(ProjectorConfig.from_settings(pubsub_url, postgres_url, get_settings()))
    log = open_log(pubsub_url)
    store = open_state_store(postgres_url)
    try:
        log.append(warm_lead("lead-3"))

        def folded() -> bool:
            with store.reading() as conn:
                profile = ProfileProjection().load(conn, ["lead-3"]).get("lead-3")
            return profile is not None and profile.to_dict()["events_total"] == 13

        wait_until(folded, "the projector to fold lead-3's 13 events into PostgreSQL")
        assert runner.status()["position"] == 13
    finally:
        runner.stop()
        store.close()
        log.close()
    assert not list(tmp_path.rglob("state.db*"))
