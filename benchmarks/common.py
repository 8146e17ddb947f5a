"""What every benchmark returns: a figure printed beside its baseline and its target."""

from __future__ import annotations

import socket
from dataclasses import dataclass


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (benchmarks start their servers there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
