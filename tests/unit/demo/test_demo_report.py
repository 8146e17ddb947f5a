"""report.html's figures: readable date labels on the campaign chart, and a caption where nothing is trained yet."""

from __future__ import annotations

import base64
import itertools
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from ame.report import NO_TRAINED_POLICY, LearningCurve, ReportData, campaign_figure, render_html

pytest.importorskip("matplotlib")

COLUMNS = ["event_date", "campaign_id", "revenue", "sends", "impressions"]


def campaign_rows(days: int) -> list[tuple[Any, ...]]:
    start = date(2026, 1, 1)
    return [(start + timedelta(days=d), campaign, 100.0 + d, 40 + d, 10) for campaign in ("sim-journey", "sim-ads")
            for d in range(days)]


def _label_boxes(fig: Any) -> list[Any]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]


@pytest.mark.parametrize("days", [3, 10, 30, 90])
def test_campaign_date_labels_do_not_overlap(days: int) -> None:
    import matplotlib.pyplot as plt

    fig = campaign_figure(COLUMNS, campaign_rows(days))
    boxes = sorted(_label_boxes(fig), key=lambda b: b.x0)
    plt.close(fig)
    assert len(boxes) >= 2
    for left, right in itertools.pairwise(boxes):
        assert left.x1 <= right.x0, f"{days} days: tick labels overlap"


def test_date_labels_read_as_dates_not_timestamps() -> None:
    import matplotlib.pyplot as plt

    fig = campaign_figure(COLUMNS, campaign_rows(30))
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert not [text for text in labels if ":" in text or len(text) > 10], labels


def _report(curves: list[LearningCurve]) -> ReportData:
    return ReportData(title="t", facts={}, comparison=[], comparison_note="", curves=curves, pacing={},
                      pacing_note="", campaign_columns=COLUMNS, campaign_rows=[], scores=[])


def learning_section(page: str) -> str:
    return page.split("<section id='learning-curves'>")[1].split("</section>")[0]


def test_no_trained_policy_is_a_caption_not_an_empty_section() -> None:
    section = learning_section(render_html(_report([])))
    assert "<figcaption>" in section and NO_TRAINED_POLICY in section and "ame train journey" in section
    assert "<img" not in section


def test_a_curve_of_one_logged_point_is_still_drawn_and_said() -> None:
    curve = LearningCurve("journey-ppo v0001", np.array([2048]), np.array([3.9]), "rollout/ep_rew_mean")
    section = learning_section(render_html(_report([curve])))
    assert section.count("<img") == 1 and "1 logged point" in section
    png = base64.b64decode(section.split("base64,")[1].split('"')[0])
    assert png.startswith(b"\x89PNG")
