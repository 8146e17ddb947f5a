"""What every benchmark returns: a figure printed beside its baseline and its target."""

from __future__ import annotations

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
