"""Train the bidder's residual: SAC learns a bounded factor on the profile-pacing multiplier
(:class:`policies.bidder.ProfilePacing`), across budgets 1/2 .. 1/32 of the spend that wins everything.

Read top to bottom: arguments, seeding, env (one auction vector env per budget fraction, each campaign with its
own pacing controller; the agent sees the 10 pacing features and acts with a factor in ``[1 - r, 1 + r]``),
model, learn, evaluate beside the controller alone, register.

The reward of a slot is the LP's Lagrangian on what the slot bought, ``value - lambda x spend``, with ``lambda``
the day's hindsight-LP threshold (value per dollar at the margin; privileged, in the reward only), over the day's
LP value and times the slots per day, so every budget weighs the same. Summed over a day it is at most
``1 - lambda x budget / LP``, reached by buying exactly the LP's impressions: the myopic signal of the LP's dual,
while the controller keeps the spend on budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from environment.bounds import hindsight_lp
from environment.config import load_market_config
from policies.bidder import N_RESIDUAL_OBS, RESIDUAL_RANGE, ProfilePacing
from policies.evaluate import budget_config, run_bidding, win_all_spend
from policies.train_common import (
    make_callbacks,
    make_logger,
    register_trained,
    start_run,
)

logger = logging.getLogger(__name__)

RESIDUAL_NAME = "bidding-residual-sac"


class ResidualPacingVecEnv(VecEnv):
    """SB3 VecEnv: ``len(fractions) x campaigns`` campaigns, each paced by its own :class:`ProfilePacing`; the
    action is the residual factor on the controller's multiplier, the observation its pacing features.

    :param config: the market configuration (budgets are replaced per fraction).
    :param fractions: daily budgets as fractions of the spend that wins every auction (day 1 of each sub-env).
    :param campaigns: campaigns per fraction.
    :param seed: seed of the first sub-env (the others add 1, 2, ...).
    :param overrides: ``opportunities_per_day``, ``days``, ``auction_type``.
    """

    def __init__(self, config: Any, fractions: Sequence[float], campaigns: int, seed: int, **overrides: Any) -> None:
        from environment.vector import AuctionVectorEnv  # lazy: loads torch and stable-baselines3

        self.subs, self.pacers = [], []
        for k, frac in enumerate(fractions):
            spend_all = win_all_spend(config, campaigns, seed + k, **overrides)
            sub = AuctionVectorEnv(campaigns, budget_config(config, frac * spend_all, overrides.get("auction_type")), **overrides)
            pacer = ProfilePacing()
            pacer.bind(sub)
            self.subs.append(sub)
            self.pacers.append(pacer)
        self.campaigns, self.seed_base = campaigns, seed
        self.slots = self.subs[0].model.slots_per_day
        low, high = np.float32(1.0 - RESIDUAL_RANGE), np.float32(1.0 + RESIDUAL_RANGE)
        super().__init__(
            len(self.subs) * campaigns, spaces.Box(-np.inf, np.inf, (N_RESIDUAL_OBS,), np.float32),
            spaces.Box(low, high, (1,), np.float32),
        )
        self._actions: np.ndarray | None = None
        self._base: list[np.ndarray] = []
        self._lp: list[np.ndarray] = []

    def _day_lp(self, sub: Any) -> np.ndarray:
        """(2, campaigns): the day's hindsight-LP value and threshold per campaign."""
        day, model = sub.market.day_data, sub.model
        price = np.maximum(day.competing, model.reserve_price)
        out = np.empty((2, self.campaigns))
        for e in range(self.campaigns):
            idx = np.flatnonzero(day.env == e)
            lp = hindsight_lp(day.value[idx], price[idx], model.daily_budget)
            out[:, e] = max(lp.value, 1e-9), (lp.threshold if np.isfinite(lp.threshold) else 0.0)
        return out

    def _observe(self, k: int, raw: np.ndarray) -> np.ndarray:
        self._base[k] = self.pacers[k].base(raw)
        if self.subs[k].market.slot == 0:
            self._lp[k] = self._day_lp(self.subs[k])
        return self.pacers[k].features(raw)

    def reset(self) -> np.ndarray:
        self._base, self._lp = [np.ones(self.campaigns) for _ in self.subs], [np.ones((2, self.campaigns)) for _ in self.subs]
        out = []
        for k, (sub, pacer) in enumerate(zip(self.subs, self.pacers, strict=True)):
            raw, _ = sub.reset(seed=self.seed_base + k)
            pacer.bind(sub)
            out.append(self._observe(k, raw))
        return np.concatenate(out)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs)

    def step_wait(self) -> Any:
        assert self._actions is not None
        obs, rewards, dones, infos = [], [], [], []
        for k, sub in enumerate(self.subs):
            factor = self._actions[k * self.campaigns : (k + 1) * self.campaigns]
            raw, _, _, truncated, info = sub.step(self._base[k] * factor)
            value, threshold = self._lp[k]
            rewards.append(self.slots * (info["expected_value"] - threshold * info["spend"]) / value)
            done = bool(truncated.all())
            obs.append(self._observe(k, raw))
            dones.append(np.full(self.campaigns, done))
            for i in range(self.campaigns):
                # the episode ends for real (the horizon is the task), so no bootstrapping past it
                infos.append({"terminal_observation": obs[-1][i], "TimeLimit.truncated": False} if done else {})
        return np.concatenate(obs), np.concatenate(rewards).astype(np.float32), np.concatenate(dones), infos

    def close(self) -> None:
        for sub in self.subs:
            sub.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)


class _SB3Residual:
    """An SB3 model as the residual of :class:`ProfilePacing` (the export does the same after registration)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        return self.model.predict(obs, deterministic=True)


@dataclass
class BidderArgs:
    """Hyperparameters and run settings."""

    timesteps: int = 1_200_000
    seed: int = 0
    config: str | None = None
    name: str = RESIDUAL_NAME
    fractions: list[float] = field(default_factory=lambda: [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32])
    campaigns: int = 4  # per fraction
    auction_type: str = "second_price"
    opportunities_per_day: int = 50_000
    days: int = 7
    learning_rate: float = 3e-4
    gamma: float = 0.9
    batch_size: int = 256
    gradient_steps: int = 1
    learning_starts: int = 10_000
    ent_coef: str = "auto_0.01"
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    eval_campaigns: int = 4
    eval_seed: int = 20_000
    eval_fractions: list[float] = field(default_factory=lambda: [1 / 8, 1 / 32])
    eval_opportunities: int = 100_000
    checkpoint_every: int = 500_000
    torch_threads: int = 1
    registry: str | None = None
    run_dir: str | None = None
    progress: bool = True


def main(args: BidderArgs) -> Path:
    """Train, evaluate and register the residual; returns the registered version's folder."""
    from stable_baselines3 import SAC  # lazy: stable-baselines3 is heavy


    # the run folder; seeding: python, numpy, torch (the env by its reset)
    run_dir = start_run(args.run_dir or Path("runs") / f"{args.name}-s{args.seed}", args.seed, args.torch_threads)
    base = load_market_config(args.config)
    overrides = {"opportunities_per_day": args.opportunities_per_day, "days": args.days, "auction_type": args.auction_type}
    env = ResidualPacingVecEnv(base, args.fractions, args.campaigns, args.seed, **overrides)

    model = SAC(
        "MlpPolicy", env, learning_rate=args.learning_rate, gamma=args.gamma, batch_size=args.batch_size,
        learning_starts=args.learning_starts, train_freq=1, gradient_steps=args.gradient_steps, ent_coef=args.ent_coef,
        seed=args.seed, device="cpu", verbose=0, policy_kwargs={"net_arch": list(args.net_arch)},
    )
    model.set_logger(make_logger(run_dir))
    start = time.perf_counter()
    callbacks = make_callbacks(run_dir, args.name, args.checkpoint_every, env.num_envs, args.progress, args.timesteps)
    model.learn(args.timesteps, callback=callbacks)
    train_seconds = time.perf_counter() - start

    # evaluate on held-out markets at full size: the controller with the residual, and alone
    over = {"opportunities_per_day": args.eval_opportunities, "days": args.days, "auction_type": args.auction_type}
    spend_all = win_all_spend(base, args.eval_campaigns, args.eval_seed, **over)
    metrics: dict[str, float] = {"train_seconds": train_seconds}
    for frac in args.eval_fractions:
        cfg = budget_config(base, frac * spend_all, args.auction_type)
        ours = run_bidding(ProfilePacing(residual=_SB3Residual(model)), cfg, args.eval_campaigns, args.eval_seed, frac, **over)
        alone = run_bidding(ProfilePacing(), cfg, args.eval_campaigns, args.eval_seed, frac, **over)
        tag = f"b{round(1 / frac)}"
        metrics |= {f"lp_share_{tag}": ours.lp_share, f"spend_share_{tag}": ours.spend_share,
                    f"pacing_alone_lp_share_{tag}": alone.lp_share}
        logger.info("%s at 1/%d: %.2f%% of LP (controller alone %.2f%%)", args.name, round(1 / frac), 100 * ours.lp_share,
                    100 * alone.lp_share)
    pacer = ProfilePacing()
    return register_trained(
        model, args.name, task="bidding", masked=False, seed=args.seed, timesteps=args.timesteps, config=base,
        env_options=overrides | {"residual_of": "profile_pacing", "eta": pacer.eta, "curve_memory": pacer.curve_memory,
                                 "initial": pacer.initial, "fractions": list(args.fractions)},
        hyperparameters=asdict(args), metrics=metrics, train_seconds=train_seconds, run_dir=run_dir, registry=args.registry,
    )
