"""``ame creatives …``: generate variants, review the critical ones, list them, watch the tests, and the report."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from data.datasets import DATASETS_DIR
from data.settings import get_settings
from policies.creative.bandit import win_probabilities
from policies.creative.calendar import CalendarConfig, calendar_rows, plan_week, to_csv, to_json
from policies.creative.generators import GeminiConfig, GeminiGenerator, Generator, TemplateGenerator, default_generator
from policies.creative.images import SIZES, ImageGenerator, ImagenConfig, ImagenGenerator, TemplateImageGenerator
from policies.creative.models import TEXT_KINDS, CreativeError, Status
from policies.creative.obd import obd_report
from policies.creative.pipeline import generate_drafts, generate_for_test, generate_images
from policies.creative.serving import PRIOR
from policies.creative.simulate import DEFAULT_CTRS, simulate_tests
from policies.creative.store import open_store

creatives_app = typer.Typer(help="Creatives: generate, guardrails, approve critical variants, bandit tests per segment.",
                            no_args_is_help=True)
console = Console()
err = Console(stderr=True)

StoreOption = Annotated[str | None, typer.Option("--store", help="Creative store URL (default: AME_CREATIVE_STORE).")]


def _store(url: str | None):
    return open_store(url)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


GeneratorOption = Annotated[str | None, typer.Option("--generator", help="template or gemini (default: AME_CREATIVE_GENERATOR).")]


def _text_generator(name: str | None) -> Generator:
    if name == "template":
        return TemplateGenerator()
    if name == "gemini":
        s = get_settings()
        if not s.gcp_project:
            _fail("--generator gemini needs AME_GCP_PROJECT (and AME_GCP_LOCATION, AME_GEMINI_MODEL)")
        return GeminiGenerator(GeminiConfig(project=s.gcp_project, location=s.gcp_location, model=s.gemini_model))
    if name is not None:
        _fail(f"unknown generator {name!r}; use template or gemini")
    return default_generator()


@creatives_app.command("generate")
def generate(
    segment: Annotated[str, typer.Option("--segment", help="Customer segment (new, loyal, lapsed, vip, or your own).")],
    kind: Annotated[str, typer.Option("--kind", help=f"One of {', '.join(TEXT_KINDS)}.")] = "email_subject",
    n: Annotated[int, typer.Option("--n", min=1, max=50, help="Variants to generate.")] = 10,
    top: Annotated[int, typer.Option("--top", min=1, max=10, help="Best passing variants entered into the test.")] = 3,
    product: Annotated[str | None, typer.Option("--product", help="A catalog product id (default: all).")] = None,
    generator: GeneratorOption = None,
    store: StoreOption = None,
) -> None:
    """Generate N variants, run the guardrails, enter the top ones into the segment's test (critical ones wait)."""
    if kind not in TEXT_KINDS:
        _fail(f"unknown kind {kind!r}; use one of {', '.join(TEXT_KINDS)} (pictures: `ame creatives image`)")
    try:
        gen = _text_generator(generator)
        stored = generate_for_test(gen, _store(store), kind, segment, n=n, top=top, product=product)
    except (CreativeError, ValueError, FileNotFoundError) as error:
        _fail(str(error))
    table = Table(title=f"{len(stored)} {kind} variants for {segment} ({gen.name})")
    for col in ("id", "status", "test", "score", "text", "reasons"):
        table.add_column(col, no_wrap=col == "id")
    for s in stored:
        table.add_row(s.variant.variant_id, s.status.value, "yes" if s.in_test else "", f"{s.verdict.score:.2f}", s.variant.text,
                      "; ".join(s.verdict.reasons))
    console.print(table)


@creatives_app.command("blog-outline")
def blog_outline(
    segment: Annotated[str, typer.Option("--segment", help="Customer segment the posts are for.")],
    n: Annotated[int, typer.Option("--n", min=1, max=20, help="Outlines to write.")] = 3,
    product: Annotated[str | None, typer.Option("--product", help="A catalog product id (default: all).")] = None,
    generator: GeneratorOption = None,
    store: StoreOption = None,
) -> None:
    """Blog post outlines (a title and numbered sections), checked by the guardrails and stored for approval."""
    try:
        stored = generate_drafts(_text_generator(generator), _store(store), "blog_outline", segment, n, product)
    except (CreativeError, ValueError, FileNotFoundError) as error:
        _fail(str(error))
    for s in stored:
        why = "; ".join(s.verdict.reasons)
        console.print(Panel(s.variant.text, title=f"{s.variant.variant_id} [bold]{s.status.value}[/]",
                            subtitle=why or f"score {s.verdict.score:.2f}", title_align="left"))


def _channels(specs: list[str] | None) -> dict[str, str] | None:
    if not specs:
        return None
    pairs = [spec.partition("=") for spec in specs]
    if any(not name or not at for name, _, at in pairs):
        _fail(f"--channel takes NAME=HH:MM (for example linkedin=09:00); got {', '.join(specs)}")
    return {name: at for name, _, at in pairs}


@creatives_app.command("calendar")
def calendar(
    week: Annotated[datetime, typer.Option("--week", formats=["%Y-%m-%d"], help="The Monday the week starts on.")],
    segment: Annotated[str, typer.Option("--segment", help="Customer segment the posts are for.")] = "new",
    channel: Annotated[list[str] | None, typer.Option("--channel",
        help="NAME=HH:MM, repeat for several (default: linkedin=09:00 and instagram=12:30).")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=7, help="Days to plan from Monday.")] = 7,
    product: Annotated[str | None, typer.Option("--product", help="A catalog product id (default: all).")] = None,
    generator: GeneratorOption = None,
    replan: Annotated[bool, typer.Option("--replan", help="Plan the week anew instead of showing its stored plan.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the calendar to FILE.json or FILE.csv.")] = None,
    store: StoreOption = None,
) -> None:
    """A weekly social calendar: one checked post per day and channel, stored; a table, and JSON or CSV."""
    if out is not None and out.suffix not in (".json", ".csv"):
        _fail(f"--out {out}: the file name must end in .json or .csv")
    st = _store(store)
    try:
        config = CalendarConfig(days=days, **({"channels": c} if (c := _channels(channel)) else {}))
        entries = plan_week(_text_generator(generator), st, week.date(), segment, config, product, replan=replan)
        rows = calendar_rows(entries, st)
    except (CreativeError, ValueError, FileNotFoundError) as error:
        _fail(str(error))
    table = Table(title=f"social calendar, week of {week:%Y-%m-%d}, segment {segment}: {len(rows)} posts")
    for col in ("day", "time", "channel", "status", "id", "text"):
        table.add_column(col, no_wrap=col in ("day", "time", "id"))
    for r in rows:
        table.add_row(f"{r.weekday[:3]} {r.day}", r.time, r.channel, r.status, r.variant_id, r.text)
    console.print(table)
    empty = days * len(config.channels) - len(rows)
    if empty:
        err.print(f"[yellow]{empty} slots left empty: too few passing posts; add templates or use --generator gemini[/yellow]")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".json":
            out.write_bytes(to_json(rows))
        else:
            out.write_text(to_csv(rows))
        console.print(f"written to {out}")


@creatives_app.command("image")
def image(
    segment: Annotated[str, typer.Option("--segment", help="Customer segment the pictures are for.")],
    n: Annotated[int, typer.Option("--n", min=1, max=16, help="Pictures to draw.")] = 4,
    product: Annotated[str | None, typer.Option("--product", help="A catalog product id (default: all).")] = None,
    aspect_ratio: Annotated[str, typer.Option("--aspect-ratio", help=f"One of {', '.join(SIZES)}.")] = "1:1",
    seed: Annotated[int, typer.Option("--seed", help="The template pictures' seed (Imagen's differ each run).")] = 0,
    generator: Annotated[str, typer.Option("--generator", help="template (offline) or imagen (Vertex AI).")] = "template",
    copy: Annotated[str | None, typer.Option("--copy", help="Headlines by template or gemini (default: AME_CREATIVE_GENERATOR).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="The Imagen model (default: ImagenConfig's).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the pictures as DIR/<id>.png.")] = None,
    store: StoreOption = None,
) -> None:
    """Image creatives: a picture with the headline and a visible AI-generated mark, checked, stored for approval."""
    if aspect_ratio not in SIZES:
        _fail(f"unknown aspect ratio {aspect_ratio!r}; use one of {', '.join(SIZES)}")
    st = _store(store)
    try:
        stored = generate_images(_text_generator(copy), _painter(generator, model), st, segment, n, product,
                                 aspect_ratio, seed)  # type: ignore[arg-type]
    except (CreativeError, ValueError, FileNotFoundError) as error:
        _fail(str(error))
    table = Table(title=f"{len(stored)} images for {segment} ({generator}, {aspect_ratio})")
    for col in ("id", "status", "sha256", "size", "headline", "reasons"):
        table.add_column(col, no_wrap=col in ("id", "sha256"))
    for s in stored:
        asset = st.image(s.variant.variant_id)
        table.add_row(s.variant.variant_id, s.status.value, asset.sha256[:16], f"{asset.width}x{asset.height}",
                      s.variant.text, "; ".join(s.verdict.reasons))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{s.variant.variant_id}.png").write_bytes(asset.content)
    console.print(table)


def _painter(name: str, model: str | None) -> ImageGenerator:
    if name == "template":
        return TemplateImageGenerator()
    if name != "imagen":
        _fail(f"unknown image generator {name!r}; use template or imagen")
    s = get_settings()
    if not s.gcp_project:
        _fail("--generator imagen needs AME_GCP_PROJECT (and AME_GCP_LOCATION)")
    return ImagenGenerator(ImagenConfig(project=s.gcp_project, location=s.gcp_location, **({"model": model} if model else {})))


def _list_table(items: list, title: str) -> Table:
    table = Table(title=title)
    for col in ("id", "segment", "kind", "status", "critical", "test", "score", "text", "by / reasons"):
        table.add_column(col, no_wrap=col in ("id", "status"))
    for s in items:
        extra = "; ".join(s.verdict.reasons) if s.status is Status.FAILED else (s.decided_by or "")
        table.add_row(
            s.variant.variant_id, s.variant.segment, s.variant.kind, s.status.value, "yes" if s.variant.critical else "",
            "yes" if s.in_test else "", f"{s.verdict.score:.2f}", s.variant.text, extra,
        )
    return table


@creatives_app.command("pending")
def pending(store: StoreOption = None) -> None:
    """Critical variants waiting for a human's approval."""
    items = _store(store).list(status=Status.PENDING)
    console.print(_list_table(items, f"{len(items)} pending variants (approve or reject them by id)"))


@creatives_app.command("list")
def list_(
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    segment: Annotated[str | None, typer.Option("--segment")] = None,
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    store: StoreOption = None,
) -> None:
    """Every stored variant (filtered)."""
    items = _store(store).list(status=status, segment=segment, kind=kind)
    console.print(_list_table(items, f"{len(items)} variants"))


def _decide(variant_id: str, approve: bool, by: str | None, note: str | None, store: str | None) -> None:
    try:
        s = _store(store).decide(variant_id, approve=approve, by=by or getpass.getuser(), note=note)
    except (CreativeError, ValueError) as error:
        _fail(str(error).strip('"'))
    console.print(f"{s.variant.variant_id}: {s.status.value} by {s.decided_by}")


@creatives_app.command("approve")
def approve(
    variant_id: str,
    by: Annotated[str | None, typer.Option("--by", help="Reviewer (default: the OS user).")] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    store: StoreOption = None,
) -> None:
    """Approve a pending variant: it can be served from now on."""
    _decide(variant_id, True, by, note, store)


@creatives_app.command("reject")
def reject(
    variant_id: str,
    by: Annotated[str | None, typer.Option("--by", help="Reviewer (default: the OS user).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
    store: StoreOption = None,
) -> None:
    """Reject a variant: it is never served."""
    _decide(variant_id, False, by, note, store)


@creatives_app.command("stats")
def stats(store: StoreOption = None, seed: int = 0) -> None:
    """Per test (segment, kind): each servable arm's impressions, clicks, CTR, P(best) and the promotion."""
    st = _store(store)
    table = Table(title="creative tests")
    for col in ("segment", "kind", "variant", "impressions", "clicks", "conversions", "CTR", "P(best)", "promoted"):
        table.add_column(col, justify="right" if col in ("impressions", "clicks", "conversions", "CTR", "P(best)") else "left",
                         no_wrap=col == "variant")
    for segment, kind in st.tests():
        arms = st.arms(segment, kind)
        if not arms:
            table.add_row(segment, kind, "(no approved variant)", "", "", "", "", "", "")
            continue
        a = np.array([PRIOR[0] + c.clicks for _, c in arms])
        b = np.array([PRIOR[1] + c.impressions - c.clicks for _, c in arms])
        p_best = win_probabilities(a, b, np.random.default_rng(seed), 20_000)
        promoted = st.promotion(segment, kind)
        for (v, c), p in zip(arms, p_best, strict=True):
            ctr = f"{c.clicks / c.impressions:.2%}" if c.impressions else "-"
            mark = "yes" if promoted and promoted.variant_id == v.variant_id else ""
            table.add_row(segment, kind, v.variant_id, f"{c.impressions:,}", f"{c.clicks:,}", f"{c.conversions:,}", ctr, f"{p:.3f}", mark)
    console.print(table)


@creatives_app.command("report")
def report(
    data: Annotated[Path | None, typer.Option("--data",
        help="Folder of the Open Bandit sample (default: the repository's datasets/open_bandit).")] = None,
    reps: Annotated[int, typer.Option("--reps", min=10, help="Simulator replications.")] = 500,
    seed: int = 0,
) -> None:
    """The Open Bandit table (learned policy by IPS/SNIPS/DR vs random and bts) and the simulator's figures."""
    root = data or DATASETS_DIR / "open_bandit"
    if (root / "random").is_dir():
        table = Table(title=f"Open Bandit sample (ZOZOTOWN, all campaign): click rate per impression, 95% bootstrap CI ({root})")
        for col in ("policy", "method", "CTR", "95% CI", "n", "note"):
            table.add_column(col)
        for r in obd_report(root, seed=seed):
            table.add_row(r.policy, r.method, f"{r.value:.4f}", f"[{r.ci_low:.4f}, {r.ci_high:.4f}]", f"{r.n:,}", r.note)
        console.print(table)
    else:
        err.print(f"[yellow]no Open Bandit sample at {root}; pass --data[/yellow]")
    sim = simulate_tests(reps=reps, seed=seed)
    n95 = sim.impressions_for(0.95)
    table = Table(title=f"simulator: {len(DEFAULT_CTRS)} variants, CTRs {DEFAULT_CTRS[0]:.1%}..{DEFAULT_CTRS[-2]:.1%} "
                        f"and best {DEFAULT_CTRS[-1]:.1%}, {reps} seeded tests")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("impressions by which 95% of tests promoted the best", f"{n95:,}" if n95 else f"> {sim.horizon:,}")
    table.add_row(f"tests that promoted the best within {sim.horizon:,}", f"{sim.found_best_by(sim.horizon):.1%}")
    table.add_row("tests that promoted a wrong variant", f"{sim.wrong_promotions:.1%}")
    table.add_row(f"regret (clicks lost) over {sim.horizon:,}, Thompson + promotion", f"{sim.regret_ts.mean():,.0f}")
    table.add_row(f"regret over {sim.horizon:,}, uniform A/B split", f"{sim.regret_uniform:,.0f}")
    console.print(table)
