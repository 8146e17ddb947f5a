"""Export a trained stable-baselines3 policy to TorchScript, so serving runs it with torch alone.

Two exported signatures (read by :class:`policies.registry.ExportedPolicy`):

- ``discrete``: ``forward(obs: float32[N, d], mask: bool[N, A]) -> float32[N, A]``, the action probabilities
  with illegal actions at 0. PPO, MaskablePPO and A2C give their softmax; DQN gives the one-hot greedy action
  (its deterministic policy). The deterministic action is the argmax, as in SB3's ``predict``.
- ``continuous``: ``forward(obs: float32[N, d]) -> float32[N, k]``, the deterministic action in the env's
  units: SAC's ``tanh`` mean rescaled to the action bounds; PPO's Gaussian mean clipped to them.

Observations are used as given (no ``VecNormalize``): the envs' observations are already scaled.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from environment.acting import legal_from_observation

__all__ = ["ExportMismatch", "export_torchscript", "sb3_action_probabilities", "sb3_actions", "verify_export"]


class ExportMismatch(RuntimeError):
    """The TorchScript export does not reproduce SB3's actions."""


class _Discrete(nn.Module):
    def __init__(self, features: nn.Module, latent: nn.Module | None, head: nn.Module, greedy: bool) -> None:
        super().__init__()
        self.features = features
        self.latent = latent if latent is not None else nn.Identity()
        self.head = head
        self.greedy = greedy

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.latent(self.features(obs)))
        logits = torch.where(mask, logits, torch.full_like(logits, -1e8))
        if self.greedy:
            return nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).to(torch.float32)
        return torch.softmax(logits, dim=1)


class _Continuous(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Module, low: np.ndarray, high: np.ndarray, squashed: bool) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.squashed = squashed

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        a = self.head(self.body(obs))
        if self.squashed:
            return self.low + 0.5 * (torch.tanh(a) + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(a, self.high), self.low)


class _ActorBody(nn.Module):
    """features extractor then the actor's MLP (on-policy: ``mlp_extractor.policy_net``)."""

    def __init__(self, features: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.mlp = mlp

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(obs))


def _build(model: Any) -> tuple[nn.Module, str]:
    policy = model.policy
    space = model.action_space
    algo = type(model).__name__
    if algo == "DQN":
        q = policy.q_net
        return _Discrete(copy.deepcopy(q.features_extractor), None, copy.deepcopy(q.q_net), greedy=True), "discrete"
    if algo == "SAC":
        actor = policy.actor
        body = _ActorBody(copy.deepcopy(actor.features_extractor), copy.deepcopy(actor.latent_pi))
        return _Continuous(body, copy.deepcopy(actor.mu), space.low, space.high, squashed=True), "continuous"
    # on-policy actor-critic (PPO, A2C, MaskablePPO)
    features = policy.features_extractor if policy.share_features_extractor else policy.pi_features_extractor
    body = _ActorBody(copy.deepcopy(features), copy.deepcopy(policy.mlp_extractor.policy_net))
    if isinstance(space, spaces.Discrete):
        return _Discrete(body, None, copy.deepcopy(policy.action_net), greedy=False), "discrete"
    if isinstance(space, spaces.Box):
        if getattr(policy, "squash_output", False):
            raise ValueError("exporting a squashed-Gaussian on-policy model is not supported; train with the default policy")
        return _Continuous(body, copy.deepcopy(policy.action_net), space.low, space.high, squashed=False), "continuous"
    raise ValueError(f"cannot export a policy for action space {space}; use Discrete or Box")


def export_torchscript(model: Any, path: str | Path) -> str:
    """Trace ``model``'s policy to a TorchScript file at ``path``; returns the signature kind.

    :param model: a trained SB3 / sb3-contrib algorithm (PPO, MaskablePPO, A2C, DQN, SAC).
    :param path: where to write the ``.pt`` file.
    :return: ``"discrete"`` or ``"continuous"``.
    """
    module, kind = _build(model)
    module = module.to("cpu").eval()
    d = int(np.prod(model.observation_space.shape))
    obs = torch.rand(4, d)
    with torch.no_grad():
        if kind == "discrete":
            mask = torch.ones(4, int(model.action_space.n), dtype=torch.bool)
            traced = torch.jit.trace(module, (obs, mask))
        else:
            traced = torch.jit.trace(module, (obs,))
    torch.jit.save(traced, str(path))
    return kind


def sb3_actions(model: Any, obs: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
    """SB3's own deterministic actions (what the export is tested equal to)."""
    if action_masks is not None and type(model).__name__ == "MaskablePPO":
        actions, _ = model.predict(obs, deterministic=True, action_masks=action_masks)
    else:
        actions, _ = model.predict(obs, deterministic=True)
    return np.asarray(actions)


def sb3_action_probabilities(model: Any, obs: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
    """(N, A) SB3's action probabilities of a discrete on-policy model (MaskablePPO with ``action_masks``); a DQN,
    which has no distribution, gives its greedy action one-hot."""
    obs = np.atleast_2d(np.asarray(obs, dtype=np.float32))
    n_actions = int(model.action_space.n)
    if type(model).__name__ == "DQN":
        return np.eye(n_actions)[sb3_actions(model, obs).reshape(len(obs))]
    tensor, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        if action_masks is not None and type(model).__name__ == "MaskablePPO":
            dist = model.policy.get_distribution(tensor, action_masks=np.asarray(action_masks, dtype=bool))
        else:
            dist = model.policy.get_distribution(tensor)
        return dist.distribution.probs.cpu().numpy().astype(np.float64)


def verify_export(model: Any, path: str | Path, kind: str, journey_masked: bool, n: int = 256, seed: int = 0) -> None:
    """Raise :class:`ExportMismatch` unless the export at ``path`` gives SB3's deterministic actions on ``n``
    random observations (masked journey policies: with the masks read from the observation)."""
    rng = np.random.default_rng(seed)
    space = model.observation_space
    low = np.where(np.isfinite(space.low), space.low, 0.0)
    high = np.where(np.isfinite(space.high), space.high, 2.0)
    obs = rng.uniform(low, high, size=(n, *space.shape)).astype(np.float32)
    if journey_masked:
        obs[:, 9:13] = rng.random((n, 4)) < 0.5  # binary consent and cap columns
    module = torch.jit.load(str(path))
    with torch.no_grad():
        if kind == "discrete":
            masks = legal_from_observation(obs) if journey_masked else np.ones((n, int(model.action_space.n)), dtype=bool)
            ours = module(torch.from_numpy(obs), torch.from_numpy(masks)).numpy().argmax(axis=1)
            theirs = sb3_actions(model, obs, masks if journey_masked else None)
            ok = np.array_equal(ours, theirs)
        else:
            ours = module(torch.from_numpy(obs)).numpy()
            theirs = sb3_actions(model, obs).reshape(ours.shape)
            ok = np.allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    if not ok:
        raise ExportMismatch(f"TorchScript export of {type(model).__name__} disagrees with SB3's predict; file a bug with the model zip")
