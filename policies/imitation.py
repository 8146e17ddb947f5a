"""Warm-starting a journey policy from the belief-state planner: demonstrations on training customers, then
behaviour cloning of the actor (and a first fit of the critic) before PPO fine-tunes it.

The planner (:class:`environment.belief_planner.BeliefPlanner`) acts on what the engine observes, with action values
from the calibrated model; cloning it gives PPO a start that already uses the belief, which PPO from scratch
did not find in its budget (see the README's policy figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.belief_planner import BeliefPlanner


@dataclass(frozen=True, slots=True)
class Demonstrations:
    """Planner decisions: belief observations (M, 84), legal masks (M, 6), actions (M,), discounted returns (M,)."""

    observations: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    returns: np.ndarray

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def __add__(self, other: Demonstrations) -> Demonstrations:
        return Demonstrations(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in
                                ("observations", "masks", "actions", "returns")))


def planner_demonstrations(config: Any, customers: int, seeds: list[int], gamma: float, progress: Any = None,
                           lookahead: bool = False, learner: Any = None) -> Demonstrations:
    """Run the planner (QMDP, or with one step of belief lookahead) for one episode on ``customers`` customers of
    each seed (training seeds, never the evaluation ones) and keep every day's observation, mask, the planner's
    action and the discounted return-to-go.

    With ``learner`` (a function of the belief observation and the legal mask that returns actions), the learner
    acts and the planner only labels the days it visits (DAgger): the clone then learns the planner's choice in
    the situations its own mistakes lead to."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    observations, masks, actions, returns = [], [], [], []
    for seed in seeds:
        env = JourneyVectorEnv(customers, config)  # the planner tracks the belief; it is recorded beside obs
        obs, info = env.reset(seed=seed)
        planner = BeliefPlanner(env, lookahead=lookahead)
        rewards = []
        for _ in range(env.horizon):
            action, _ = planner.predict(obs)
            assert planner.belief is not None
            features = np.concatenate([obs, planner.belief.reshape(customers, -1)], axis=1)
            observations.append(features)
            masks.append(info["action_mask"])
            actions.append(action)
            taken = action if learner is None else np.asarray(learner(features.astype(np.float32), info["action_mask"]))
            obs, reward, _, _, info = env.step(taken)
            rewards.append(reward)
        to_go = np.zeros(customers)
        seed_returns = []
        for reward in reversed(rewards):
            to_go = reward + gamma * to_go
            seed_returns.append(to_go)
        returns.extend(reversed(seed_returns))
        if progress is not None:
            progress()
    return Demonstrations(
        np.concatenate(observations).astype(np.float32), np.concatenate(masks), np.concatenate(actions).astype(np.int64),
        np.concatenate(returns).astype(np.float32),
    )


def behaviour_clone(model: Any, demos: Demonstrations, epochs: int, batch_size: int = 4_096, lr: float = 1e-3,
                    value_weight: float = 0.005, seed: int = 0, progress: Any = None) -> dict[str, float]:
    """Fit a MaskablePPO model's actor to the demonstrations' actions (cross-entropy under the legal mask) and
    its critic to their returns; returns the final action agreement and negative log-likelihood."""
    import torch  # lazy: torch is heavy

    policy = model.policy
    x = torch.as_tensor(demos.observations)
    a = torch.as_tensor(demos.actions)
    g = torch.as_tensor(demos.returns)
    masks = demos.masks
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(len(demos), generator=generator)
        for start in range(0, len(demos), batch_size):
            batch = order[start : start + batch_size]
            values, log_prob, _ = policy.evaluate_actions(x[batch], a[batch], action_masks=masks[batch.numpy()])
            loss = -log_prob.mean() + value_weight * ((values.flatten() - g[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress is not None:
            progress()
    policy.set_training_mode(False)
    with torch.no_grad():
        sample = slice(0, min(len(demos), 50_000))
        dist = policy.get_distribution(x[sample], action_masks=masks[sample])
        agreement = float((dist.distribution.probs.argmax(dim=1) == a[sample]).float().mean())
        nll = float(-dist.log_prob(a[sample]).mean())
    return {"bc_agreement": agreement, "bc_nll": nll}


__all__ = ["Demonstrations", "behaviour_clone", "planner_demonstrations"]
