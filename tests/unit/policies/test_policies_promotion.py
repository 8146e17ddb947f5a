"""``ame policies promote``: the gate (the simulator and OPE on the engine's log, against the policy serving now),
the slot it writes for the agents and the API, and the promotion events in the log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import AgentShard, ShardConfig
from ame.cli import app
from data.log import open_log
from environment.belief_planner import ActsOnBelief
from environment.heuristics import heuristic_policy
from environment.stream import stream_market
from policies.slots import SlotPointers, SlotTarget

runner = CliRunner()
GATE = ["--gate-seeds", "3", "--gate-customers", "400"]


def promotions(log_url: str) -> list[dict]:
    log = open_log(log_url)
    try:
        events = log.read(0, 1000, ["policy_promotion"]).events
        return [orjson.loads(e.properties_json) for e in events]
    finally:
        log.close()


@pytest.fixture
def where(tmp_path: Path) -> dict[str, str]:
    return {"registry": str(tmp_path / "registry"), "log": f"sqlite:///{tmp_path / 'events.db'}"}


def promote(where: dict[str, str], *args: str):
    return runner.invoke(app, ["policies", "promote", *args, "--registry", where["registry"], "--log", where["log"], *GATE])


def test_a_worse_policy_is_refused_with_its_figures_and_the_slot_keeps_serving(where: dict[str, str]) -> None:
    result = promote(where, "no_contact")
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "worse" in result.output
    assert SlotPointers(where["registry"]).target("journey") == SlotTarget("offer_every_k", "builtin")
    [event] = promotions(where["log"])
    assert (event["outcome"], event["policy_name"], event["previous_name"]) == ("refused", "no_contact", "offer_every_k")
    assert event["context"]["check0"] == "profit per customer (simulator)" and event["context"]["check0_high"] < 0


def test_a_better_policy_goes_live_for_the_agents_and_a_forced_one_is_recorded(where: dict[str, str], tmp_path: Path) -> None:
    forced = promote(where, "email_every_k", "--force")
    assert forced.exit_code == 0 and "forced" in forced.output
    agent = JourneyAgent(JourneyConfig(policies_dir=Path(where["registry"])))
    assert agent.serving().name == "email_every_k"
    better = promote(where, "offer_every_k")
    assert better.exit_code == 0, better.output
    assert "promoted" in better.output and "worse" not in better.output
    assert agent.serving().name == "offer_every_k"  # the running agent follows the slot
    assert [e["outcome"] for e in promotions(where["log"])] == ["forced", "promoted"]


def test_the_gate_reads_the_engines_log_when_it_holds_decisions(where: dict[str, str], tmp_path: Path) -> None:
    policy = "offer_every_k-eps0.2"
    stream_market(open_log(where["log"]), 300, 15, policy=policy, seed=4, ticks=True)
    shard = AgentShard(JourneyAgent(JourneyConfig(holdout_share=0.0), policy=heuristic_policy(policy)),
                       ShardConfig(log_url=where["log"], state_dir=tmp_path / "agents"), start=False)
    shard.catch_up()
    shard.close()
    result = promote(where, "no_contact")
    assert result.exit_code == 1 and "skipped" not in result.output
    context = promotions(where["log"])[-1]["context"]
    assert (context["check1"], context["check2"]) == ("snips per customer (engine's log)", "dr per customer (engine's log)")
    assert context["check1_high"] < 0  # no contact at all is worse on the log too


def test_an_unknown_policy_or_slot_is_named(where: dict[str, str]) -> None:
    result = promote(where, "nope")
    assert result.exit_code == 2 and "nope" in result.output
    result = promote(where, "offer_every_k", "--slot", "checkout")
    assert result.exit_code == 2 and "journey, bidding" in result.output


def test_the_belief_planner_goes_live_through_the_gate_and_the_agents_serve_it(where: dict[str, str], tmp_path: Path) -> None:
    """The servable planner is promoted by name like a built-in heuristic; the gate compares it in the simulator and,
    from the belief each logged decision carries, on the engine's log; the agent then serves it."""
    stream_market(open_log(where["log"]), 200, 6, policy="offer_every_k-eps0.2", seed=4, ticks=True)
    config = JourneyConfig(holdout_share=0.0, log_belief=True)  # the belief logged: a belief candidate can be judged
    shard = AgentShard(JourneyAgent(config, policy=heuristic_policy("offer_every_k-eps0.2")),
                       ShardConfig(log_url=where["log"], state_dir=tmp_path / "agents"), start=False)
    shard.catch_up()
    shard.close()
    result = promote(where, "belief_lookahead_u4_grid", "--force")
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.output
    context = promotions(where["log"])[-1]["context"]
    assert (context["check1"], context["check2"]) == ("snips per customer (engine's log)", "dr per customer (engine's log)")
    agent = JourneyAgent(JourneyConfig(policies_dir=Path(where["registry"])))
    assert agent.serving().name == "belief_lookahead_u4_grid"
    assert isinstance(agent.serving().policy, ActsOnBelief)


def test_a_slot_refuses_the_exact_planner_and_names_the_servable_one(where: dict[str, str]) -> None:
    result = promote(where, "belief_lookahead_u4", "--force")
    assert result.exit_code != 0
    assert "belief_lookahead_u4_grid" in result.output


class _SinkOnly:
    """A log that takes appends and keeps no history to read (the shape of a Pub/Sub log)."""

    def append(self, events):  # pragma: no cover - never called by the gate
        raise AssertionError("the gate only reads")


def test_the_gate_skips_the_logs_check_with_its_reason_on_a_log_without_history() -> None:
    from policies.promotion import GateSettings, log_checks

    policy = heuristic_policy("offer_every_k")
    checks, why = log_checks(_SinkOnly(), policy, policy, GateSettings())
    assert checks == [] and "keeps no history" in why and "--log" in why
