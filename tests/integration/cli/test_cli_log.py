"""The command line of the log, as a person uses it: the JSONL append of the issue's must-show and friends."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ame.cli import app
from data.log import open_log
from data.synthetic import synthetic_dicts

runner = CliRunner()


@pytest.fixture
def thousand_lines(tmp_path: Path) -> Path:
    """1,000 lines: 998 valid events, one malformed line (line 250) and one invalid event (line 700)."""
    events = list(synthetic_dicts(998, 100, seed=21))
    lines = [orjson.dumps(e) for e in events]
    lines.insert(249, b'{"event_id": "x", "event_type": "page_view",,}')
    invalid = dict(events[0], event_id="evt-invalid", event_type="purchase", properties={"order_id": "o", "amount": "lots"})
    lines.insert(699, orjson.dumps(invalid))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_append_1000_lines_with_two_bad_ones(thousand_lines: Path, log_url: str) -> None:
    first = runner.invoke(app, ["events", "append", str(thousand_lines), "--log", log_url])
    assert first.exit_code == 1, first.output
    assert "2 of 1,000 lines were rejected" in first.output
    assert "line 250: not valid JSON" in first.output
    assert "line 700: event 'evt-invalid' (purchase): field properties.amount" in first.output
    log = open_log(log_url)
    assert log.stats().events == 998
    letters = log.dead_letters()
    assert [(d.line, d.source) for d in letters] == [(250, "events.jsonl"), (700, "events.jsonl")]
    assert "float_parsing" in letters[1].reason

    second = runner.invoke(app, ["events", "append", str(thousand_lines), "--log", log_url])
    assert second.exit_code == 1
    assert log.stats().events == 998
    assert log.stats().dead_letters_pending == 2
    assert re.search(r"appended\W+0\W", second.output) and re.search(r"already in the log\W+998\W", second.output)


def test_dlq_list_and_redrive_with_a_correction(thousand_lines: Path, log_url: str, tmp_path: Path) -> None:
    runner.invoke(app, ["events", "append", str(thousand_lines), "--log", log_url])
    listing = runner.invoke(app, ["events", "dlq", "list", "--log", log_url])
    assert listing.exit_code == 0 and "250" in listing.output and "700" in listing.output
    letter = open_log(log_url).dead_letters()[1]
    fixed = orjson.loads(letter.raw)
    fixed["properties"]["amount"] = 12.5
    correction = tmp_path / "fixed.json"
    correction.write_bytes(orjson.dumps(fixed))
    result = runner.invoke(app, ["events", "dlq", "redrive", str(letter.id), "--with", str(correction), "--log", log_url])
    assert result.exit_code == 0, result.output
    log = open_log(log_url)
    assert log.stats().events == 999 and log.stats().dead_letters_pending == 1
    nothing = runner.invoke(app, ["events", "dlq", "redrive", "999", "--log", log_url])
    assert nothing.exit_code == 2 and "no pending dead letter with id 999" in nothing.output


def test_missing_file_and_bad_url(log_url: str) -> None:
    result = runner.invoke(app, ["events", "append", "/nonexistent.jsonl", "--log", log_url])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["log", "stats", "--log", "mysql://x"])
    assert result.exit_code == 2 and "unknown event log URL" in result.output


def test_tail_stats_and_profile(thousand_lines: Path, log_url: str, state_url: str) -> None:
    runner.invoke(app, ["events", "append", str(thousand_lines), "--log", log_url])
    tail = runner.invoke(app, ["events", "tail", "-n", "3", "--json", "--type", "purchase", "--log", log_url])
    assert tail.exit_code == 0
    rows = [orjson.loads(line) for line in tail.output.strip().splitlines()]
    assert len(rows) == 3 and {r["event_type"] for r in rows} == {"purchase"}
    customer = rows[-1]["customer_id"]
    shown = runner.invoke(app, ["profile", "show", customer, "--json", "--log", log_url, "--state", state_url])
    assert shown.exit_code == 0, shown.output
    profile = orjson.loads(shown.output)
    assert profile["customer_id"] == customer and profile["event_counts"]["purchase"] >= 1
    stats = runner.invoke(app, ["log", "stats", "--log", log_url, "--state", state_url])
    assert stats.exit_code == 0 and "998" in stats.output and "profile" in stats.output
    missing = runner.invoke(app, ["profile", "show", "nobody", "--log", log_url, "--state", state_url])
    assert missing.exit_code == 1 and "no customer 'nobody'" in missing.output


def test_rebuild_prints_the_same_hash_as_incremental(thousand_lines: Path, log_url: str, state_url: str) -> None:
    runner.invoke(app, ["events", "append", str(thousand_lines), "--log", log_url])
    incremental = runner.invoke(app, ["profile", "hash", "--log", log_url, "--state", state_url])
    rebuilt = runner.invoke(app, ["profile", "rebuild", "--log", log_url, "--state", state_url])
    assert incremental.exit_code == 0 and rebuilt.exit_code == 0
    digest = incremental.output.split("state hash ")[1].split()[0]
    assert f"state hash {digest}" in rebuilt.output


def test_demo_runs_end_to_end() -> None:
    result = runner.invoke(app, ["log", "demo", "--events", "3000", "--customers", "200"])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output and "rejected" in result.output


def test_a_backend_error_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    result = runner.invoke(app, ["events", "tail", "--log", "pubsub://ame-test/customer-events"])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
