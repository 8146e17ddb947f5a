"""The replica's watcher of its serving slots (:mod:`policies.slots`): a daemon thread that refreshes every slot
each ``interval_s`` (reading a slot pointer is a file stat while it is unchanged), so a promotion reaches every
replica within one interval and no request in flight sees a half-loaded policy."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from policies.slots import PolicySlot

logger = logging.getLogger(__name__)


class PolicyWatcher:
    """Refreshes every slot each ``interval_s`` until stopped."""

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
                except Exception:
                    logger.exception("slot %s: refresh failed", slot.name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
