"""report.html in a real browser: headless Chromium (Debian's ``chromium`` package, driven by Playwright) opens the
page; every chart has rendered, each section says what it shows, and the console holds no error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ame.report import (
    SECTIONS,
    Estimate,
    LearningCurve,
    PolicyRow,
    ReportData,
    ScoreSample,
    ThreeNumbers,
    write_report,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)")


def report_data() -> ReportData:
    rng = np.random.default_rng(0)
    rows = [PolicyRow("email_every_k", "sim", 9_700, 80, 140, 70, 2.9, 0.3, baseline=True),
            PolicyRow("offer_every_k", "sim", 31_000, 250, 6_000, 40, 4.7, 0.3)]
    numbers = ThreeNumbers("offer_every_k@builtin", "email_every_k@builtin", 10,
                           [Estimate("predicted", 0.04, -0.08, 0.16), Estimate("live", 0.02, -0.17, 0.22)],
                           [Estimate("predicted", 0.75, 0.69, 0.82), Estimate("OPE snips", 0.79, 0.67, 0.91),
                            Estimate("OPE dr", 0.79, 0.67, 0.91), Estimate("live", 0.79, 0.67, 0.91)])
    curve = LearningCurve("journey-ppo v0001", np.arange(1, 11) * 1_000, np.linspace(1, 3, 10), "rollout/ep_rew_mean")
    pacing = {"sim-campaign-0": np.linspace(0, 1, 96), "sim-campaign-1": np.linspace(0, 0.99, 96)}
    scores = [ScoreSample("lead", rng.normal(50, 10, 200), rng.normal(55, 10, 200), 0.05, "stable", "after day 5",
                          "after day 10")]
    campaigns = [("2024-01-0" + str(d), "sim-journey", 10, 20, 3, 5.0, 1, 40.0, 8.0) for d in range(1, 4)]
    return ReportData(title="report test", facts={"customers": "1,000"}, comparison=rows,
                      comparison_note="the policies in the seeded simulator",
                      curves=[curve], pacing=pacing, pacing_note="cumulative spend share, from the log",
                      campaign_columns=["event_date", "campaign_id", "impressions", "sends", "clicks", "spend",
                                        "conversions", "revenue", "roas"],
                      campaign_rows=campaigns, scores=scores, scores_note="the scores and their drift (PSI)", three_numbers=numbers)


def test_every_chart_renders_without_a_console_error(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page_path = write_report(report_data(), tmp_path / "report.html")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, ok: e.complete && e.naturalWidth > 0, w: e.naturalWidth}))")
            sections = page.eval_on_selector_all(
                "section", "els => els.map(s => ({id: s.id, chart: !!s.querySelector('img'), "
                           "caption: (s.querySelector('p.note, figcaption') || {}).textContent || ''}))")
        finally:
            browser.close()
    assert not errors, errors
    assert len(images) >= 6 and all(i["ok"] and i["w"] > 200 for i in images), images
    assert [s["id"] for s in sections] == list(SECTIONS)
    for s in sections:
        assert s["chart"], f"section {s['id']} has no chart"
        assert len(s["caption"].strip()) > 10, f"section {s['id']} has no caption saying what it shows"
