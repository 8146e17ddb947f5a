"""Fixtures of the warehouse's integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """A SQLite log and a DuckDB warehouse in the test's folder."""
    return {"log": f"sqlite:///{tmp_path / 'events.db'}", "warehouse": f"duckdb:///{tmp_path / 'wh.duckdb'}"}
