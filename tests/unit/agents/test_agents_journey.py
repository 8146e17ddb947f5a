"""The journey agent's decide() without Ray: consent, frequency caps, quiet hours, holdout, the tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import StateView, in_holdout
from agents.supervisor import tick_event
from data.events import ConsentChanged, PageView, Unsubscribe
from data.log.base import StoredEvent
from data.log.sqlite import event_row

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC


def stored(event, position: int) -> StoredEvent:
    row = event_row(event, 0)
    return StoredEvent(position, *row[:8], row[8])


class Always:
    """A policy that always proposes one action."""

    def __init__(self, action: int) -> None:
        self.action, self.name, self.version = action, "always", "1"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.array([self.action]), state


def view() -> StateView:
    return StateView({}, lambda keys: {}, lambda: [])


def visits(cid: str, hours: list[float]) -> list:
    return [PageView(event_id=f"{cid}-pv{i}", customer_id=cid, occurred_at=T0 + timedelta(hours=h), properties={"url": "/"})
            for i, h in enumerate(hours)]


def not_held_out(n: int = 1) -> list[str]:
    return [c for c in (f"c{i}" for i in range(1000)) if not in_holdout(c, 0.05)][:n]


def test_frequency_cap_and_quiet_hours() -> None:
    agent = JourneyAgent(JourneyConfig(), policy=Always(1))
    cid = not_held_out()[0]
    events = [stored(e, i + 1) for i, e in enumerate(visits(cid, [0, 1, 12, 25]))]
    out = agent.decide(events, view())
    got = [(d.properties.action, (d.properties.context or {}).get("suppressed")) for d in out]
    # 10:00 email; 11:00 capped; 22:00 capped (also quiet); next day 11:00 free again
    assert got == [("email", None), ("wait", "frequency_cap"), ("wait", "frequency_cap"), ("email", None)]
    assert all(d.properties.propensity == 1.0 and d.properties.policy_name == "always" for d in out)
    assert all(d.properties.features_hash for d in out)


def test_quiet_hours_suppress_a_free_contact() -> None:
    agent = JourneyAgent(JourneyConfig(), policy=Always(1))
    cid = not_held_out()[0]
    out = agent.decide([stored(visits(cid, [13])[0], 1)], view())  # 23:00 UTC
    assert out[0].properties.action == "wait" and out[0].properties.context["suppressed"] == "quiet_hours"


def test_withdrawn_consent_is_respected() -> None:
    agent = JourneyAgent(JourneyConfig(), policy=Always(2))  # sms
    cid = not_held_out()[0]
    unsub = Unsubscribe(event_id="u1", customer_id=cid, occurred_at=T0, properties={"channel": "sms"})
    out = agent.decide([stored(unsub, 1), stored(visits(cid, [1])[0], 2)], view())
    assert out[0].properties.action == "wait" and out[0].properties.context["suppressed"] == "consent"
    regrant = ConsentChanged(event_id="g1", customer_id=cid, occurred_at=T0 + timedelta(hours=2), properties={"channel": "sms", "granted": True})
    v = view()
    out = agent.decide([stored(unsub, 1), stored(regrant, 2), stored(visits(cid, [3])[0], 3)], v)
    assert out[-1].properties.action == "sms"


def test_holdout_gets_the_baseline_policy_and_is_flagged() -> None:
    agent = JourneyAgent(JourneyConfig(holdout_share=0.5, holdout_mode="no_contact"), policy=Always(1))
    cids = [f"c{i}" for i in range(40)]
    events = [stored(e, i + 1) for i, e in enumerate(ev for c in cids for ev in visits(c, [0]))]
    out = agent.decide(events, view())
    for d in out:
        held = in_holdout(d.customer_id, 0.5)
        assert d.properties.holdout == held
        assert d.properties.action == ("wait" if held else "email")
    assert 5 < sum(d.properties.holdout for d in out) < 35


def test_daily_tick_decides_for_every_customer_once() -> None:
    agent = JourneyAgent(JourneyConfig(holdout_share=0.0), policy=Always(0))
    v = view()
    agent.decide([stored(e, i + 1) for i, e in enumerate(visits("a", [0]) + visits("b", [0]))], v)
    v._cache.update(v.changes)
    v2 = StateView(v._cache, lambda keys: {}, lambda: list(v._cache))
    tick = tick_event((T0 + timedelta(days=1)).date())
    out = agent.decide([stored(tick, 10)], v2)
    assert sorted(d.customer_id for d in out) == ["a", "b"]
    assert len({d.event_id for d in out}) == 2 and all(d.causation_id == tick.event_id for d in out)


def test_decisions_are_deterministic() -> None:
    cid = not_held_out()[0]
    events = [stored(e, i + 1) for i, e in enumerate(visits(cid, [0, 30, 60]))]
    a = JourneyAgent().decide(events, view())
    b = JourneyAgent().decide(events, view())
    assert [e.model_dump() for e in a] == [e.model_dump() for e in b]
    assert a[0].properties.policy_name == "engagement_ladder"


def test_lift_from_the_log(tmp_path) -> None:
    from agents.lift import holdout_lift
    from data.events import DecisionMade, Purchase
    from data.log import open_log

    log = open_log(f"sqlite:///{tmp_path / 'e.db'}")
    events = []
    for i in range(20):
        held = i < 10
        events.append(DecisionMade(event_id=f"d{i}", customer_id=f"c{i}", occurred_at=T0, properties={
            "agent": "journey", "action": "email", "propensity": 1.0, "policy_name": "p", "policy_version": "1", "holdout": held}))
    # treated: 5 of 10 buy; holdout: 2 of 10; one holdout purchase happened before the decision and does not count
    events = [Purchase(event_id="early", customer_id="c3", occurred_at=T0, properties={"order_id": "o0", "amount": 50})] + events
    events += [Purchase(event_id=f"p{i}", customer_id=f"c{i}", occurred_at=T0, properties={"order_id": f"o{i}", "amount": 10}) for i in (0, 1, 10, 11, 12, 13, 14)]
    log.append(events)
    report = holdout_lift(log)
    assert (report.treated, report.holdout) == (10, 10)
    assert report.treated_conversion == 0.5 and report.holdout_conversion == 0.2
    assert abs(report.lift - 1.5) < 1e-9 and "lift vs holdout" in report.line()


def test_decisions_validate_against_the_schema() -> None:
    from data.events import validate_event

    cid = not_held_out()[0]
    unsub = Unsubscribe(event_id="u1", customer_id=cid, occurred_at=T0, properties={"channel": "email"})
    events = [stored(unsub, 1)] + [stored(e, i + 2) for i, e in enumerate(visits(cid, [0, 30, 60]) + visits("zz", [1, 40]))]
    for d in JourneyAgent(policy=Always(1)).decide(events, view()):
        again = validate_event(d.model_dump(mode="json"))
        assert again == d


def test_batched_decisions_equal_event_by_event() -> None:
    cids = [f"c{i}" for i in range(30)]
    evs = [ev for h in (0, 2, 26, 50) for c in cids for ev in visits(c, [h])]
    events = [stored(e.model_copy(update={"event_id": f"{e.event_id}-{k}"}), k + 1) for k, e in enumerate(evs)]
    whole = JourneyAgent().decide(events, view())
    v = view()
    one_by_one = [d for e in events for d in JourneyAgent().decide([e], v)]
    assert [d.event_id for d in whole] == [d.event_id for d in one_by_one]
    assert [d.properties.action for d in whole] == [d.properties.action for d in one_by_one]


def test_every_known_agent_can_be_built() -> None:
    from agents.cli import KNOWN, build_agents

    assert [a.name for a in build_agents(list(KNOWN))] == list(KNOWN)


class _Stochastic:
    """A trained-policy stand-in: fixed action probabilities, as an exported registry policy offers them."""

    name, version = "stub-ppo", "v0001"

    def action_probabilities(self, obs):
        import numpy as np

        probs = np.zeros((len(obs), 6))
        probs[:, 0], probs[:, 1] = 0.3, 0.7  # wait, email
        return probs

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        raise AssertionError("a stochastic policy is sampled through action_probabilities, not predict")


def test_a_stochastic_policy_is_sampled_deterministically_and_logs_its_propensity() -> None:
    from agents.journey import JourneyAgent, JourneyConfig
    from agents.runtime import StateView
    from data.synthetic import synthetic_events

    def run():
        agent = JourneyAgent(JourneyConfig(holdout_share=0.0, quiet_hours=(0, 0)), policy=_Stochastic())
        events = [stored(e, i + 1) for i, e in enumerate(synthetic_events(2_000, 100, seed=4))]
        return agent.decide(events, StateView({}, lambda keys: {}, lambda: []))

    first, second = run(), run()
    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]  # replays re-derive the same draws
    proposals = [e.properties for e in first if e.properties.policy_name == "stub-ppo"]
    assert proposals and {round(p.propensity, 6) for p in proposals} <= {0.3, 0.7}
    share = sum(p.propensity == 0.7 for p in proposals) / len(proposals)
    assert 0.55 < share < 0.85  # about 70% of the proposals are e-mails


def test_the_registry_policy_is_resolved_lazily_and_not_pickled(tmp_path) -> None:
    import pickle

    from agents.journey import JourneyAgent, JourneyConfig

    agent = JourneyAgent(JourneyConfig(registry_policy="journey", policies_dir=tmp_path))
    assert agent.policy.name == "engagement_ladder"  # nothing promoted: the baseline
    again = pickle.loads(pickle.dumps(agent))
    assert again._policy is None and again.policy.name == "engagement_ladder"
