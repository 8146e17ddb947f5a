"""The demo's learning step: a journey policy is trained briefly (or the best one in the user's registry is taken),
put through the promotion gate against what the demo's journey slot serves, and promoted or refused."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from policies.promotion import GateReport, GateSettings, promotion_event, run_gate
from policies.registry import PolicyMetadata, PolicyRegistry
from policies.slots import BUILTINS, LoadedPolicy, RegistrySource, SlotPointers, SlotTarget
from policies.train_journey import JourneyArgs, main


@dataclass(frozen=True, slots=True)
class LearningStep:
    """What the demo tried to put into service, and what the gate said."""

    candidate: SlotTarget
    origin: str  # "trained in the demo" or "the best in the registry"
    train_seconds: float
    gate: GateReport
    outcome: str  # promoted | refused
    serving: SlotTarget


def best_in_registry(registry: PolicyRegistry) -> PolicyMetadata | None:
    """The registered journey policy with the best profit per customer on its evaluation (servable ones only)."""
    best: PolicyMetadata | None = None
    for name in registry.names():
        for version in registry.versions(name):
            meta = registry.metadata(name, version)
            servable = meta.task == "journey"
            if servable and (best is None or meta.metrics.get("profit_per_customer", -1e9) > best.metrics.get("profit_per_customer", -1e9)):
                best = meta
    return best


def candidate(demo_registry: Path, user_registry: Path, train_steps: int, seed: int) -> tuple[SlotTarget, str, float]:
    """The best journey policy of the user's registry, copied into the demo's; else one trained for ``train_steps``."""
    found = best_in_registry(PolicyRegistry(user_registry)) if user_registry.is_dir() else None
    if found is not None:
        target = demo_registry / found.name / found.version
        shutil.copytree(user_registry / found.name / found.version, target, dirs_exist_ok=True)
        return SlotTarget(found.name, found.version), "the best in the registry", 0.0
    started = time.perf_counter()
    path = main(JourneyArgs(timesteps=train_steps, num_envs=64, batch_size=1_920, seed=seed, eval_customers=500,
                            registry=str(demo_registry), run_dir=str(demo_registry.parent / "runs"), progress=False,
                            name="journey-ppo"))
    return SlotTarget("journey-ppo", path.name), "trained in the demo", time.perf_counter() - started


def learn(demo_registry: Path, user_registry: Path, log: object, train_steps: int, seed: int,
          gate: GateSettings) -> LearningStep:
    """The candidate through the gate against what the demo's journey slot serves; promoted when it passes."""
    target, origin, seconds = candidate(demo_registry, user_registry, train_steps, seed)
    source = RegistrySource(demo_registry, BUILTINS)
    pointers = SlotPointers(demo_registry)
    current = pointers.target("journey")
    report = run_gate("journey", LoadedPolicy(target.name, target.version, source.load("journey", target)),
                      LoadedPolicy(current.name, current.version, source.load("journey", current)), log, gate)
    outcome = "refused" if report.refused else "promoted"
    if outcome == "promoted":
        pointers.point("journey", target, previous=current.label())
    log.append([promotion_event(report, outcome, by="ame demo")])  # type: ignore[attr-defined]
    return LearningStep(target, origin, seconds, report, outcome, pointers.target("journey"))
