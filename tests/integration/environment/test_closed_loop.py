"""The engine in a closed-loop market: the market carries out the journey agent's decisions, a rerun writes the
same events, and ``ame lift`` measures treated against the holdout from the log alone."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import in_holdout
from ame.cli import app
from ame.closed_loop import ClosedLoopError, engine_decisions, in_process_agents, run_closed_loop
from data.log import open_log
from environment.config import load_market_config
from environment.stream import SimulatedMarket
from policies.lift import live_lift

runner = CliRunner()


def run(folder: Path, customers: int = 300, days: int = 8, seed: int = 5, holdout: float = 0.2) -> tuple[str, object]:
    url = f"sqlite:///{folder / 'events.db'}"
    agent = JourneyAgent(JourneyConfig(holdout_share=holdout, policies_dir=folder / "registry"))
    log = open_log(url)
    with in_process_agents(agent, url, folder / "agents", shards=2) as engine:
        report = run_closed_loop(log, SimulatedMarket(customers, days, seed), engine, days)
    log.close()
    return url, report


def _events(url: str) -> list:
    log = open_log(url)
    try:
        return list(log.read(0, 1_000_000).events)
    finally:
        log.close()


def test_the_market_carries_out_the_engines_decisions(tmp_path: Path) -> None:
    url, report = run(tmp_path)
    assert report.decisions == 300 * 8 and report.contacts > 300
    events = _events(url)
    decisions = {e.event_id: orjson.loads(e.properties_json) for e in events
                 if e.event_type == "decision_made" and e.source == "agent:journey"}
    assert not [e for e in events if e.event_type == "decision_made" and e.source == "simulator"]
    sent = {"email_sent": "email", "offer_sent": "offer", "sms_sent": "sms", "push_sent": "push"}
    carried = [e for e in events if e.event_type in sent]
    assert carried
    for e in carried:  # every message names the engine's decision, and is the action it took
        decision = decisions[orjson.loads(e.properties_json)["decision_id"]]
        assert decision["action"] == sent[e.event_type] and decision["agent"] == "journey"
    arms = {(d["holdout"], d["policy_name"]) for d in decisions.values()}
    assert arms == {(False, "offer_every_k"), (True, "email_every_k")}  # the holdout gets the control policy
    held = {e.customer_id for e in events if e.source == "agent:journey" and orjson.loads(e.properties_json)["holdout"]}
    assert held == {f"sim5-c{n:07d}" for n in range(300) if in_holdout(f"sim5-c{n:07d}", 0.2)}


def test_a_rerun_writes_the_same_events(tmp_path: Path) -> None:
    first, _ = run(tmp_path / "a")
    second, _ = run(tmp_path / "b")
    key = [(e.event_id, e.event_type, e.customer_id, e.occurred_at_us, e.properties_json) for e in _events(first)]
    assert key == [(e.event_id, e.event_type, e.customer_id, e.occurred_at_us, e.properties_json) for e in _events(second)]


def test_a_market_without_an_engine_is_refused(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    market = SimulatedMarket(20, 2, 1)
    log.append(list(market.arrivals()))
    with pytest.raises(ClosedLoopError, match="are the agents running"):
        engine_decisions(log, 0, market, 0)


def test_the_live_lift_and_the_three_numbers_from_the_command_line(tmp_path: Path) -> None:
    env = {"AME_HOME": str(tmp_path / "home"), "AME_POLICIES_DIR": str(tmp_path / "registry"), "AME_AGENT_HOLDOUT_SHARE": "0.3"}
    url = f"sqlite:///{tmp_path / 'events.db'}"
    result = runner.invoke(app, ["sim", "run", "--closed-loop", "--customers", "600", "--days", "10", "--seed", "2",
                                 "--log", url], env=env)
    assert result.exit_code == 0, result.output
    assert "treated" in result.output and "holdout" in result.output
    out = tmp_path / "lift.json"
    result = runner.invoke(app, ["lift", "--log", url, "--compare", "--seeds", "3", "--json", str(out)], env=env)
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    numbers = figures["three_numbers"]
    assert (numbers["served"], numbers["control"], numbers["days"]) == ("offer_every_k@builtin", "email_every_k@builtin", 10)
    live = numbers["live"]
    assert live["treated"]["customers"] + live["holdout"]["customers"] == 600
    assert live["lift"]["low"] <= numbers["predicted_lift"]["value"] <= live["lift"]["high"]
    assert numbers["ope"]["snips"]["value"] == pytest.approx(live["treated"]["profit"]["value"], rel=1e-9)
    bad = runner.invoke(app, ["sim", "run", "--closed-loop", "--policy", "offer_every_k", "--log", url], env=env)
    assert bad.exit_code != 0 and "promote" in bad.output


def test_the_live_lift_reads_the_log_alone(tmp_path: Path) -> None:
    url, _ = run(tmp_path, customers=400, days=6, holdout=0.25)
    lift = live_lift(open_log(url), load_market_config().journey)
    assert lift.treated.customers + lift.holdout.customers == 400
    assert lift.treated.profit.low <= lift.treated.profit.value <= lift.treated.profit.high
    assert lift.lift.value == pytest.approx(lift.treated.profit.value - lift.holdout.profit.value)
