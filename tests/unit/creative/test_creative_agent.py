"""The creative agent without Ray: one shard over a real SQLite log; posteriors, promotion, replay idempotence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from agents.creative import CreativeAgent, CreativeConfig
from agents.runtime import AgentShard, ShardConfig
from data.events import AdClick, EmailClick, Purchase, new_event_id
from data.log import open_log
from policies.creative.generators import TemplateGenerator
from policies.creative.pipeline import generate_for_test
from policies.creative.serving import exposure_event, select_creative
from policies.creative.store import CreativeStore

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
TRUE_CTR = (0.02, 0.10, 0.03)


def _click(variant_id: str, customer: str, at: datetime) -> EmailClick:
    return EmailClick(event_id=new_event_id(), customer_id=customer, occurred_at=at, source="esp",
                      properties={"creative_id": variant_id, "url": "https://shop.example/x"})


def test_agent_learns_posteriors_promotes_and_replays_idempotently(tmp_path: Path, log_url: str) -> None:
    store_url = f"sqlite:///{tmp_path / 'creatives.db'}"
    store = CreativeStore(store_url)
    arms = [s.variant for s in generate_for_test(TemplateGenerator(), store, "email_subject", "loyal", n=10, top=3) if s.in_test]
    log = open_log(log_url)
    rng = np.random.default_rng(5)
    best = arms[1].variant_id
    agent = CreativeAgent(CreativeConfig(store_url=store_url))
    shard = AgentShard(agent, ShardConfig(log_url=log_url, state_dir=tmp_path / "state", batch_size=500), start=False)
    served = []
    for i in range(3000):
        at = T0 + timedelta(seconds=i)
        variant, propensity = select_creative("loyal", store=store, rng=rng, n_draws=300)
        served.append(variant.variant_id)
        events = [exposure_event(variant, propensity, f"c-{i}", at, f"req-{i}")]
        if rng.random() < TRUE_CTR[[a.variant_id for a in arms].index(variant.variant_id)]:
            events.append(_click(variant.variant_id, f"c-{i}", at + timedelta(seconds=1)))
        log.append(events)
        if i % 250 == 249:
            while shard.step():
                pass
    while shard.step():
        pass
    counts = store.counts([a.variant_id for a in arms])
    assert sum(c.impressions for c in counts.values()) == 3000
    promotion = store.promotion("loyal", "email_subject")
    assert promotion is not None and promotion.variant_id == best
    assert served[-200:].count(best) == 200  # after promotion only the winner is served
    # a fresh shard (state lost) replays the whole log: the same absolute counts, no duplicates
    before = store.counts([a.variant_id for a in arms])
    replay = AgentShard(CreativeAgent(CreativeConfig(store_url=store_url)), ShardConfig(log_url=log_url, state_dir=tmp_path / "replay"),
                        start=False)
    while replay.step():
        pass
    assert store.counts([a.variant_id for a in arms]) == before


def test_agent_counts_ad_clicks_and_conversions_and_ignores_other_decisions(tmp_path: Path, log_url: str) -> None:
    store_url = f"sqlite:///{tmp_path / 'creatives.db'}"
    store = CreativeStore(store_url)
    variant = generate_for_test(TemplateGenerator(), store, "email_subject", "vip", n=3, top=3)[0].variant
    log = open_log(log_url)
    log.append([
        exposure_event(variant, 0.5, "c-1", T0, "r-1"),
        AdClick(event_id=new_event_id(), customer_id="c-1", occurred_at=T0, source="ads",
                properties={"campaign_id": "cmp-1", "creative_id": variant.variant_id}),
        Purchase(event_id=new_event_id(), customer_id="c-1", occurred_at=T0, source="web",
                 properties={"order_id": "o-1", "amount": 10.0, "context": {"creative_id": variant.variant_id}}),
        _click("cv-unknown", "c-2", T0),
    ])
    shard = AgentShard(CreativeAgent(CreativeConfig(store_url=store_url)), ShardConfig(log_url=log_url, state_dir=tmp_path / "s"),
                       start=False)
    while shard.step():
        pass
    c = store.counts([variant.variant_id])[variant.variant_id]
    assert (c.impressions, c.clicks, c.conversions) == (1, 1, 1)
