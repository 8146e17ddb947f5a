"""The registry of trained scoring models: one folder per entry, ``<root>/<kind>/<version>/``.

An entry holds the model (XGBoost UBJSON), the preprocessing spec, the calibrator, the score scale, the
metrics, the drift reference, a model card in markdown and ``metadata.json`` (data hash, rows, columns,
code version, library versions). Versions sort by time: ``YYYYMMDD-HHMMSS-<data hash>``.

An entry is written in place, file by file, with ``metadata.json`` last as its ready marker; readers list only
entries that have it, so a reader never sees half an entry, and a write interrupted halfway leaves a folder they
ignore. (Not a temporary folder renamed into place: in production the root is a Cloud Storage bucket mounted by
Cloud Storage FUSE, where a folder rename copies object by object; see :mod:`policies.shared_storage`.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb

from data.settings import get_settings
from policies.scoring.calibration import Calibrator, ScoreScale
from policies.scoring.errors import ModelNotFound
from policies.scoring.model import ScoringModel
from policies.scoring.tabular import TabularSpec
from policies.shared_storage import atomic_write, claim_folder

KINDS = ("lead", "churn", "clv")
REPO_ROOT = Path(__file__).resolve().parents[2]

FileWriter = Callable[[Path], None]


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a table's content and column names (independent of the file format it came in)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def code_version() -> dict[str, str]:
    """The package version and, when run from a git checkout, the commit (with ``-dirty`` if modified)."""
    out = {"python": platform.python_version(), "xgboost": xgb.__version__}
    try:
        out["package"] = importlib.metadata.version("autonomous-marketing-engine")
    except importlib.metadata.PackageNotFoundError:
        out["package"] = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "policies"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        out["git_commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = "unknown"
    return out


@dataclass(frozen=True, slots=True)
class EntrySummary:
    kind: str
    version: str
    path: Path
    created_at: str
    rows: int | None
    headline: str


class ModelRegistry:
    """Versioned model entries under one root folder (default: the ``AME_MODELS_DIR`` setting)."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            root = get_settings().models_dir
        self.root = Path(root)

    # ---- writing -------------------------------------------------------------------------------------

    def new_version(self, kind: str, data_hash: str) -> str:
        """A fresh version name for ``kind``: ``YYYYMMDD-HHMMSS-<first 8 of the data hash>``."""
        if kind not in KINDS:
            raise ModelNotFound(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}")
        stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{data_hash[:8]}"
        version, suffix = stamp, 1
        while (self.root / kind / version).exists():
            suffix += 1
            version = f"{stamp}-{suffix}"
        return version

    def save(
        self, kind: str, version: str, data_hash: str, files: Mapping[str, bytes | str | FileWriter], metadata: dict[str, Any]
    ) -> Path:
        """Write one entry and return its folder: its files, then ``metadata.json`` as the ready marker (see the
        module docstring). ``files`` maps a file name to its content or to a function that writes it at the given
        path; ``metadata.json`` is added."""
        folder = self.root / kind / version
        if "metadata.json" in files:
            raise ValueError("metadata.json is the entry's ready marker, written by save(); pass its fields as metadata")
        if not claim_folder(folder):
            raise FileExistsError(f"registry entry {folder} exists already; ask new_version() for a fresh name")
        stamp = datetime.now(UTC)
        try:
            for name, content in files.items():
                target = folder / name
                if callable(content):
                    content(target)
                elif isinstance(content, bytes):
                    target.write_bytes(content)
                else:
                    target.write_text(content, encoding="utf-8")
            meta = {"kind": kind, "version": version, "created_at": stamp.isoformat(), "data": {"sha256": data_hash}, **metadata}
            meta["data"] = {"sha256": data_hash, **metadata.get("data", {})}
            meta["code"] = code_version()
            meta["files"] = sorted([*files, "metadata.json"])
            atomic_write(folder / "metadata.json", json.dumps(meta, indent=2, default=str))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder

    # ---- reading -------------------------------------------------------------------------------------

    def versions(self, kind: str) -> list[str]:
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "metadata.json").exists())

    def path(self, kind: str, version: str | None = None) -> Path:
        """The folder of an entry; ``None`` or ``latest`` is the newest version of the kind."""
        versions = self.versions(kind)
        if not versions:
            command = "clv" if kind == "clv" else f"scoring --kind {kind}"
            raise ModelNotFound(f"no {kind!r} model in the registry at {self.root}; train one with `ame train {command}`")
        if version in (None, "latest"):
            return self.root / kind / versions[-1]
        matches = [v for v in versions if v == version or v.startswith(version)]
        if len(matches) != 1:
            raise ModelNotFound(f"{kind!r} version {version!r} matches {len(matches)} entries; known versions: {', '.join(versions[-10:])}")
        return self.root / kind / matches[0]

    def metadata(self, kind: str, version: str | None = None) -> dict[str, Any]:
        return json.loads((self.path(kind, version) / "metadata.json").read_text())

    def read_json(self, kind: str, version: str | None, name: str) -> Any:
        return json.loads((self.path(kind, version) / name).read_text())

    def entries(self) -> list[EntrySummary]:
        out: list[EntrySummary] = []
        for kind in KINDS:
            for version in self.versions(kind):
                meta = json.loads((self.root / kind / version / "metadata.json").read_text())
                out.append(
                    EntrySummary(kind, version, self.root / kind / version, meta.get("created_at", "?"), meta.get("data", {}).get("rows"),
                                 meta.get("headline", ""))
                )
        return out

    # ---- the scoring models --------------------------------------------------------------------------

    def load_scoring(self, kind: str, version: str | None = None) -> ScoringModel:
        """Load a lead or churn model ready to score (the scoring agent's entry point)."""
        folder = self.path(kind, version)
        booster = xgb.Booster()
        booster.load_model(str(folder / "model.ubj"))
        return ScoringModel(
            kind=kind,
            version=folder.name,
            spec=TabularSpec.model_validate_json((folder / "preprocessing.json").read_text()),
            booster=booster,
            calibrator=Calibrator.model_validate_json((folder / "calibrator.json").read_text()),
            scale=ScoreScale.model_validate_json((folder / "score_scale.json").read_text()),
        )
