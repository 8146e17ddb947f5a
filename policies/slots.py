"""The serving slots: which policy serves each decision (``journey``, ``bidding``), for the agents and the API alike.

A slot points at a policy by its registry name and version, or at a built-in policy (version ``builtin``): a
small JSON file ``<registry>/slots/<slot>.json``, replaced atomically by ``ame policies promote``. A slot never
promoted serves its default built-in (:data:`DEFAULT_POLICY`): for the journey the best tuned heuristic of
``ame evaluate journey``.

:class:`PolicySlot` holds a slot's loaded policy as an immutable :class:`LoadedPolicy`. A caller reads
``slot.current`` once and uses that object for the whole decision, so a swap never breaks one in flight: the new
version is loaded beside the old one (``refresh``, from a watcher thread or between batches) and only then is the
reference replaced. A version that fails to load leaves the old one serving.

Shared storage: every replica and agent on every node reads the same pointer file, on the registry's bucket
mounted by Cloud Storage FUSE (:mod:`policies.shared_storage`). The pointer is one small file, written whole
under a temporary name and renamed over the old one, so a reader sees the old slot or the new one. A reader keeps
what it read while the file's identity (inode, size, modification time) is unchanged; a promotion makes a new
file, so each replica follows it at its next poll once the mount's metadata cache has expired.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from environment.belief import parse_planner_name
from environment.belief_planner import ServedPlanner
from environment.heuristics import heuristic_policy
from policies.bidder import ProfilePacing
from policies.registry import PolicyRegistry, servable
from policies.shared_storage import atomic_write

logger = logging.getLogger(__name__)

BUILTIN = "builtin"
SLOTS = ("journey", "bidding")
DEFAULT_POLICY = {"journey": "offer_every_k", "bidding": "profile_pacing"}
"""What each slot serves until a policy is promoted into it."""
SERVED_JOURNEY_POLICY = "belief_lookahead_u6_grid"
"""The best journey policy the engine ships: the belief-lookahead planner on the servable grid, unsubscribes priced
so that it unsubscribes no more customers than the best tuned heuristic (``ame policies promote`` it)."""


class SlotError(ValueError):
    """A slot request that cannot be carried out as asked."""


class PolicyNotLoaded(RuntimeError):
    """A slot has no policy yet (the replica or agent is not ready)."""


@dataclass(frozen=True, slots=True)
class SlotTarget:
    """What a slot points at: a registry policy (name, version) or a built-in (version ``builtin``)."""

    name: str
    version: str

    @property
    def builtin(self) -> bool:
        return self.version == BUILTIN

    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    name: str
    version: str
    policy: Any


def check_slot(slot: str) -> str:
    if slot not in SLOTS:
        raise SlotError(f"unknown slot {slot!r}; the slots are {', '.join(SLOTS)}")
    return slot


class SlotPointers:
    """The slot pointer files under a registry root; a read is a ``stat`` while the file is unchanged."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._cache: dict[str, tuple[tuple[int, int, int], SlotTarget]] = {}

    def path(self, slot: str) -> Path:
        return self.root / "slots" / f"{check_slot(slot)}.json"

    def target(self, slot: str) -> SlotTarget:
        """What ``slot`` serves now (its default built-in where nothing was promoted)."""
        path = self.path(slot)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return SlotTarget(DEFAULT_POLICY[slot], BUILTIN)
        # the identity, not the mtime alone: two promotions within one clock tick share an mtime
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(slot)
        if cached is not None and cached[0] == identity:
            return cached[1]
        data = json.loads(path.read_text())
        target = SlotTarget(str(data["name"]), str(data["version"]))
        self._cache[slot] = (identity, target)
        return target

    def point(self, slot: str, target: SlotTarget, **extra: Any) -> None:
        """Point ``slot`` at ``target`` (atomically: a reader sees the old pointer or the new one)."""
        path = self.path(slot)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"name": target.name, "version": target.version,
                  "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"), **extra}
        atomic_write(path, json.dumps(record, indent=2))


@runtime_checkable
class PolicySource(Protocol):
    """Where a slot's policies come from."""

    def target(self, slot: str) -> SlotTarget:
        """What ``slot`` should serve now."""
        ...

    def load(self, slot: str, target: SlotTarget) -> Any:
        """Load one policy (slow; never called on a decision's path)."""
        ...


class RegistrySource:
    """Slots read from the registry's pointers; registry policies loaded by ``policies.registry``; built-ins by
    ``builtins`` (slot -> name -> policy).

    :param root: the registry folder (``AME_POLICIES_DIR``).
    :param builtins: slot -> (policy name -> the built-in policy).
    :param loader: ``(name, version) -> policy`` for registry policies (default: the registry's SB3-free export).
    """

    def __init__(self, root: str | Path, builtins: Mapping[str, Callable[[str], Any]],
                 loader: Callable[[str, str], Any] | None = None) -> None:
        self.pointers = SlotPointers(root)
        self.builtins = dict(builtins)
        self._loader = loader

    def target(self, slot: str) -> SlotTarget:
        return self.pointers.target(slot)

    def load(self, slot: str, target: SlotTarget) -> Any:
        if target.builtin:
            if slot not in self.builtins:
                raise SlotError(f"no built-in policies for slot {slot!r}")
            return self.builtins[slot](target.name)
        if self._loader is not None:
            return self._loader(target.name, target.version)
        return servable(PolicyRegistry(self.pointers.root).load(target.name, target.version))


class PolicySlot:
    """One served slot with its hot swap (see the module docstring).

    :param slot: ``journey`` or ``bidding``.
    :param source: where policies come from.
    :param pinned: serve this target whatever the slot points at (None: follow the pointer).
    """

    def __init__(self, slot: str, source: PolicySource, pinned: SlotTarget | None = None) -> None:
        self.name = check_slot(slot)
        self.source = source
        self.pinned = pinned
        self._current: LoadedPolicy | None = None
        self._lock = threading.Lock()
        self.swaps = 0
        self.on_swap: Callable[[LoadedPolicy], None] | None = None

    @property
    def current(self) -> LoadedPolicy:
        loaded = self._current
        if loaded is None:
            raise PolicyNotLoaded(f"the {self.name} slot has no policy loaded yet")
        return loaded

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def wanted(self) -> SlotTarget:
        return self.pinned or self.source.target(self.name)

    def refresh(self) -> bool:
        """Load the wanted policy if it differs from the served one; True when it swapped."""
        with self._lock:
            wanted = self.wanted()
            current = self._current
            if current is not None and (current.name, current.version) == (wanted.name, wanted.version):
                return False
            try:
                policy = self.source.load(self.name, wanted)
            except Exception:
                if current is None:
                    raise
                logger.exception("slot %s: loading %s failed; still serving %s@%s", self.name, wanted.label(),
                                 current.name, current.version)
                return False
            self._current = LoadedPolicy(wanted.name, wanted.version, policy)
            self.swaps += current is not None
        logger.info("slot %s: now serving %s (was %s)", self.name, wanted.label(),
                    f"{current.name}@{current.version}" if current else None)
        if current is not None and self.on_swap is not None:
            self.on_swap(self._current)
        return True


def builtin_journey_policy(name: str) -> Any:
    """A built-in journey policy by name: a tuned heuristic, ``no_contact``, ``<name>-eps<e>``, or a servable
    belief planner (``belief_lookahead_u<price>_grid``: it plans on the belief the journey agent keeps)."""
    planner = parse_planner_name(name)
    if planner is None:
        return heuristic_policy(name)
    if not planner.grid:
        raise SlotError(f"{name} solves every customer's action values over the whole horizon (1.4 GB per 1,000 "
                        f"customers); serve {name}_grid, the same planner on the grid of propensities")
    return ServedPlanner(planner)


def builtin_bidding_policy(name: str) -> Any:
    """The built-in bidder: the pacing controller without a learned residual (the best untrained bidder)."""
    if name != DEFAULT_POLICY["bidding"]:
        raise SlotError(f"no built-in bidder named {name!r}; the built-in bidder is {DEFAULT_POLICY['bidding']}")

    return ProfilePacing()


BUILTINS: dict[str, Callable[[str], Any]] = {"journey": builtin_journey_policy, "bidding": builtin_bidding_policy}
"""Slot -> (built-in policy name -> the policy)."""
