"""The journey agent's decide() without Ray: decisions at the tick, consent, the frequency cap, quiet hours, the
holdout, what is logged for off-policy evaluation, and the serving slot."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from agents.cli import KNOWN, build_agents
from agents.journey import JourneyAgent, JourneyConfig
from agents.journey_decision import decode_observation
from agents.lift import holdout_lift
from agents.runtime import StateView, in_holdout
from data.events import (
    ConsentChanged,
    CustomerAttributes,
    DecisionMade,
    EmailSent,
    LeadCreated,
    PageView,
    Purchase,
    Unsubscribe,
    validate_event,
)
from data.log import open_log
from data.log.base import StoredEvent
from data.ticks import tick_event
from environment.config import load_market_config
from environment.guardrails import mask_of_bits
from environment.observation import ObservationSpec, attribute_defaults, fold_event, observe_records
from policies.slots import SlotPointers, SlotTarget

DAY0 = date(2025, 3, 3)
T0 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def stored(event, position: int) -> StoredEvent:
    return StoredEvent.of(event, position, 0)


class Always:
    """A policy that always proposes one action."""

    def __init__(self, action: int) -> None:
        self.action, self.name = action, "always"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.full(len(np.atleast_2d(observation)), self.action), state


def view(records: dict | None = None) -> StateView:
    cache = dict(records or {})
    return StateView(cache, lambda keys: {}, lambda: list(cache))


def arrival(cid: str, channels: tuple[str, ...] = ("email",)) -> list:
    events = [LeadCreated(event_id=f"{cid}-lead", customer_id=cid, occurred_at=T0),
              CustomerAttributes(event_id=f"{cid}-attrs", customer_id=cid, occurred_at=T0,
                                 properties={"recency_months": 3, "history": 250.0, "bought_womens": True})]
    events += [ConsentChanged(event_id=f"{cid}-c-{ch}", customer_id=cid, occurred_at=T0,
                              properties={"channel": ch, "granted": True}) for ch in channels]
    return events


def tick(day: int):
    return tick_event(DAY0 + timedelta(days=day))


class Run:
    """Feeds events to an agent batch by batch, keeping its state between batches (as a shard does)."""

    def __init__(self, agent: JourneyAgent) -> None:
        self.agent, self.records, self.position = agent, {}, 0

    def feed(self, events: list) -> list:
        batch = []
        for e in events:
            self.position += 1
            batch.append(stored(e, self.position))
        v = view(self.records)
        out = self.agent.decide(batch, v)
        self.records.update(v.changes)
        return out


def not_held_out(n: int = 1) -> list[str]:
    return [c for c in (f"c{i}" for i in range(1000)) if not in_holdout(c, 0.05)][:n]


def test_the_agent_decides_at_the_daily_tick_once_per_customer() -> None:
    run = Run(JourneyAgent(JourneyConfig(holdout_share=0.0), policy=Always(0)))
    assert run.feed(arrival("a") + arrival("b")) == []  # no decision before the tick
    out = run.feed([tick(0)])
    assert sorted(d.customer_id for d in out) == ["a", "b"]
    assert len({d.event_id for d in out}) == 2 and all(d.causation_id == tick(0).event_id for d in out)


def test_the_frequency_cap_counts_sent_contacts_and_the_agents_own_pending_ones() -> None:
    cid = not_held_out()[0]
    run = Run(JourneyAgent(JourneyConfig(), policy=Always(1)))  # always e-mail
    run.feed(arrival(cid))
    assert run.feed([tick(0)])[0].properties.action == "email"
    day1 = run.feed([tick(1)])[0].properties  # decided yesterday, not yet sent: still capped (2-day cap)
    assert (day1.action, day1.context["suppressed"]) == ("wait", "frequency_cap")
    assert run.feed([tick(2)])[0].properties.action == "email"
    sent = EmailSent(event_id="s2", customer_id=cid, occurred_at=T0 + timedelta(days=2, hours=9), properties={})
    obs = decode_observation(run.feed([sent, tick(3)])[0].properties.context["obs"])
    assert obs[12] == 1.0 and obs[14] == 0.0  # the sent e-mail is a fact: capped, contacted yesterday


def test_a_suppressed_send_releases_the_frequency_cap_its_decision_held() -> None:
    cid = not_held_out()[0]
    run = Run(JourneyAgent(JourneyConfig(), policy=Always(1)))  # always e-mail
    run.feed(arrival(cid))
    decided = run.feed([tick(0)])[0]
    assert decided.properties.action == "email"
    suppressed = validate_event({
        "event_id": "sup-1", "event_type": "message_suppressed", "customer_id": cid, "causation_id": decided.event_id,
        "occurred_at": (T0 + timedelta(hours=9)).isoformat(), "source": "dispatch",
        "properties": {"channel": "email", "reason": "consent", "decision_id": decided.event_id}})
    assert run.feed([suppressed, tick(1)])[0].properties.action == "email"  # not sent: no cap to hold


def test_the_agents_decision_is_not_a_contact_fact() -> None:
    cid = not_held_out()[0]
    run = Run(JourneyAgent(JourneyConfig(), policy=Always(1)))
    run.feed(arrival(cid))
    run.feed([tick(0)])
    obs = decode_observation(run.feed([tick(1)])[0].properties.context["obs"])
    assert obs[14] == 1.0 and obs[19] == 0.0  # no e-mail was sent: no contact in the observation


def test_quiet_hours_suppress_a_contact_on_an_event_trigger() -> None:
    cid = not_held_out()[0]
    run = Run(JourneyAgent(JourneyConfig(decide_on=frozenset({"page_view"})), policy=Always(1)))
    run.feed(arrival(cid))
    visit = PageView(event_id="v", customer_id=cid, occurred_at=T0 + timedelta(hours=23), properties={"url": "/"})
    out = run.feed([visit])[0].properties
    assert (out.action, out.context["suppressed"], out.context["proposed"]) == ("wait", "quiet_hours", "email")


def test_consent_must_be_granted_and_a_withdrawal_is_respected() -> None:
    cid = not_held_out()[0]
    run = Run(JourneyAgent(JourneyConfig(), policy=Always(2)))  # sms
    run.feed(arrival(cid, channels=("email",)))
    first = run.feed([tick(0)])[0].properties
    assert (first.action, first.context["suppressed"]) == ("wait", "consent")  # never granted
    grant = ConsentChanged(event_id="g", customer_id=cid, occurred_at=T0 + timedelta(days=1),
                           properties={"channel": "sms", "granted": True})
    assert run.feed([grant, tick(1)])[0].properties.action == "sms"
    unsub = Unsubscribe(event_id="u", customer_id=cid, occurred_at=T0 + timedelta(days=2), properties={"channel": "sms"})
    later = run.feed([unsub, tick(3)])[0].properties
    assert (later.action, later.context["suppressed"]) == ("wait", "consent")


def test_the_holdout_gets_its_policy_and_is_flagged() -> None:
    run = Run(JourneyAgent(JourneyConfig(holdout_share=0.5, holdout_policy="no_contact"), policy=Always(1)))
    cids = [f"c{i}" for i in range(40)]
    run.feed([e for c in cids for e in arrival(c)])
    out = run.feed([tick(0)])
    for d in out:
        held = in_holdout(d.customer_id, 0.5)
        assert d.properties.holdout == held
        assert (d.properties.action, d.properties.policy_name) == (("wait", "no_contact") if held else ("email", "always"))
    assert 5 < sum(d.properties.holdout for d in out) < 35


def test_the_default_policy_is_the_best_tuned_heuristic_and_decisions_are_deterministic(tmp_path) -> None:
    cid = not_held_out()[0]
    config = JourneyConfig(policies_dir=tmp_path)
    events = [*arrival(cid), tick(0)]
    a, b = Run(JourneyAgent(config)).feed(events), Run(JourneyAgent(config)).feed(events)
    assert [e.model_dump() for e in a] == [e.model_dump() for e in b]
    assert (a[0].properties.policy_name, a[0].properties.policy_version) == ("offer_every_k", "builtin")
    assert a[0].properties.action == "offer"


def test_a_decision_logs_what_off_policy_evaluation_needs() -> None:
    cid = not_held_out()[0]
    run = Run(JourneyAgent(JourneyConfig(), policy=Always(3)))  # push, without consent
    events = arrival(cid)
    run.feed(events)
    d = run.feed([tick(0)])[0].properties
    spec = ObservationSpec()
    rec = None
    for e in events:
        rec = fold_event(rec, e.event_type, int(e.occurred_at.timestamp() * 1e6), e.properties.model_dump(), spec)

    expected = observe_records([rec], [(T0.date() - date(1970, 1, 1)).days], spec, attribute_defaults(load_market_config().profile))[0]
    assert np.array_equal(decode_observation(d.context["obs"]), expected)
    assert list(mask_of_bits(d.context["allowed"])) == [True, True, False, False, True, True]
    assert (d.action, d.propensity, d.context["proposed"], d.context["proposed_propensity"]) == ("wait", 1.0, "push", 1.0)


def test_decisions_validate_against_the_schema() -> None:
    run = Run(JourneyAgent(policy=Always(1)))
    run.feed([e for c in not_held_out(3) for e in arrival(c)])
    for d in run.feed([tick(0), tick(1), tick(2)]):
        assert validate_event(d.model_dump(mode="json")) == d


def test_batched_decisions_equal_event_by_event() -> None:
    cids = [f"c{i}" for i in range(30)]
    events = [e for c in cids for e in arrival(c)] + [tick(k) for k in range(4)]
    whole = Run(JourneyAgent()).feed(events)
    one = Run(JourneyAgent())
    one_by_one = [d for e in events for d in one.feed([e])]
    assert [d.event_id for d in whole] == [d.event_id for d in one_by_one]
    assert [d.properties.action for d in whole] == [d.properties.action for d in one_by_one]


def test_every_known_agent_can_be_built() -> None:
    assert [a.name for a in build_agents(list(KNOWN))] == list(KNOWN)


class _Stochastic:
    """A trained-policy stand-in: fixed probabilities over wait and sms (sms needs a consent these customers lack
    half of the time), sampled."""

    name, acting = "stub-ppo", "sample"

    def action_probabilities(self, obs, action_masks=None):
        probs = np.zeros((len(obs), 6))
        probs[:, 0], probs[:, 2] = 0.3, 0.7
        return probs

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        raise AssertionError("a sampled policy is chosen through its probabilities, not predict")


def test_a_sampled_policy_is_drawn_from_the_decision_id_and_logs_true_propensities() -> None:
    cids = [f"c{i}" for i in range(400)]

    def run() -> list:
        r = Run(JourneyAgent(JourneyConfig(holdout_share=0.0), policy=_Stochastic(), policy_version="v0007"))
        r.feed([e for i, c in enumerate(cids) for e in arrival(c, ("email", "sms") if i % 2 else ("email",))])
        return r.feed([tick(0)])

    first, second = run(), run()
    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]  # replays re-derive the same draws
    by = {d.customer_id: d.properties for d in first}
    assert {p.policy_version for p in by.values()} == {"v0007"}
    with_sms = [by[c] for i, c in enumerate(cids) if i % 2]
    without = [by[c] for i, c in enumerate(cids) if not i % 2]
    assert {(p.action, p.propensity) for p in with_sms} == {("wait", 0.3), ("sms", 0.7)}
    assert 0.55 < sum(p.action == "sms" for p in with_sms) / len(with_sms) < 0.85
    assert {(p.action, p.propensity) for p in without} == {("wait", 1.0)}  # every proposal ends as wait
    suppressed = [p for p in without if p.context.get("suppressed")]
    assert suppressed and {(p.context["proposed"], p.context["proposed_propensity"]) for p in suppressed} == {("sms", 0.7)}


def test_the_slot_policy_is_loaded_lazily_follows_a_promotion_and_is_not_pickled(tmp_path) -> None:
    agent = JourneyAgent(JourneyConfig(policies_dir=tmp_path))
    assert agent.serving().name == "offer_every_k"
    again = pickle.loads(pickle.dumps(agent))
    assert again._slot is None
    SlotPointers(tmp_path).point("journey", SlotTarget("email_every_k", "builtin"))
    assert (again.serving().name, again.serving().version) == ("email_every_k", "builtin")


@pytest.mark.parametrize("bad", ["offer_every_k-epsx", "nope"])
def test_an_unknown_holdout_policy_is_refused_with_the_known_names(bad: str) -> None:
    with pytest.raises(ValueError, match="journey policy"):
        JourneyAgent(JourneyConfig(holdout_policy=bad))


def test_lift_from_the_log(tmp_path) -> None:
    log = open_log(f"sqlite:///{tmp_path / 'e.db'}")
    events = []
    for i in range(20):
        held = i < 10
        events.append(DecisionMade(event_id=f"d{i}", customer_id=f"c{i}", occurred_at=T0, properties={
            "agent": "journey", "action": "email", "propensity": 1.0, "policy_name": "p", "policy_version": "1", "holdout": held}))
    # treated: 5 of 10 buy; holdout: 2 of 10; one holdout purchase happened before the decision and does not count
    events = [Purchase(event_id="early", customer_id="c3", occurred_at=T0, properties={"order_id": "o0", "amount": 50}), *events]
    events += [Purchase(event_id=f"p{i}", customer_id=f"c{i}", occurred_at=T0, properties={"order_id": f"o{i}", "amount": 10}) for i in (0,
        1, 10, 11, 12, 13, 14)]
    log.append(events)
    report = holdout_lift(log)
    assert (report.treated, report.holdout) == (10, 10)
    assert report.treated_conversion == 0.5 and report.holdout_conversion == 0.2
    assert abs(report.lift - 1.5) < 1e-9 and "lift vs holdout" in report.line()
