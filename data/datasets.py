"""The public data sets that ship with the repository (``datasets/`` at its root): where each file is."""

from __future__ import annotations

from pathlib import Path

DATASETS_DIR = Path(__file__).resolve().parents[1] / "datasets"


class DatasetMissing(FileNotFoundError):
    """A shipped data set file is not where the repository keeps it."""


def dataset_path(*parts: str) -> Path:
    """The path of a shipped data set file or folder, e.g. ``dataset_path("hillstrom", "hillstrom.csv")``.

    :raises DatasetMissing: when it is not there (an install without the repository's ``datasets/`` folder).
    """
    path = DATASETS_DIR.joinpath(*parts)
    if not path.exists():
        raise DatasetMissing(
            f"{path} does not exist: the data sets ship in the repository's datasets/ folder; "
            "install from a clone (pip install -e .) or pass the file's path explicitly"
        )
    return path
