"""Writing the registries' files so that readers on other nodes never see a part of them.

In production the policy and model registries (``AME_POLICIES_DIR``, ``AME_MODELS_DIR``) live in a Cloud Storage
bucket mounted into every pod by GKE's Cloud Storage FUSE CSI driver, with local-path semantics: the registries and
their readers stay plain file code, and the tests run them on a local folder standing in for the bucket. Plain file
code is enough only if every writer keeps to what Cloud Storage guarantees:

- an object appears whole when its writer closes it, never in part;
- renaming a file is a copy and a delete: the new name appears whole, but not atomically with the old one's removal;
- renaming a folder copies its objects one by one (and Cloud Storage FUSE refuses it by default), so readers could
  see a version folder with only some of its files.

So: a file that readers watch (a slot pointer, a version's metadata) is written whole under a temporary name and
renamed over its name (:func:`atomic_write`), and a new version is written in place, file by file, with its
ready marker (``metadata.json``) last; readers list only the versions that have it. A write interrupted halfway
leaves a folder without the marker, which readers ignore. Why this design and the mount options it needs are in
the documentation's concepts page *Registries on shared storage*.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "claim_folder"]


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a part: written whole
    under a temporary name in the same folder, flushed, then renamed over ``path``.

    :param path: the file to (re)place; its folder must exist.
    :param data: text (UTF-8) or bytes.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # on Cloud Storage FUSE this uploads the object
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def claim_folder(path: Path) -> bool:
    """Create the folder ``path`` for a new version; False when it exists already (another writer took the name).

    :param path: the version folder; its parent is created when missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True
