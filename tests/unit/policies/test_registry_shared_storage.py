"""The registries on shared storage (a local folder standing in for the Cloud Storage FUSE mount): a version
written halfway is never listed nor loaded, and replicas with their own caches follow a promotion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policies.registry import PolicyNotFound, PolicyRegistry
from policies.scoring.registry import ModelRegistry
from policies.shared_storage import atomic_write, claim_folder
from policies.slots import PolicySlot, RegistrySource, SlotPointers, SlotTarget
from tests.conftest import ROOT
from tests.unit.policies.test_policies_registry import _register, journey_env, maskable  # noqa: F401 - fixtures


def _save(reg: ModelRegistry, version: str, **files) -> Path:
    return reg.save("lead", version, "d" * 64, files or {"model.ubj": b"model"}, {"rows": 3})


def test_a_scoring_entry_is_invisible_until_its_marker_is_written(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    _save(reg, "20260101-000000-aaaaaaaa")
    seen: list[list[str]] = []

    def halfway(path: Path) -> None:  # a reader on another node, while the entry's files are being written
        path.write_bytes(b"part")
        other = ModelRegistry(tmp_path)
        seen.append(other.versions("lead"))
        assert other.path("lead").name == "20260101-000000-aaaaaaaa"

    _save(reg, "20260102-000000-bbbbbbbb", **{"model.ubj": b"model", "calibrator.json": halfway, "card.md": "# card"})
    assert seen == [["20260101-000000-aaaaaaaa"]]
    assert reg.versions("lead") == ["20260101-000000-aaaaaaaa", "20260102-000000-bbbbbbbb"]
    entry = reg.path("lead")
    assert json.loads((entry / "metadata.json").read_text())["files"] == ["calibrator.json", "card.md", "metadata.json",
                                                                          "model.ubj"]


def test_a_scoring_entry_killed_halfway_is_ignored_and_the_next_one_is_written(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    _save(reg, "20260101-000000-aaaaaaaa")
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from policies.scoring.registry import ModelRegistry\n"
        "def die(path: Path) -> None:\n"
        "    path.write_bytes(b'half a model')\n"
        "    os._exit(9)  # the pod is killed: no cleanup runs\n"
        "ModelRegistry(sys.argv[1]).save('lead', '20260102-000000-bbbbbbbb', 'd' * 64,\n"
        "                                {'model.ubj': b'model', 'calibrator.json': die}, {})\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    left = tmp_path / "lead" / "20260102-000000-bbbbbbbb"
    assert (left / "calibrator.json").is_file() and not (left / "metadata.json").exists()  # the crash's remains
    assert reg.versions("lead") == ["20260101-000000-aaaaaaaa"]
    assert reg.path("lead").name == "20260101-000000-aaaaaaaa"
    assert [e.version for e in reg.entries()] == ["20260101-000000-aaaaaaaa"]
    with pytest.raises(FileExistsError, match="new_version"):  # the crashed name is not reused over its remains
        _save(reg, "20260102-000000-bbbbbbbb")
    _save(reg, reg.new_version("lead", "c" * 64))
    assert len(reg.versions("lead")) == 2


def test_a_scoring_entry_that_fails_is_removed(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)

    def fail(path: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _save(reg, "20260101-000000-aaaaaaaa", **{"model.ubj": fail})
    assert not (tmp_path / "lead" / "20260101-000000-aaaaaaaa").exists()
    with pytest.raises(ValueError, match="ready marker"):
        _save(reg, "20260101-000000-aaaaaaaa", **{"metadata.json": "{}"})


def test_a_policy_version_interrupted_before_its_marker_is_never_listed_nor_served(
        tmp_path: Path, maskable, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811 - the fixture
    import policies.export as export  # lazy: loads torch

    reg = PolicyRegistry(tmp_path)
    _register(reg, maskable)
    SlotPointers(tmp_path).point("journey", SlotTarget("journey-ppo", "v0001"))
    replica = PolicySlot("journey", RegistrySource(tmp_path, {}))
    replica.refresh()
    seen: list[list[str]] = []

    def killed(*args, **kwargs):  # model.zip and policy.pt are written; the marker is not
        seen.append(PolicyRegistry(tmp_path).versions("journey-ppo"))
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "verify_export", killed)
    with pytest.raises(KeyboardInterrupt):
        _register(reg, maskable)
    monkeypatch.undo()
    half = tmp_path / "journey-ppo" / "v0002"
    assert (half / "policy.pt").is_file() and not (half / "metadata.json").exists()
    assert seen == [["v0001"]]
    other = PolicyRegistry(tmp_path)
    assert other.versions("journey-ppo") == ["v0001"] and other.latest("journey-ppo") == "v0001"
    assert other.names() == ["journey-ppo"]
    with pytest.raises(PolicyNotFound):
        other.load("journey-ppo", "v0002")
    SlotPointers(tmp_path).point("journey", SlotTarget("journey-ppo", "v0002"))  # promoted too early
    assert replica.refresh() is False and replica.current.version == "v0001"  # keeps serving the complete one
    assert _register(reg, maskable).version == "v0003"  # the next version skips the remains


def _replica(root: Path) -> PolicySlot:
    """A replica of its own: its own pointer cache and its own loaded policy."""
    return PolicySlot("journey", RegistrySource(root, {"journey": lambda name: f"policy {name}"}))


def test_replicas_with_their_own_caches_follow_every_promotion(tmp_path: Path) -> None:
    shared = tmp_path / "bucket" / "policies"
    replicas = [_replica(shared), _replica(shared)]
    for replica in replicas:
        replica.refresh()
    assert {r.current.name for r in replicas} == {"offer_every_k"}  # nothing promoted yet: the default
    cli = SlotPointers(shared)
    for name in ("email_every_k", "offer_every_k", "sms_every_k"):
        cli.point("journey", SlotTarget(name, "builtin"))
        assert [r.refresh() for r in replicas] == [True, True]
        assert [r.current.policy for r in replicas] == [f"policy {name}"] * 2


def test_a_reader_sees_a_second_promotion_within_one_clock_tick(tmp_path: Path) -> None:
    cli, reader = SlotPointers(tmp_path), SlotPointers(tmp_path)
    cli.point("journey", SlotTarget("email_every_k", "builtin"))
    assert reader.target("journey").name == "email_every_k"
    first = cli.path("journey").stat()
    cli.point("journey", SlotTarget("offer_every_k", "builtin"))  # same size: only the content differs
    os.utime(cli.path("journey"), ns=(first.st_atime_ns, first.st_mtime_ns))  # and the same mtime
    assert cli.path("journey").stat().st_size == first.st_size
    assert reader.target("journey").name == "offer_every_k"


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journey.json"
    atomic_write(path, '{"name": "a"}')

    def broken(src, dst):
        raise OSError("interrupted")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="interrupted"):
        atomic_write(path, b'{"name": "b"}')
    assert path.read_text() == '{"name": "a"}'
    assert [p.name for p in tmp_path.iterdir()] == ["journey.json"]  # no temporary file left behind


def test_claim_folder_is_exclusive(tmp_path: Path) -> None:
    assert claim_folder(tmp_path / "lead" / "v1") is True
    assert claim_folder(tmp_path / "lead" / "v1") is False
