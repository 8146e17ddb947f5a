"""The registry of trained policies: ``<root>/<name>/<version>/``.

Layout (root = ``AME_POLICIES_DIR``, default ``artifacts/policies``)::

    <root>/<name>/v0001/model.zip       the stable-baselines3 model (training, fine-tuning, analysis)
    <root>/<name>/v0001/policy.pt       TorchScript export: what serving loads, with torch only (no SB3)
    <root>/<name>/v0001/metadata.json   PolicyMetadata: env config hash, seed, steps, metrics, git sha, ...
    <root>/slots/<slot>.json            what serves each slot (policies.slots; written by ``ame policies promote``)

Serving: :meth:`PolicyRegistry.load` returns an :class:`ExportedPolicy` with the SB3 ``predict`` protocol and
``action_probabilities`` (the propensities to log with each decision); the slot a policy serves in is
:mod:`policies.slots`'s business. This module imports neither stable-baselines3 nor the simulator's vector envs.

Shared storage: in production the root is a Cloud Storage bucket mounted by GKE's Cloud Storage FUSE driver
(:mod:`policies.shared_storage`). A version's files are written in place and ``metadata.json`` last, as its
ready marker: a version without it (a write interrupted halfway, or still under way) is not listed nor loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from data.settings import get_settings
from environment.acting import legal_from_observation
from environment.belief_planner import BeliefObserving
from policies.shared_storage import atomic_write, claim_folder

logger = logging.getLogger(__name__)

__all__ = [
    "ExportedPolicy",
    "PolicyMetadata",
    "PolicyNotFound",
    "PolicyRegistry",
    "RegistryError",
    "code_version",
    "config_hash",
    "journey_action_mask",
]

MODEL_FILE, EXPORT_FILE, METADATA_FILE = "model.zip", "policy.pt", "metadata.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^v(\d{4,})$")


class RegistryError(ValueError):
    """A registry request that cannot be served as asked (bad name, missing files)."""


class PolicyNotFound(RegistryError, LookupError):
    """No such policy or version."""


class PolicyMetadata(BaseModel):
    """What a registered policy version was trained on and how it scored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    task: Literal["journey", "bidding"]
    algo: str
    export_kind: Literal["discrete", "continuous"]
    masked: bool = Field(False, description="Trained with action masking: the export applies the legal-action mask.")
    observation_dim: int
    n_actions: int | None = None
    action_low: list[float] | None = None
    action_high: list[float] | None = None
    env_config_hash: str
    env_options: dict[str, Any] = Field(default_factory=dict)
    seed: int
    timesteps: int
    train_seconds: float = 0.0
    metrics: dict[str, float] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    code_version: str
    created_at: str


def config_hash(config: Any) -> str:
    """sha256 (first 16 hex) of a config: a pydantic model's JSON dump, or any JSON-able object."""
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_version() -> str:
    """The git sha of the checkout (``+dirty`` when tracked files changed), or ``unknown`` outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "policies", "environment"],
            cwd=root, capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def journey_action_mask(obs: np.ndarray) -> np.ndarray:
    """(N, 6) legal journey actions read from the observation alone (consent columns 9-11, cap column 12);
    equal to the env's ``action_masks()``."""
    return legal_from_observation(obs)


class ExportedPolicy:
    """A registered policy loaded from its TorchScript export, with SB3's ``predict`` protocol.

    :param path: the version folder (holding ``policy.pt`` and ``metadata.json``).
    """

    def __init__(self, path: str | Path) -> None:
        import torch  # lazy: torch is heavy

        self.path = Path(path)
        self.metadata = PolicyMetadata.model_validate_json((self.path / METADATA_FILE).read_text())
        self.name = f"{self.metadata.name}@{self.metadata.version}"
        self._torch = torch
        self._module = torch.jit.load(str(self.path / EXPORT_FILE), map_location="cpu").eval()
        self._rng = np.random.default_rng()

    @property
    def acting(self) -> str:
        """How this policy acts when served: ``sample`` its distribution (the default of a trained discrete
        policy) or ``argmax`` (recorded at training where validation preferred it; continuous policies)."""
        if self.metadata.export_kind != "discrete":
            return "argmax"
        return "argmax" if self.metadata.env_options.get("act") == "argmax" else "sample"

    def _masks(self, obs: np.ndarray, action_masks: np.ndarray | None) -> np.ndarray:
        n_actions = int(self.metadata.n_actions or 0)
        if action_masks is not None:
            return np.asarray(action_masks, dtype=bool).reshape(obs.shape[0], n_actions)
        if self.metadata.masked and self.metadata.task == "journey":
            return journey_action_mask(obs)
        return np.ones((obs.shape[0], n_actions), dtype=bool)

    def action_probabilities(self, observation: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
        """(N, A) probabilities of each action (discrete policies): the propensities to log."""
        if self.metadata.export_kind != "discrete":
            raise RegistryError(f"{self.name} is a continuous policy; it has no action probabilities")
        obs = np.atleast_2d(np.asarray(observation, dtype=np.float32))
        mask = self._masks(obs, action_masks)
        with self._torch.no_grad():
            probs = self._module(self._torch.from_numpy(obs), self._torch.from_numpy(mask)).numpy()
        return probs.astype(np.float64)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        """Actions for a batch (or one) observation. Discrete: argmax when ``deterministic``, else a draw from
        :meth:`action_probabilities`. Continuous: always the deterministic action."""
        single = np.asarray(observation).ndim == 1
        obs = np.atleast_2d(np.asarray(observation, dtype=np.float32))
        if self.metadata.export_kind == "continuous":
            with self._torch.no_grad():
                actions = self._module(self._torch.from_numpy(obs)).numpy()
        else:
            probs = self.action_probabilities(obs, action_masks)
            if deterministic:
                actions = probs.argmax(axis=1)
            else:
                u = self._rng.random((probs.shape[0], 1))
                actions = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1)
        return (actions[0] if single else actions), state


class PolicyRegistry:
    """Versions of named policies on a filesystem root.

    :param root: the registry folder; default ``get_settings().policies_dir``.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            root = get_settings().policies_dir
        self.root = Path(root)

    # ---- paths and listing ----
    def _check_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise RegistryError(f"policy name {name!r} is invalid: use letters, digits, '_', '.', '-' (at most 100)")

    def path(self, name: str, version: str) -> Path:
        """The folder of one version (raises :class:`PolicyNotFound` when absent)."""
        self._check_name(name)
        p = self.root / name / version
        if not (p / METADATA_FILE).is_file():
            known = ", ".join(self.versions(name)) or "none"
            raise PolicyNotFound(f"policy {name!r} has no version {version!r} (versions: {known}); see `ame policies list`")
        return p

    def names(self) -> list[str]:
        """Registered policy names."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        """Versions of ``name``, oldest first."""
        self._check_name(name)
        d = self.root / name
        if not d.is_dir():
            return []
        found = [p.name for p in d.iterdir() if _VERSION.match(p.name) and (p / METADATA_FILE).is_file()]
        return sorted(found, key=lambda v: int(v[1:]))

    def latest(self, name: str) -> str:
        """The newest version of ``name``."""
        versions = self.versions(name)
        if not versions:
            raise PolicyNotFound(f"no policy named {name!r} under {self.root}; train one with `ame train journey|bidding`")
        return versions[-1]

    def metadata(self, name: str, version: str | None = None) -> PolicyMetadata:
        """The metadata of a version (default: the latest)."""
        version = version or self.latest(name)
        return PolicyMetadata.model_validate_json((self.path(name, version) / METADATA_FILE).read_text())

    # ---- writing ----
    def _next_version(self, name: str) -> str:
        d = self.root / name
        nums = [int(m.group(1)) for p in d.iterdir() if (m := _VERSION.match(p.name))] if d.is_dir() else []
        return f"v{(max(nums) + 1) if nums else 1:04d}"

    def register(self, name: str, model: Any, **metadata: Any) -> PolicyMetadata:
        """Save an SB3 ``model`` as a new version of ``name``: the zip, the TorchScript export (checked equal to
        SB3's actions on random observations) and the metadata. ``metadata`` fills :class:`PolicyMetadata`
        (task, seed, timesteps, env_config_hash, metrics, ...); name, version, export kind and code version
        are set here.
        """
        from policies.export import export_torchscript, verify_export  # lazy: loads torch

        self._check_name(name)
        for _ in range(100):  # another process may take the same number: mkdir is the lock
            version = self._next_version(name)
            target = self.root / name / version
            if claim_folder(target):
                break
        else:
            raise RegistryError(f"could not allocate a new version under {self.root / name}")
        model.save(str(target / MODEL_FILE))
        kind = export_torchscript(model, target / EXPORT_FILE)
        masked = bool(metadata.get("masked", False))
        verify_export(model, target / EXPORT_FILE, kind, masked and metadata.get("task") == "journey")
        space = model.action_space
        fields: dict[str, Any] = {
            "name": name, "version": version, "algo": type(model).__name__, "export_kind": kind,
            "observation_dim": int(np.prod(model.observation_space.shape)), "code_version": code_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if kind == "discrete":
            fields["n_actions"] = int(space.n)
        else:
            fields["action_low"], fields["action_high"] = space.low.tolist(), space.high.tolist()
        meta = PolicyMetadata.model_validate(metadata | fields)
        # the ready marker, last: readers list only versions that have it (policies.shared_storage)
        atomic_write(target / METADATA_FILE, meta.model_dump_json(indent=2))
        logger.info("registered %s %s at %s", name, version, target)
        return meta

    def update_metrics(self, name: str, version: str, metrics: dict[str, float]) -> PolicyMetadata:
        """Merge ``metrics`` into a version's metadata (evaluation results arrive after registration)."""
        p = self.path(name, version) / METADATA_FILE
        meta = PolicyMetadata.model_validate_json(p.read_text())
        meta = meta.model_copy(update={"metrics": meta.metrics | {k: float(v) for k, v in metrics.items()}})
        atomic_write(p, meta.model_dump_json(indent=2))
        return meta

    # ---- loading ----
    def load(self, name: str, version: str | None = None) -> ExportedPolicy:
        """The exported (SB3-free) predictor of a version (default: the latest)."""
        version = version or self.latest(name)
        return ExportedPolicy(self.path(name, version))

    def load_sb3(self, name: str, version: str | None = None) -> Any:
        """The stable-baselines3 model of a version (needs SB3; for training and analysis)."""
        meta = self.metadata(name, version)
        path = self.path(name, meta.version) / MODEL_FILE
        if meta.algo == "MaskablePPO":
            from sb3_contrib import MaskablePPO  # lazy: sb3-contrib is heavy

            return MaskablePPO.load(str(path), device="cpu")
        import stable_baselines3  # lazy: stable-baselines3 is heavy

        return getattr(stable_baselines3, meta.algo).load(str(path), device="cpu")


def servable(policy: ExportedPolicy) -> Any:
    """The policy as the engine serves it: a policy that also observes the belief over hidden states
    (``env_options.belief``) gets the belief the journey agent keeps appended to its 24 columns."""
    if policy.metadata.env_options.get("belief"):
        return BeliefObserving(policy, name=policy.name)
    return policy

