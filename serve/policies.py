"""The policies a replica serves, and their hot swap.

A :class:`PolicySlot` holds one named policy (``journey``, ``bidding``) as an immutable
:class:`LoadedPolicy`. A handler reads ``slot.current`` once and uses that object for the whole request, so a
swap never breaks a request in flight: the new version is loaded **beside** the old one (in the watcher
thread or in ``reconfigure``) and only then is the reference replaced.

Where versions come from is a :class:`PolicySource`: the policy registry (``artifacts/policies/<name>/``,
its ``PROMOTED`` pointer written atomically by ``ame policies promote NAME VERSION``) or the built-in baselines. A
replica learns of a promotion in two ways: it polls the pointer every ``poll_interval_s`` (a file stat), and
``reconfigure`` (a Serve ``user_config`` update) can pin a version explicitly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)

BUILTIN = "builtin"


class PolicyNotLoaded(RuntimeError):
    """A slot has no policy yet (the replica is not healthy)."""


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    name: str
    version: str
    policy: Any


@runtime_checkable
class PolicySource(Protocol):
    """Where a slot's versions come from."""

    def promoted_version(self, name: str) -> str | None:
        """The version promoted now, or None where nothing is promoted."""
        ...

    def load(self, name: str, version: str) -> Any:
        """Load one version (slow; never called on the request path)."""
        ...


class RegistrySource:
    """The policy registry's ``<root>/<name>/PROMOTED`` pointer, read directly (a stat when unchanged), with
    ``policies.registry`` loading the artifact; the built-in baseline where nothing is promoted.

    :param root: the registry folder (``AME_POLICIES_DIR``).
    :param builtins: name -> factory of the baseline served while no version is promoted.
    :param loader: ``(name, version) -> policy``; default: ``policies.registry``'s loader.
    """

    def __init__(self, root: str | Path, builtins: Mapping[str, Callable[[], Any]],
                 loader: Callable[[str, str], Any] | None = None) -> None:
        self.root = Path(root)
        self.builtins = dict(builtins)
        self._loader = loader
        self._cache: dict[str, tuple[float, str | None]] = {}

    def promoted_version(self, name: str) -> str | None:
        pointer = self.root / name / "PROMOTED"
        try:
            mtime = pointer.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        cached = self._cache.get(name)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        text = pointer.read_text().strip()
        version = (text.splitlines() or [""])[0].strip() or None
        self._cache[name] = (mtime, version)
        return version

    def load(self, name: str, version: str) -> Any:
        if version == BUILTIN:
            if name not in self.builtins:
                raise KeyError(f"no built-in policy named {name!r}; known: {', '.join(sorted(self.builtins))}")
            return self.builtins[name]()
        if self._loader is not None:
            return self._loader(name, version)
        return _registry_loader(self.root)(name, version)


def _registry_loader(root: Path) -> Callable[[str, str], Any]:
    """``policies.registry.PolicyRegistry(root).load`` (an SB3-free TorchScript predictor), imported lazily so a
    replica that serves only the built-in baselines never imports torch."""
    from policies.registry import PolicyRegistry, refuse_unservable

    registry = PolicyRegistry(root)

    def load(name: str, version: str) -> Any:
        policy = registry.load(name, version)
        refuse_unservable(policy)
        return policy

    return load


class PolicySlot:
    """One served policy with its hot swap (see the module docstring).

    :param name: the registry name.
    :param source: where versions come from.
    :param pinned: a version to serve whatever is promoted (None: follow the promoted pointer).
    """

    def __init__(self, name: str, source: PolicySource, pinned: str | None = None) -> None:
        self.name = name
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
            raise PolicyNotLoaded(f"policy {self.name!r} is not loaded yet")
        return loaded

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def wanted_version(self) -> str:
        return self.pinned or self.source.promoted_version(self.name) or BUILTIN

    def refresh(self) -> bool:
        """Load the wanted version if it differs from the served one; True when it swapped.

        A failed load keeps the old version serving (and is logged), so a bad artifact never takes the API down.
        """
        with self._lock:
            wanted = self.wanted_version()
            if self._current is not None and self._current.version == wanted:
                return False
            try:
                policy = self.source.load(self.name, wanted)
            except Exception:
                if self._current is None:
                    raise
                logger.exception("policy %s: loading version %s failed; still serving %s", self.name, wanted,
                                 self._current.version)
                return False
            previous = self._current
            self._current = LoadedPolicy(self.name, wanted, policy)
            self.swaps += previous is not None
        logger.info("policy %s: now serving %s (was %s)", self.name, wanted, previous.version if previous else None)
        if previous is not None and self.on_swap is not None:
            self.on_swap(self._current)
        return True


class PolicyWatcher:
    """A daemon thread that refreshes every slot each ``interval_s`` (the promote pointer is a file stat)."""

    def __init__(self, slots: Mapping[str, PolicySlot], interval_s: float = 1.0) -> None:
        self.slots = slots
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policy-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for slot in list(self.slots.values()):
                try:
                    slot.refresh()
                except Exception:  # noqa: BLE001 - the watcher must outlive a bad pointer
                    logger.exception("policy %s: refresh failed", slot.name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
