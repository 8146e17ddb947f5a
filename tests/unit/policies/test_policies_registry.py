"""The policy registry: versions, metadata, promotion pointer, and a TorchScript export equal to SB3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from policies.registry import ExportedPolicy, PolicyNotFound, PolicyRegistry, RegistryError, journey_action_mask


@pytest.fixture(scope="module")
def journey_env():
    from environment.vector import JourneyVectorEnv, SB3VecEnvAdapter  # lazy: loads torch and stable-baselines3

    env = SB3VecEnvAdapter(JourneyVectorEnv(16))
    env.seed(0)
    env.reset()
    return env


@pytest.fixture(scope="module")
def maskable(journey_env):
    from sb3_contrib import MaskablePPO  # lazy: sb3-contrib is heavy

    model = MaskablePPO("MlpPolicy", journey_env, n_steps=16, batch_size=64, seed=0, device="cpu")
    model.learn(256)
    return model


def _register(reg: PolicyRegistry, model, name: str = "journey-ppo", **kw):
    fields = {"task": "journey", "masked": True, "seed": 0, "timesteps": 256, "env_config_hash": "abc", "metrics": {"profit": 1.5}}
    return reg.register(name, model, **(fields | kw))


def test_mask_from_observation_equals_env_mask(journey_env) -> None:
    obs = journey_env.venv.reset(seed=3)[0]
    for _ in range(5):
        np.testing.assert_array_equal(journey_action_mask(obs), journey_env.venv.action_masks())
        obs = journey_env.venv.step(np.ones(16, dtype=int))[0]


def test_export_equals_sb3_probabilities_and_actions(tmp_path: Path, maskable, journey_env) -> None:
    reg = PolicyRegistry(tmp_path)
    meta = _register(reg, maskable)
    policy = reg.load("journey-ppo", meta.version)
    obs = journey_env.venv.reset(seed=7)[0]
    masks = journey_env.venv.action_masks()
    ours = policy.action_probabilities(obs)
    dist = maskable.policy.get_distribution(maskable.policy.obs_to_tensor(obs)[0], action_masks=masks)
    theirs = dist.distribution.probs.detach().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert np.all(ours[~masks] == 0)
    sb3_actions, _ = maskable.predict(obs, deterministic=True, action_masks=masks)
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], sb3_actions)
    assert policy.predict(obs[0], deterministic=True)[0] == sb3_actions[0]
    drawn = policy.predict(obs, deterministic=False)[0]
    assert masks[np.arange(len(obs)), drawn].all()


def test_metadata_and_versions(tmp_path: Path, maskable) -> None:
    reg = PolicyRegistry(tmp_path)
    first, second = _register(reg, maskable), _register(reg, maskable)
    assert (first.version, second.version) == ("v0001", "v0002")
    assert reg.names() == ["journey-ppo"] and reg.versions("journey-ppo") == ["v0001", "v0002"]
    files = {p.name for p in (tmp_path / "journey-ppo" / "v0001").iterdir()}
    assert {"model.zip", "policy.pt", "metadata.json"} <= files
    meta = json.loads((tmp_path / "journey-ppo" / "v0001" / "metadata.json").read_text())
    for key in ("env_config_hash", "seed", "timesteps", "metrics", "code_version", "algo"):
        assert key in meta
    assert meta["algo"] == "MaskablePPO" and meta["metrics"]["profit"] == 1.5
    assert reg.load("journey-ppo").metadata.version == "v0002"  # the latest by default
    assert reg.load("journey-ppo", "v0001").metadata.version == "v0001"
    with pytest.raises(PolicyNotFound, match="v0009"):
        reg.load("journey-ppo", "v0009")
    with pytest.raises(RegistryError, match="invalid"):
        reg.versions("../etc")
    updated = reg.update_metrics("journey-ppo", "v0001", {"oracle_share": 0.9})
    assert updated.metrics == {"profit": 1.5, "oracle_share": 0.9}
    assert reg.load_sb3("journey-ppo", "v0001").__class__.__name__ == "MaskablePPO"


def test_serving_loads_without_stable_baselines3(tmp_path: Path, maskable) -> None:
    reg = PolicyRegistry(tmp_path)
    _register(reg, maskable)
    code = (
        "import sys, numpy as np\n"
        "from policies.registry import PolicyRegistry\n"
        f"p = PolicyRegistry({str(tmp_path)!r}).load('journey-ppo')\n"
        "a, _ = p.predict(np.zeros((3, 24), dtype=np.float32), deterministic=True)\n"
        "assert a.shape == (3,)\n"
        "bad = [m for m in sys.modules if m.startswith(('stable_baselines3', 'sb3_contrib'))]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_continuous_export_equals_sb3(tmp_path: Path) -> None:
    from stable_baselines3 import SAC  # lazy: stable-baselines3 is heavy

    from environment.vector import AuctionVectorEnv, SB3VecEnvAdapter  # lazy: loads torch and stable-baselines3

    env = SB3VecEnvAdapter(AuctionVectorEnv(2, opportunities_per_day=2_000, days=2))
    model = SAC("MlpPolicy", env, learning_starts=10, seed=0, device="cpu")
    model.learn(100)
    meta = PolicyRegistry(tmp_path).register("bid-sac", model, task="bidding", seed=0, timesteps=100, env_config_hash="abc")
    assert meta.export_kind == "continuous" and meta.action_low == [0.0]
    policy = ExportedPolicy(tmp_path / "bid-sac" / meta.version)
    obs = np.random.default_rng(0).uniform(0, 2, size=(32, 10)).astype(np.float32)
    np.testing.assert_allclose(policy.predict(obs)[0], model.predict(obs, deterministic=True)[0], rtol=1e-4, atol=1e-5)


def test_export_mismatch_is_detected(tmp_path: Path, maskable) -> None:
    from policies.export import ExportMismatch, export_torchscript, verify_export  # lazy: loads torch

    path = tmp_path / "p.pt"
    kind = export_torchscript(maskable, path)
    verify_export(maskable, path, kind, journey_masked=True)
    module = torch.jit.load(str(path))
    for p in module.parameters():
        p.data.normal_()
    torch.jit.save(module, str(path))
    with pytest.raises(ExportMismatch):
        verify_export(maskable, path, kind, journey_masked=True)
