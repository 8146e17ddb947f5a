"""Helpers for the engine's hot loops (append, replay, agents' batches)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector around a hot batch: batches make thousands of small acyclic
    objects, and each generation-2 pass their allocations trigger walks every live object of the process
    (caches, states) again. Reference counting still frees them; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
