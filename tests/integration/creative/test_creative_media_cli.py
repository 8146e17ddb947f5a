"""`ame creatives blog-outline | calendar | image` end to end on a temporary store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
from PIL import Image
from typer.testing import CliRunner

from ame.cli import app
from policies.creative.models import Status
from policies.creative.store import CreativeStore

runner = CliRunner()


def test_blog_outline_and_image_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'creatives.db'}"
    result = runner.invoke(app, ["creatives", "blog-outline", "--segment", "lapsed", "--n", "2", "--store", url], terminal_width=200)
    assert result.exit_code == 0, result.output
    outlines = CreativeStore(url).list(kind="blog_outline")
    assert len(outlines) == 2 and outlines[0].variant.variant_id in result.output and "1. " in result.output
    result = runner.invoke(app, ["creatives", "image", "--segment", "vip", "--n", "2", "--aspect-ratio", "4:3", "--seed", "3",
                                 "--out", str(tmp_path / "pictures"), "--store", url], terminal_width=200)
    assert result.exit_code == 0, result.output
    pending = CreativeStore(url).list(kind="image", status=Status.PENDING)
    assert len(pending) == 2 and "pending" in result.output
    for s in pending:
        picture = Image.open(tmp_path / "pictures" / f"{s.variant.variant_id}.png")
        assert picture.size == (768, 576)
    result = runner.invoke(app, ["creatives", "image", "--segment", "vip", "--aspect-ratio", "2:1", "--store", url])
    assert result.exit_code == 1 and "unknown aspect ratio" in result.output
    result = runner.invoke(app, ["creatives", "image", "--segment", "vip", "--generator", "imagen", "--store", url],
                           env={"AME_GCP_PROJECT": ""})
    assert result.exit_code == 1 and "AME_GCP_PROJECT" in result.output


def test_calendar_command_table_json_and_csv(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'creatives.db'}"
    args = ["creatives", "calendar", "--week", "2026-12-07", "--segment", "vip", "--store", url]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "week.json")], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "week of 2026-12-07, segment vip: 14 posts" in result.output and "Sun 2026-12-13" in result.output
    rows = orjson.loads((tmp_path / "week.json").read_bytes())
    assert len(rows) == 14 and {r["channel"] for r in rows} == {"linkedin", "instagram"}
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "week.csv")], terminal_width=250)
    assert result.exit_code == 0, result.output
    again = list(csv.DictReader(io.StringIO((tmp_path / "week.csv").read_text())))
    assert [r["variant_id"] for r in again] == [r["variant_id"] for r in rows]  # the stored plan, not a new one
    result = runner.invoke(app, ["creatives", "calendar", "--week", "2026-12-14", "--segment", "vip", "--channel", "x=18:00",
                                 "--days", "2", "--store", url], terminal_width=250)
    assert result.exit_code == 0 and "2 posts" in result.output
    result = runner.invoke(app, ["creatives", "calendar", "--week", "2026-12-08", "--store", url], terminal_width=250)
    assert result.exit_code == 1 and "use 2026-12-07" in " ".join(result.output.split())
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "week.xlsx")])
    assert result.exit_code == 1 and ".json or .csv" in result.output
    result = runner.invoke(app, [*args, "--channel", "linkedin"])
    assert result.exit_code == 1 and "NAME=HH:MM" in result.output
