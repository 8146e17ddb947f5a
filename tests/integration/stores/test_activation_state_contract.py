"""Activation's sync state, run over every state store backend (``sqlite`` and ``postgresql``): the rows each
destination holds, committed together, and the record of every run."""

from __future__ import annotations

from data.activation.state import SyncState


def test_rows_commit_together_and_runs_are_recorded(store_url: str) -> None:
    state = SyncState.from_url(store_url)
    assert state.rows("crm") == {} and state.held("crm") == 0 and state.last_success("crm") is None
    state.commit("crm", [("a", "h1", {"email_sha256": "x"}), ("b", "h2", {"score": 7})], [])
    state.commit("crm", [("a", "h3", {"email_sha256": "y"})], ["b"])  # an update and a delete in one commit
    state.commit("ads", [("a", "h9", {})], [])
    assert state.rows("crm") == {"a": ("h3", {"email_sha256": "y"})} and state.held("crm") == 1 and state.held("ads") == 1
    report = {"upserts_sent": 2, "deletes_sent": 1, "succeeded": 3, "failed": 0, "unchanged": 0}
    state.start_run("crm", "r1")
    assert [(r.run_id, r.status) for r in state.last_runs("crm")] == [("r1", "running")]
    state.finish_run("crm", "r1", "ok", report)
    state.start_run("crm", "r2")
    state.finish_run("crm", "r2", "failed", {**report, "succeeded": 0, "failed": 3})
    runs = state.last_runs("crm")
    assert [(r.run_id, r.status, r.succeeded) for r in runs] == [("r2", "failed", 0), ("r1", "ok", 3)]
    assert state.last_success("crm") == runs[1].started_at and state.last_runs(limit=1)[0].run_id == "r2"
    state.close()
    again = SyncState.from_url(store_url)  # what a later run, on any node, finds
    assert again.rows("crm") == {"a": ("h3", {"email_sha256": "y"})}
    again.close()
