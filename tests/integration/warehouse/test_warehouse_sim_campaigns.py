"""The simulated bidding market states its campaigns (``campaign_updated``) before its first auction, so the demo's
campaign mart and campaign table carry each campaign's name, channel and dates instead of its id."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from ame.closed_loop_bid import START_DAY, bid_market, run_bid_loop
from ame.demo_figures import campaign_table
from ame.demo_steps import build_warehouse
from data.log import open_log
from data.warehouse import open_warehouse
from environment.bid_events import campaign_events, campaign_name
from policies.slots import BUILTINS

# SQLMesh's models still use pydantic's json_encoders
pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")

DAYS = 2


def _bid(url: str) -> tuple[list[str], float, int]:
    """Two campaigns bid for ``DAYS`` days on a small market (no agent: every campaign read as not yet folded)."""
    loop = bid_market(2, DAYS, seed=3, opportunities=200, budget_fraction=1 / 8)
    log = open_log(url)
    try:
        appended = run_bid_loop(log, loop, DAYS, BUILTINS["bidding"]("profile_pacing"), lambda _: None, lambda: None)
    finally:
        log.close()
    return loop.campaigns, loop.budget, appended


def test_the_campaign_mart_names_the_simulated_campaigns(paths: dict[str, str]) -> None:
    campaigns, budget, _ = _bid(paths["log"])
    log = open_log(paths["log"])
    try:
        build_warehouse(log, paths["warehouse"])
    finally:
        log.close()
    first = date(1970, 1, 1) + timedelta(days=START_DAY)
    last = first + timedelta(days=DAYS - 1)
    store = open_warehouse(paths["warehouse"])
    try:
        stated = store.query(f"SELECT campaign_id, campaign_name, channel, start_date, end_date, daily_budget "
                             f"FROM {store.dataset}.staging_campaigns ORDER BY campaign_id").rows
        mart = store.query(f"SELECT DISTINCT campaign_id, campaign_name, channel, start_date, end_date "
                           f"FROM {store.dataset}.marts_marketing_campaign_performance ORDER BY campaign_id").rows
    finally:
        store.close()
    expected = [(c, campaign_name(e), "ad", first, last) for e, c in enumerate(campaigns)]
    assert [tuple(r[:5]) for r in stated] == expected
    assert [r[5] for r in stated] == pytest.approx([budget] * len(campaigns))
    assert [tuple(r) for r in mart] == expected  # every day of every campaign, named and dated
    columns, rows = campaign_table(paths["warehouse"])
    names = {row[columns.index("campaign_name")] for row in rows}
    assert names == {campaign_name(e) for e in range(len(campaigns))}


def test_a_rerun_states_no_campaign_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    campaigns, _, first = _bid(url)
    _, _, again = _bid(url)
    assert first > len(campaigns) and again == 0  # the same seed derives the same event ids: nothing appended


def test_names_are_readable_and_distinct_past_the_list() -> None:
    names = [campaign_name(e) for e in range(20)]
    assert len(set(names)) == 20 and names[0] == "Search - prospecting"
    assert all(not n.startswith("sim-campaign") for n in names)


def test_a_market_of_no_days_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        campaign_events(["sim-campaign-0"], START_DAY, 0, 10.0)
