"""``report.html`` of ``ame demo``: one self-contained page (matplotlib PNGs embedded as base64, no scripts,
no external files) with the policy comparison, learning curves, bid pacing over a day, campaign performance
and the score distribution with its drift (PSI).

The page is built from a :class:`ReportData` that the demo gathers; this module only draws and writes.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS = ("three-numbers", "policy-comparison", "learning-curves", "bid-pacing", "campaign-performance", "score-drift")
"""The ids of the report's sections, in order (the demo's test checks each one is present)."""

NO_TRAINED_POLICY = "no trained policy yet"


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One policy's figures per 1,000 customers (simulator evaluation) or for the live stream."""

    policy: str
    source: str  # "sim", "sim trained" (the seeded simulator) or "live ..." (the stream, from the marts)
    revenue: float
    conversions: float
    spend: float
    unsubscribes: float
    profit: float = float("nan")
    profit_ci: float = float("nan")
    baseline: bool = False

    @property
    def roas(self) -> float:
        return self.revenue / self.spend if self.spend > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class LearningCurve:
    """A registered policy's training curve (``progress.csv`` of the registry)."""

    label: str
    steps: np.ndarray
    returns: np.ndarray
    metric: str


@dataclass(frozen=True, slots=True)
class ScoreSample:
    """A model's scores in a reference window and in a recent window, with the PSI between them."""

    model: str
    reference: np.ndarray
    recent: np.ndarray
    psi: float
    status: str
    reference_label: str
    recent_label: str


@dataclass(frozen=True, slots=True)
class Estimate:
    """A figure with its 95% interval."""

    label: str
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ThreeNumbers:
    """The served policy against the control: the simulator's prediction, OPE and the live figures."""

    served: str
    control: str
    days: int
    lifts: list[Estimate]  # predicted, live (profit per customer, served minus control)
    values: list[Estimate]  # the served policy per customer: predicted, OPE SNIPS, OPE DR, live


@dataclass
class ReportData:
    """Everything the page shows."""

    title: str
    facts: dict[str, str]
    comparison: list[PolicyRow]
    comparison_note: str
    curves: list[LearningCurve]
    pacing: dict[str, np.ndarray]  # bidder -> cumulative share of the day's budget after each slot
    pacing_note: str
    campaign_columns: list[str]
    campaign_rows: list[tuple[Any, ...]]
    scores: list[ScoreSample]
    scores_note: str = ""
    three_numbers: ThreeNumbers | None = None
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


# ---- figures ---------------------------------------------------------------------------------------------


def _figure(width: float = 8.0, height: float = 3.6, ncols: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), dpi=100, squeeze=False)
    return fig, (axes[0] if ncols > 1 else axes[0][0])


def png_base64(fig: Any) -> str:
    """The figure as a base64 PNG (and closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_comparison(rows: Sequence[PolicyRow]) -> str:
    sim = [r for r in rows if r.source.startswith("sim")]
    fig, (left, right) = _figure(10, 3.8, ncols=2)
    names = [r.policy for r in sim]
    colors = ["#888888" if r.baseline else "#d62728" if "trained" in r.source else "#1f77b4" for r in sim]
    left.bar(names, [r.profit for r in sim], yerr=[0 if np.isnan(r.profit_ci) else r.profit_ci for r in sim],
             color=colors, capsize=4)
    left.set_title("profit per customer (60 days, 95% CI over seeds)")
    left.tick_params(axis="x", rotation=20)
    x = np.arange(len(sim))
    right.bar(x - 0.2, [r.revenue for r in sim], width=0.4, label="revenue", color="#2ca02c")
    right.bar(x + 0.2, [r.spend for r in sim], width=0.4, label="spend", color="#ff7f0e")
    right.set_xticks(x, names, rotation=20)
    right.set_title("revenue and spend per 1,000 customers")
    right.legend()
    return png_base64(fig)


def plot_three_numbers(n: ThreeNumbers) -> str:
    fig, (left, right) = _figure(10, 3.6, ncols=2)
    for ax, items, title in ((left, n.lifts, f"lift per customer over {n.days} days (served - control)"),
                             (right, n.values, f"{n.served}: profit per treated customer")):
        x = np.arange(len(items))
        values = np.array([e.value for e in items])
        errors = np.array([[e.value - e.low for e in items], [e.high - e.value for e in items]])
        ax.errorbar(x, values, yerr=errors, fmt="o", capsize=6, color="#1f77b4")
        ax.set_xticks(x, [e.label for e in items])
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xlim(-0.6, len(items) - 0.4)
        ax.set_title(title, fontsize=10)
    return png_base64(fig)


def plot_curves(curves: Sequence[LearningCurve]) -> str:
    fig, ax = _figure()
    for c in curves:  # a short run logs few rows: markers keep a one-point curve visible
        ax.plot(c.steps, c.returns, label=c.label, marker="o" if len(c.steps) < 20 else None)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(curves[0].metric if curves else "return")
    ax.set_title("training curves of the registered policies")
    ax.legend(fontsize=8)
    return png_base64(fig)


def plot_pacing(pacing: dict[str, np.ndarray]) -> str:
    fig, ax = _figure()
    for name, share in pacing.items():
        hours = np.arange(1, len(share) + 1) * 24 / len(share)
        ax.plot(hours, share, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("share of the daily budget spent")
    ax.set_xlim(0, 24)
    ax.set_title("bid pacing over one day")
    ax.legend(fontsize=8)
    return png_base64(fig)


def plot_campaigns(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> str:
    return png_base64(campaign_figure(columns, rows))


def campaign_figure(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> Any:
    """Revenue (solid) and sends + impressions (dashed) per day and campaign, from the campaign mart's rows.
    The date axis has a few ticks, labelled concisely (day numbers, the month and year once), so labels never
    overlap whatever the number of days."""
    import matplotlib.dates as mdates  # lazily, like every matplotlib import here: the page is optional

    fig, ax = _figure()
    idx = {c: i for i, c in enumerate(columns)}
    by_campaign: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_campaign.setdefault(str(row[idx["campaign_id"]]), []).append(row)
    twin = ax.twinx()
    for campaign, items in by_campaign.items():
        days = np.array([r[idx["event_date"]] for r in items], dtype="datetime64[D]")
        ax.plot(days, [r[idx["revenue"]] for r in items], marker="o", label=f"{campaign} revenue")
        twin.plot(days, [r[idx["sends"]] + r[idx["impressions"]] for r in items], linestyle="--", alpha=0.6,
                  label=f"{campaign} sends + impressions")
    ax.set_ylabel("revenue (last touch)")
    twin.set_ylabel("sends + impressions")
    ax.set_title("campaign performance per day (marts_marketing_campaign_performance)")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_scores(samples: Sequence[ScoreSample]) -> str:
    n = max(len(samples), 1)
    fig, axes = _figure(4.0 * n, 3.4, ncols=n)
    axes = np.atleast_1d(axes)
    for ax, s in zip(axes, samples, strict=False):
        edges = np.linspace(0, 100, 21)
        ax.hist(s.reference, bins=edges, alpha=0.55, density=True, label=s.reference_label)
        ax.hist(s.recent, bins=edges, alpha=0.55, density=True, label=s.recent_label)
        ax.set_title(f"{s.model}: PSI {s.psi:.3f} ({s.status})")
        ax.set_xlabel("score (0-100)")
        ax.legend(fontsize=7)
    return png_base64(fig)


# ---- page ------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem} td,th{border:1px solid #ddd;padding:.25rem .6rem}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums} .note{color:#555;font-size:.9rem}
img{max-width:100%;border:1px solid #eee} .facts td:first-child{font-weight:600}
figure.empty{margin:.6rem 0;padding:1.4rem 1rem;border:1px dashed #bbb;background:#fafafa;color:#555;text-align:center}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "–" if np.isnan(value) else f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{_num(v)}</td>' if isinstance(v, int | float) and not isinstance(v, bool)
                         else f"<td>{_e(v)}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def comparison_rows(rows: Sequence[PolicyRow]) -> list[list[Any]]:
    """The summary table's rows (also printed by the demo): figures and the change against the baseline."""
    base = next((r for r in rows if r.baseline), None)
    out: list[list[Any]] = []
    for r in rows:
        vs = "baseline" if r.baseline else "–"
        if base is not None and not r.baseline and r.source.startswith("sim") and base.revenue > 0:
            vs = f"rev {(r.revenue / base.revenue - 1) * 100:+.0f}%"
            if base.profit and not np.isnan(base.profit) and base.profit > 0:
                vs += f", profit {(r.profit / base.profit - 1) * 100:+.0f}%"
        out.append([r.policy, r.source, r.revenue, r.conversions, r.spend, r.roas, r.unsubscribes, r.profit, vs])
    return out


COMPARISON_HEADERS = ("policy", "source", "revenue", "conv.", "spend", "ROAS", "unsub.", "profit/cust", "vs baseline")


def render_html(data: ReportData) -> str:
    """The whole page as one string."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(data.title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{_e(data.title)}</h1>",
             f"<p class='note'>generated {_e(data.generated_at)}</p>",
             "<table class='facts'>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in data.facts.items())
             + "</table>"]

    parts.append("<section id='three-numbers'><h2>Prediction, off-policy estimate and live result</h2>")
    if data.three_numbers is not None:
        n = data.three_numbers
        parts.append(_img(plot_three_numbers(n), "three numbers"))
        parts.append(_table(("figure", "value", "95% interval"),
                            [(e.label, e.value, f"[{e.low:.3f}, {e.high:.3f}]") for e in (*n.lifts, *n.values)]))
        parts.append(f"<p class='note'>{_e(n.served)} serving against the control {_e(n.control)} (the holdout's policy), "
                     f"over the {n.days} days of the closed loop. Left: the lift in profit per customer predicted by the "
                     "simulator for the same two policies on the same market, beside the live lift measured from the log "
                     "(treated minus holdout). Right: the served policy's profit per treated customer: predicted, "
                     "estimated off-policy (SNIPS and DR) from the engine's own log, and live.</p>")
    else:
        parts.append("<figure class='empty'><figcaption>no closed-loop run: nothing to set side by side</figcaption></figure>")
    parts.append("</section>")

    parts.append("<section id='policy-comparison'><h2>Policy comparison</h2>")
    parts.append(_table(COMPARISON_HEADERS, comparison_rows(data.comparison)))
    parts.append(f"<p class='note'>{_e(data.comparison_note)}</p>")
    if any(r.source.startswith("sim") for r in data.comparison):
        parts.append(_img(plot_comparison(data.comparison), "policy comparison"))
    parts.append("</section>")

    parts.append("<section id='learning-curves'><h2>Learning curves</h2>")
    if data.curves:
        parts.append(_img(plot_curves(data.curves), "learning curves"))
        said = ", ".join(f"{c.label} ({len(c.steps)} logged point{'s' if len(c.steps) != 1 else ''})" for c in data.curves)
        parts.append("<p class='note'>" + _e(said)
                     + ": from each registered version's <code>progress.csv</code> (the registry's training log).</p>")
    else:
        parts.append(f"<figure class='empty'><figcaption><strong>{NO_TRAINED_POLICY}</strong>: the registry holds no "
                     "training curve. Train a policy with <code>ame train journey</code> or <code>ame train bidding</code>; "
                     "its curve appears here on the next run.</figcaption></figure>")
    parts.append("</section>")

    parts.append("<section id='bid-pacing'><h2>Bid pacing over a day</h2>")
    if data.pacing:
        parts.append(_img(plot_pacing(data.pacing), "bid pacing"))
    parts.append(f"<p class='note'>{_e(data.pacing_note)}</p></section>")

    parts.append("<section id='campaign-performance'><h2>Campaign performance</h2>")
    if data.campaign_rows:
        parts.append(_img(plot_campaigns(data.campaign_columns, data.campaign_rows), "campaign performance"))
        parts.append("<p class='note'>Revenue (solid) and sends plus impressions (dashed) per day and campaign, from "
                     "the warehouse's marts_marketing_campaign_performance.</p>")
        parts.append(_table(data.campaign_columns, data.campaign_rows))
    else:
        parts.append("<p>the campaign mart is empty</p>")
    parts.append("</section>")

    parts.append("<section id='score-drift'><h2>Score distribution and drift (PSI)</h2>")
    if data.scores:
        parts.append(_img(plot_scores(data.scores), "score distribution"))
        parts.append(_table(("model", "reference", "n", "recent", "n", "PSI", "status"),
                            [(s.model, s.reference_label, int(s.reference.size), s.recent_label, int(s.recent.size),
                              s.psi, s.status) for s in data.scores]))
    else:
        parts.append("<p>no scores in the log</p>")
    parts.append(f"<p class='note'>{_e(data.scores_note)}</p></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(data: ReportData, path: Path) -> Path:
    """Write the page (to a temporary name, then renamed) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    tmp.replace(path)
    return path
