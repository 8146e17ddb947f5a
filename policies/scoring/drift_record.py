"""The latest drift check of each model kind, kept where the decision API's metrics read it.

``ame models drift`` writes one small JSON file per kind under ``<models dir>/drift/<kind>.json`` (the model's
version, when, how many rows, and the PSI of the score and of each top input); the API exports them as
``ame_model_psi{model,version,input}`` on ``/metrics``, and the ScoreDrift alert reads that gauge.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from policies.scoring.drift import DriftRow

FOLDER = "drift"


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One drift check: the model it judged and the PSI of each input (``score`` for the scores)."""

    model: str
    version: str
    checked_at: str
    rows: int
    psi: dict[str, float]


def save_drift_check(models_dir: Path, kind: str, version: str, rows: Sequence[DriftRow]) -> Path:
    """Write the check as ``<models_dir>/drift/<kind>.json`` (atomically, replacing the previous one)."""
    folder = Path(models_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    check = {"model": kind, "version": version, "checked_at": datetime.now(UTC).isoformat(),
             "rows": max((r.rows for r in rows), default=0), "psi": {r.name: r.psi for r in rows}}
    target = folder / f"{kind}.json"
    tmp = folder / f".{kind}.json.tmp"
    tmp.write_text(json.dumps(check, indent=2), encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_drift_checks(models_dir: Path) -> list[DriftCheck]:
    """The latest check of every kind under ``models_dir`` (none where no check has run)."""
    folder = Path(models_dir) / FOLDER
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append(DriftCheck(str(data["model"]), str(data["version"]), str(data["checked_at"]), int(data["rows"]),
                              {str(k): float(v) for k, v in data["psi"].items()}))
    return out
