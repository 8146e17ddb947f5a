"""Identity resolution in Python (data/identity.py): the mapping the profile projection shares with SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from data.events import EVENT_ADAPTER
from data.identity import (
    IdentityLink,
    connected_components,
    identity_links,
    identity_merged_events,
    resolve_identities,
)
from data.warehouse.rows import hot_properties

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _links(events: list[tuple[str, str, dict]]) -> list[IdentityLink]:
    return [link for kind, customer, props in events for link in identity_links(kind, customer, props)]


def test_anonymous_browsing_then_a_form_joins_the_lead():
    events = [
        ("page_view", "anon-1", {"url": "/pricing", "anonymous_id": "anon-1"}),
        ("page_view", "anon-1", {"url": "/demo", "anonymous_id": "anon-1"}),
        ("lead_created", "lead-1", {"email": "Ann@Example.com", "anonymous_id": "anon-1"}),
        ("page_view", "someone", {"url": "/", "anonymous_id": "anon-9"}),
    ]
    mapping = resolve_identities(_links(events), {"lead-1": T0})
    assert mapping == {"anon-1": "lead-1", "lead-1": "lead-1", "someone": "someone"}


def test_a_shared_email_links_two_browsers_and_the_earliest_lead_is_canonical():
    events = [
        ("page_view", "anon-1", {"url": "/", "anonymous_id": "anon-1"}),
        ("lead_created", "lead-1", {"email": "ann@example.com", "anonymous_id": "anon-1"}),
        ("page_view", "anon-2", {"url": "/", "anonymous_id": "anon-2"}),
        ("lead_created", "late-2", {"email": "ANN@example.com", "anonymous_id": "anon-2"}),
    ]
    created = {"lead-1": T0, "late-2": datetime(2026, 3, 5, tzinfo=UTC)}
    mapping = resolve_identities(_links(events), created)
    assert set(mapping.values()) == {"lead-1"} and len(mapping) == 4


def test_long_chains_resolve_fully_and_without_a_lead_the_smallest_id_wins():
    # c0 -a0- c1 -a1- c2 ... a chain of 40 ids linked pairwise by anonymous ids
    links = []
    for i in range(40):
        links += identity_links("page_view", f"c{i:02d}", {"anonymous_id": f"a{i}"})
        links += identity_links("page_view", f"c{i + 1:02d}", {"anonymous_id": f"a{i}"})
    mapping = resolve_identities(links, {})
    assert set(mapping.values()) == {"c00"} and len(mapping) == 41


def test_connected_components_agree_with_scipy():
    rng = np.random.default_rng(7)
    n = 300
    left, right = rng.integers(0, n, 250), rng.integers(0, n, 250)
    labels = connected_components(left, right, n)
    count, expected = scipy_components(coo_matrix((np.ones(250), (left, right)), shape=(n, n)), directed=False)
    assert len(set(labels.tolist())) == count
    for component in range(count):  # same partition, labelled by the smallest member
        members = np.flatnonzero(expected == component)
        assert set(labels[members].tolist()) == {members.min()}


def test_merges_are_recorded_as_deterministic_identity_merged_events_and_replay_the_same_mapping():
    events = [
        ("page_view", "anon-1", {"anonymous_id": "anon-1"}),
        ("lead_created", "lead-1", {"email": "ann@example.com", "anonymous_id": "anon-1"}),
    ]
    before = resolve_identities(_links(events[:1]), {})
    after = resolve_identities(_links(events), {"lead-1": T0})
    merges = identity_merged_events(before, after, T0)
    assert [m.properties.merged_ids for m in merges] == [["anon-1"]]
    assert merges[0].customer_id == "lead-1"
    assert identity_merged_events(before, after, T0)[0].event_id == merges[0].event_id  # replay: same id
    EVENT_ADAPTER.validate_python(merges[0].model_dump())  # a valid event of the log
    assert identity_merged_events(after, after, T0) == []  # nothing new, nothing recorded
    # folding the merge event itself keeps the mapping, even without the links that caused it
    replayed = resolve_identities(
        identity_links("identity_merged", "lead-1", merges[0].properties.model_dump()), {"lead-1": T0}
    )
    assert replayed == {"anon-1": "lead-1", "lead-1": "lead-1"}


def test_scores_reach_raw_as_probabilities_for_classifiers() -> None:
    lead = hot_properties("score_updated", {"model": "lead", "score": 86.0, "probability": 0.31, "model_version": "1"})
    assert (lead["score_model"], lead["score"]) == ("lead", 0.31)
    churn = hot_properties("score_updated", {"model": "churn", "score": 72.0, "model_version": "rules"})
    assert churn["score"] == 0.72
    clv = hot_properties("score_updated", {"model": "clv", "score": 412.5, "model_version": "1"})
    assert clv["score"] == 412.5
