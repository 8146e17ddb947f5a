"""What every benchmark returns: a figure printed beside its baseline and its target."""

from __future__ import annotations

import json
import math
import socket
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One benchmark figure, measured in the same run as its baseline."""

    area: str
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float | None
    target: str
    met: bool | None  # None where the row has no target
    note: str = ""

    def __post_init__(self) -> None:
        """Plain Python numbers and booleans, whatever a benchmark computed them with (numpy's ``np.bool_``
        and ``np.float64`` from comparisons and means), so a result always serializes to JSON."""
        object.__setattr__(self, "value", float(self.value))
        if self.baseline_value is not None:
            object.__setattr__(self, "baseline_value", float(self.baseline_value))
        if self.met is not None:
            object.__setattr__(self, "met", bool(self.met))

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready values (a NaN figure becomes null)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def write_json(results: list[BenchResult], path: Path) -> None:
    """Every result as one JSON list (``python -m benchmarks --json out.json``)."""
    path.write_text(json.dumps([r.to_json() for r in results], indent=2))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (benchmarks start their servers there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
