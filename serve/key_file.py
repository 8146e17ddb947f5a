"""API keys that follow their key file: a replica picks up a rotated key file without a restart.

A Kubernetes Secret mounted as a folder is updated in place by the kubelet (a new file swapped in by a symlink), so
checking the file's identity (inode, size, modification time) every ``reload_s`` seconds is enough to see a rotation.
A file that cannot be read or parsed is reported and the last good keys stay in force: a bad edit locks nobody out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from serve.auth import ApiKey, KeyStore

log = logging.getLogger(__name__)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)  # follows the Secret's symlinks to the current file
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class ReloadingKeys:
    """The inline keys plus those of ``path``, re-read when the file changes (checked every ``reload_s``)."""

    def __init__(self, path: str | Path, inline: Iterable[ApiKey] = (), reload_s: float = 2.0) -> None:
        self.path = Path(path)
        self.inline = list(inline)
        self.reload_s = reload_s
        self._lock = threading.Lock()
        self._identity = _identity(self.path)
        self._store = KeyStore([*self.inline, *KeyStore.from_file(self.path)])  # the first read must succeed
        self._checked = time.monotonic()
        self.reloads = 0

    def __len__(self) -> int:
        return len(self._current())

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._current())

    def authenticate(self, token: str | None, scope: str) -> ApiKey:
        """As :meth:`KeyStore.authenticate`, against the key file as it is now."""
        return self._current().authenticate(token, scope)

    def _current(self) -> KeyStore:
        now = time.monotonic()
        if now - self._checked < self.reload_s:
            return self._store
        with self._lock:
            if now - self._checked >= self.reload_s:
                self._checked = now
                self._reload_if_changed()
        return self._store

    def _reload_if_changed(self) -> None:
        identity = _identity(self.path)
        if identity == self._identity:
            return
        try:
            store = KeyStore([*self.inline, *KeyStore.from_file(self.path)])
        except (OSError, ValueError) as error:
            log.error("API key file %s changed but cannot be read (%s): the previous %d keys stay in force",
                      self.path, error, len(self._store))
            return
        self._store, self._identity = store, identity
        self.reloads += 1
        log.info("API key file %s reloaded: %d keys", self.path, len(store))
