"""A rotated API key file reaches a running replica without a restart, and a broken one locks nobody out."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from serve.auth import ApiKey, Unauthorized, generate_key
from serve.engine import Engine, ServeArgs, Tunables
from serve.key_file import ReloadingKeys
from serve.routes import build_api


def write_keys(path: Path, *keys: ApiKey) -> None:
    """As the kubelet updates a Secret volume: a new file put in place whole."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(orjson.dumps({"keys": [k.model_dump(mode="json") for k in keys]}))
    os.replace(fresh, path)


def test_a_running_replica_follows_the_key_file(tmp_path: Path, log_url: str, state_url: str) -> None:
    old_token, old_key = generate_key("crm-2025", ["decide"])
    new_token, new_key = generate_key("crm-2026", ["decide"])
    path = tmp_path / "keys.json"
    write_keys(path, old_key)
    args = ServeArgs(event_log=log_url, state_store=state_url, api_keys_file=str(path), pacing_from_agents=False,
                     agent_state_dir=str(tmp_path / "agents"), agent_shards=1)
    engine = Engine(args, Tunables(poll_interval_s=0.05))
    assert isinstance(engine.keys, ReloadingKeys)
    engine.keys.reload_s = 0  # check on every request (the setting's default is 2 s)
    client = TestClient(build_api(engine))
    try:
        def status(token: str) -> int:
            return client.get("/v1/customers/cust-1", headers={"Authorization": f"Bearer {token}"}).status_code

        assert (status(old_token), status(new_token)) == (404, 401)  # known key, unknown customer
        write_keys(path, old_key, new_key)  # step 1: both keys while the callers move over
        assert (status(old_token), status(new_token)) == (404, 404)
        write_keys(path, new_key)  # step 2: the old key is gone
        assert (status(old_token), status(new_token)) == (401, 404)
        assert engine.keys.reloads == 2
    finally:
        engine.close()


def test_a_broken_key_file_keeps_the_last_good_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token, key = generate_key("site", ["decide"])
    inline_token, inline_key = generate_key("inline", ["ingest"])
    path = tmp_path / "keys.json"
    write_keys(path, key)
    keys = ReloadingKeys(path, [inline_key], reload_s=0)
    path.write_text('{"keys": [{"name": "half-written"')
    assert keys.authenticate(token, "decide").name == "site"
    assert keys.authenticate(inline_token, "ingest").name == "inline"
    assert "cannot be read" in caplog.text and "the previous 2 keys stay in force" in caplog.text
    path.unlink()
    assert keys.authenticate(token, "decide").name == "site"
    write_keys(path)  # an empty list is a valid file: every file key is revoked, the inline ones stay
    with pytest.raises(Unauthorized):
        keys.authenticate(token, "decide")
    assert keys.authenticate(inline_token, "ingest").name == "inline" and keys.reloads == 1


def test_the_file_is_checked_once_per_interval(tmp_path: Path) -> None:
    token, key = generate_key("site", ["decide"])
    path = tmp_path / "keys.json"
    write_keys(path, key)
    keys = ReloadingKeys(path, reload_s=3_600)
    write_keys(path)
    assert keys.authenticate(token, "decide").name == "site"  # not looked at again within the interval
