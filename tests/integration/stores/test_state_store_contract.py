"""The state store's contract, run over every backend (``sqlite`` and ``postgresql``): tracking records,
snapshots, a projection's rows and agent state, each committed in one transaction with its position."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.state_reader import AgentStateReader
from agents.state_repository import AgentStateRepository, consumer_name, read_records, state_hash, state_store_url
from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import PostgresStateStore, SqliteStateStore, open_state_store
from data.sharding import shard_of
from data.synthetic import synthetic_events


def test_the_url_picks_the_backend(store_url: str, backend: str) -> None:
    store = open_state_store(store_url)
    assert isinstance(store, {"sqlite": SqliteStateStore, "postgresql": PostgresStateStore}[backend])
    store.close()


def test_positions_commit_with_the_transaction_or_not_at_all(store_url: str) -> None:
    store = open_state_store(store_url)
    assert store.position("a") == 0 and store.positions() == []
    with store.transaction() as conn:
        store.commit_position(conn, "a", 10)
        store.commit_position(conn, "b", 3)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.commit_position(conn, "a", 99)
        raise RuntimeError("crash before the commit")
    assert store.position("a") == 10
    assert [(p.consumer, p.position) for p in store.positions()] == [("a", 10), ("b", 3)]
    store.close()


def test_snapshots_keep_the_latest_at_or_before_a_position(store_url: str) -> None:
    store = open_state_store(store_url)
    assert store.latest_snapshot("p") is None
    with store.transaction() as conn:
        store.save_snapshot(conn, "p", 100, b"first", "h1")
        store.save_snapshot(conn, "p", 200, b"second", "h2")
        store.save_snapshot(conn, "p", 200, b"second again", "h3")  # a retried snapshot replaces its row
    assert (store.latest_snapshot("p").state, store.latest_snapshot("p").state_hash) == (b"second again", "h3")
    assert store.latest_snapshot("p", at_most=150).position == 100
    store.close()


def test_a_projection_replays_to_the_same_state_on_every_backend(store_url: str, log_url: str, tmp_path: Path) -> None:
    log = open_log(log_url)
    log.append(synthetic_events(3_000, 200, seed=5))
    reference = Projector(log, open_state_store(f"sqlite:///{tmp_path / 'ref.db'}"), ProfileProjection())
    reference.rebuild()
    projector = Projector(log, open_state_store(store_url), ProfileProjection(), batch_size=700, snapshot_every=1_000)
    assert projector.catch_up() == 3_000 and projector.position() == 3_000
    assert projector.state_hash() == reference.state_hash()
    assert projector.store.latest_snapshot("profile") is not None
    again = Projector(log, open_state_store(store_url), ProfileProjection())
    again.rebuild(from_snapshot=True)
    assert again.state_hash() == reference.state_hash() and again.position() == 3_000


def _repository(url: str, read_chunk: int = 3) -> AgentStateRepository:
    return AgentStateRepository.open(url, "agent:scoring:0of1", read_chunk)


def test_agent_records_and_position_commit_together_and_load_reads_in_chunks(store_url: str) -> None:
    repo = _repository(store_url)
    records = {f"c{i}": {"n": i} for i in range(10)}
    repo.save(records, position=42)
    assert repo.position() == 42 and repo.records() == records and sorted(repo.keys()) == sorted(records)
    assert repo.load([f"c{i}" for i in range(10)] + ["missing"]) == records  # 4 chunks of at most 3 keys
    with pytest.raises(RuntimeError), repo.store.transaction() as conn:  # a failure inside rolls both back
        repo.put_in(conn, {"c0": {"n": -1}})
        repo.store.commit_position(conn, repo.consumer, 99)
        raise RuntimeError("crash before the commit")
    assert repo.position() == 42 and repo.load(["c0"]) == {"c0": {"n": 0}}
    repo.save({"c0": {"n": 100}}, position=43)  # an update replaces the record
    assert repo.load(["c0"]) == {"c0": {"n": 100}}
    digest = repo.snapshot()
    assert digest == state_hash(repo.records()) and repo.store.latest_snapshot(repo.consumer).position == 43
    repo.close()


def test_agent_restarts_are_counted_per_consumer(store_url: str) -> None:
    repo = _repository(store_url)
    assert [repo.count_restart(False), repo.count_restart(True), repo.count_restart(True)] == [0, 1, 2]
    other = AgentStateRepository(repo.store, "agent:scoring:1of2")
    assert other.count_restart(True) == 1
    repo.close()


def test_every_shard_of_an_agent_is_read_back(store_url: str, backend: str, tmp_path: Path) -> None:
    shared = store_url if backend == "postgresql" else ""
    for shard in range(2):
        url = store_url if shared else f"sqlite:///{(tmp_path / f'scoring-{shard}of2.db').resolve()}"
        repo = AgentStateRepository.open(url, f"agent:scoring:{shard}of2")
        repo.save({f"s{shard}": {"shard": shard}}, position=1)
        repo.close()
    assert read_records(tmp_path, "scoring", 2, shared) == {"s0": {"shard": 0}, "s1": {"shard": 1}}


def test_the_decision_api_reads_each_key_from_its_shard(store_url: str, backend: str, tmp_path: Path) -> None:
    shared = store_url if backend == "postgresql" else ""
    for shard in range(2):
        url = state_store_url(tmp_path, "journey", shard, 2, shared)
        repo = AgentStateRepository.open(url, consumer_name("journey", shard, 2))
        repo.save({key: {"key": key} for key in ("a", "b", "c", "d") if shard_of(key, 2) == shard}, position=1)
        repo.close()
    reader = AgentStateReader(tmp_path, "journey", 2, shared)
    assert [reader.record(k) for k in ("a", "d", "zz")] == [{"key": "a"}, {"key": "d"}, None]
    reader.close()
