"""The engine on a local three-node Ray cluster with no shared disk (the log on the Pub/Sub emulator, the state on
PostgreSQL): events posted to Serve are folded by agents on another node and answered from there within a second, a
promotion from the CLI reaches every replica, the agents survive the loss of their node with no decision lost or
duplicated, and an erasure makes the PII unreadable on every node.

The cluster runs in a process of its own (:mod:`tests.integration.cluster.multinode`): a Ray driver joins one
cluster per process, and this session already has one (the ``ray_cluster`` fixture); a child process also takes its
three nodes down with it whatever happens. The figures are printed and written to ``$AME_CLUSTER_FIGURES`` (default:
the test's folder, named in the output).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.emulator
TIMEOUT_S = 540
HEAD_DID_NOT_START = "The current node timed out during startup"
"""What Ray raises when a node's raylet has not registered within its fixed 30 s. On this machine the head's raylet
sometimes never starts (no raylet log is written at all; 2 of 8 cluster starts on 2026-12-07): the whole cluster is then
started once more, in a fresh process, before anything of the engine has run."""


def run_cluster(work: Path, out: Path, pubsub_emulator: str, postgres_server: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AME_")}  # the nodes get their settings from the script
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.cluster.multinode", "--work", str(work), "--out", str(out),
         "--pubsub", pubsub_emulator, "--postgres", postgres_server],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def test_the_engine_on_three_nodes_without_a_shared_disk(pubsub_emulator: str, postgres_server: str,
                                                         tmp_path: Path) -> None:
    out = Path(os.environ.get("AME_CLUSTER_FIGURES") or tmp_path / "cluster-figures.json")
    run = run_cluster(tmp_path / "work", out, pubsub_emulator, postgres_server)
    if run.returncode != 0 and HEAD_DID_NOT_START in run.stderr and "agents and replicas up" not in run.stderr:
        print(f"Ray's head node did not start ({HEAD_DID_NOT_START}); starting the cluster once more")
        run = run_cluster(tmp_path / "again" / "work", out, pubsub_emulator, postgres_server)
    progress = "\n".join(line for line in run.stderr.splitlines() if line.startswith(("[", "tests.", "Cluster")))
    assert run.returncode == 0, f"the cluster run failed:\n{progress}\n{run.stderr[-4000:]}"
    figures = json.loads(out.read_text())
    print(f"cluster figures ({out}): {json.dumps(figures)}")

    assert figures["freshness_p99_ms"] < 1000, "a replica on the serve node answers from the agents' state within 1 s"
    assert figures["nba_policy"] == ["email_every_k@builtin"] and figures["replicas"] == 2
    assert figures["restarts"] >= 5, "every shard and the projector restarted on the new node"
    assert figures["decisions_duplicated"] == 0, figures
    assert figures["scoring_expected"] > 0 and figures["journey_tick_expected"] == 16
    assert len(figures["node_homes"]) == 2 and all("/work/" in h for h in figures["node_homes"])
    assert figures["pii_before"] == ["cl-03@cluster.example"] and figures["pii_after"] == ["None"]
    assert figures["decisions_lost"] == 0, (f"not caught up {figures['recovery_wait_s']:.0f} s after the kill: "
                                            f"{figures['behind_after_wait']}")
    assert figures["recovery_s"] is not None
