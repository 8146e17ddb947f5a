"""`ame creatives …` end to end on a temporary store: generate, pending, approve, reject, list, stats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from ame.cli import app
from data.settings import get_settings
from policies.creative.models import Status
from policies.creative.serving import select_creative
from policies.creative.store import CreativeStore, open_store

runner = CliRunner()


def test_creatives_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'creatives.db'}"
    result = runner.invoke(app, ["creatives", "generate", "--segment", "vip", "--kind", "ad_copy", "--store", url], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "10 ad_copy variants for vip" in result.output and "pending" in result.output
    store = CreativeStore(url)
    pending = [s for s in store.list(status=Status.PENDING) if s.in_test]
    assert len(pending) == 3
    result = runner.invoke(app, ["creatives", "pending", "--store", url], terminal_width=250)
    assert result.exit_code == 0 and pending[0].variant.variant_id in result.output
    # nothing approved yet: nothing to serve
    assert store.arms("vip", "ad_copy") == []
    result = runner.invoke(app, ["creatives", "approve", pending[0].variant.variant_id, "--by", "alice", "--store", url])
    assert result.exit_code == 0 and "approved by alice" in result.output
    result = runner.invoke(app, ["creatives", "reject", pending[1].variant.variant_id, "--by", "bob", "--note", "tone", "--store", url])
    assert result.exit_code == 0 and "rejected by bob" in result.output
    served = {select_creative("vip", "ad_copy", store=store, rng=np.random.default_rng(i), n_draws=100)[0].variant_id for i in range(50)}
    assert served == {pending[0].variant.variant_id}
    result = runner.invoke(app, ["creatives", "list", "--status", "approved", "--store", url], terminal_width=250)
    assert result.exit_code == 0 and pending[0].variant.variant_id in result.output
    assert store.get(pending[0].variant.variant_id).decided_by == "alice"
    result = runner.invoke(app, ["creatives", "stats", "--store", url], terminal_width=250)
    assert result.exit_code == 0 and pending[0].variant.variant_id in result.output
    result = runner.invoke(app, ["creatives", "approve", "cv-nope", "--store", url])
    assert result.exit_code == 1 and "ame creatives list" in result.output
    result = runner.invoke(app, ["creatives", "generate", "--segment", "vip", "--kind", "banner", "--store", url])
    assert result.exit_code == 1 and "unknown kind" in result.output


def test_default_store_lives_in_ame_home(tmp_path: Path) -> None:
    assert str(get_settings().home) in open_store().url
