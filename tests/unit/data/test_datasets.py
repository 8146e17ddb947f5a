"""The data sets shipped in datasets/ (and the KubeRay CRDs the manifest test reads): every file listed in a SOURCE.md
is there, with the SHA-256 it records."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from data.datasets import DATASETS_DIR, DatasetMissing, dataset_path

SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def listed_files(source_md: Path) -> dict[str, str]:
    """file -> sha256 from the first table of a SOURCE.md (the first 64-hex cell of a row is the file's own)."""
    listed: dict[str, str] = {}
    for line in source_md.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        digests = [c for c in cells if SHA256.fullmatch(c)]
        if len(cells) > 1 and digests and (source_md.parent / cells[0]).is_file():
            listed[cells[0]] = digests[0]
    return listed


@pytest.mark.parametrize("folder", [dataset_path("hillstrom"), dataset_path("cdnow"), dataset_path("open_bandit"),
                                    Path(__file__).resolve().parents[2] / "fixtures" / "kuberay"], ids=lambda p: p.name)
def test_every_shipped_file_matches_its_recorded_checksum(folder: Path) -> None:
    listed = listed_files(folder / "SOURCE.md")
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "SOURCE.md"}
    assert set(listed) == on_disk, "every data file is listed in SOURCE.md, and every listed file is shipped"
    for file, digest in listed.items():
        assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, file


def test_a_missing_file_is_named_with_what_to_do() -> None:
    with pytest.raises(DatasetMissing, match=r"datasets/hillstrom/nope\.csv does not exist.*pip install -e \."):
        dataset_path("hillstrom", "nope.csv")
    assert DATASETS_DIR.name == "datasets"
