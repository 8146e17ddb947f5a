"""Train a budget-pacing bidder (DRLB-style: the agent sets the bid multiplier slot by slot) on the auction
simulator's multiplier mode.

Read top to bottom: arguments, seeding, env (the daily budget set as a fraction of the spend that would win
every auction), model (SAC or PPO), learn, evaluate against the bidding baselines, register.
Training uses the impression's expected value (pCTR x pCVR x value, known to the simulator) as the reward
instead of the delayed, drawn conversions: the same objective the hindsight LP counts, with less variance.
Rewards are normalised for learning (``VecNormalize``, rewards only), never the observations, so the
TorchScript export needs nothing but the network.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from environment.bidding import LinearPreviousDay
from environment.config import load_market_config
from environment.vector import SB3VecEnvAdapter
from policies.evaluate import budget_config, run_bidding, win_all_spend
from policies.train_common import (
    make_callbacks,
    make_logger,
    register_trained,
    start_run,
)

logger = logging.getLogger(__name__)


class ExpectedValueReward(SB3VecEnvAdapter):
    """The SB3 adapter of :class:`~environment.vector.AuctionVectorEnv` with ``info["expected_value"]`` as reward."""

    def step_wait(self):  # type: ignore[override]
        obs, _, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            for idx in np.flatnonzero(dones):
                infos[idx]["terminal_observation"] = info["final_obs"][idx]
                infos[idx]["TimeLimit.truncated"] = True
        return obs, np.asarray(info["expected_value"], dtype=np.float32), dones, infos


@dataclass
class BiddingArgs:
    """Hyperparameters and run settings."""

    algo: str = "sac"  # sac | ppo
    timesteps: int = 200_000
    seed: int = 0
    config: str | None = None
    name: str | None = None  # default bidding-<algo>-b<1/fraction>
    budget_fraction: float = 1 / 8  # daily budget / the spend that wins every auction
    auction_type: str = "second_price"
    num_envs: int = 8  # campaigns stepped together
    opportunities_per_day: int = 20_000
    days: int = 7
    learning_rate: float = 3e-4
    gamma: float = 0.99
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    eval_campaigns: int = 4
    eval_seed: int = 10_000
    eval_opportunities: int = 100_000
    checkpoint_every: int = 50_000
    torch_threads: int = 2
    registry: str | None = None
    run_dir: str | None = None
    progress: bool = True


def main(args: BiddingArgs) -> Path:
    """Train, evaluate and register a bidder; returns the registered version's folder."""
    from stable_baselines3.common.vec_env import VecNormalize  # lazy: stable-baselines3 is heavy

    from environment.vector import AuctionVectorEnv  # lazy: loads torch and stable-baselines3

    name = args.name or f"bidding-{args.algo}-b{round(1 / args.budget_fraction)}"
    # the run folder; seeding: python, numpy, torch (the env by its reset)
    run_dir = start_run(args.run_dir or Path("runs") / f"{name}-s{args.seed}", args.seed, args.torch_threads)
    base = load_market_config(args.config)
    overrides = {"opportunities_per_day": args.opportunities_per_day, "days": args.days, "auction_type": args.auction_type}
    spend_all = win_all_spend(base, args.num_envs, args.seed, **overrides)
    config = budget_config(base, args.budget_fraction * spend_all, args.auction_type)
    raw = ExpectedValueReward(AuctionVectorEnv(args.num_envs, config, **overrides))
    raw.seed(args.seed)
    env = VecNormalize(raw, norm_obs=False, norm_reward=True, gamma=args.gamma)

    common = {"seed": args.seed, "device": "cpu", "verbose": 0, "policy_kwargs": {"net_arch": list(args.net_arch)}}
    if args.algo == "sac":
        from stable_baselines3 import SAC  # lazy: stable-baselines3 is heavy

        model = SAC("MlpPolicy", env, learning_rate=args.learning_rate, gamma=args.gamma, learning_starts=2_000,
                    batch_size=256, train_freq=4, gradient_steps=1, **common)
    elif args.algo == "ppo":
        from stable_baselines3 import PPO  # lazy: stable-baselines3 is heavy

        model = PPO("MlpPolicy", env, n_steps=96, batch_size=384, n_epochs=5, learning_rate=args.learning_rate,
                    gamma=args.gamma, **common)
    else:
        raise ValueError(f"unknown algo {args.algo!r}; choose sac or ppo")
    model.set_logger(make_logger(run_dir))

    start = time.perf_counter()
    model.learn(args.timesteps, callback=make_callbacks(run_dir, name, args.checkpoint_every, args.num_envs, args.progress, args.timesteps))
    train_seconds = time.perf_counter() - start

    # evaluate at the evaluation market's own budget fraction, beside previous-day linear bidding
    eval_over = {"opportunities_per_day": args.eval_opportunities, "days": args.days, "auction_type": args.auction_type}
    eval_budget = args.budget_fraction * win_all_spend(base, args.eval_campaigns, args.eval_seed, **eval_over)
    eval_cfg = budget_config(base, eval_budget, args.auction_type)

    class _Trained:
        name = "rl"

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return model.predict(obs, deterministic=True)

    ours = run_bidding(_Trained(), eval_cfg, args.eval_campaigns, args.eval_seed, args.budget_fraction, **eval_over)
    linear = run_bidding(LinearPreviousDay(), eval_cfg, args.eval_campaigns, args.eval_seed, args.budget_fraction, **eval_over)
    metrics = {
        "lp_share": ours.lp_share, "spend_share": ours.spend_share, "linear_previous_day_lp_share": linear.lp_share,
        "train_seconds": train_seconds,
    }
    logger.info("%s: %.1f%% of hindsight LP (linear previous day %.1f%%)", name, 100 * ours.lp_share, 100 * linear.lp_share)
    return register_trained(
        model, name, task="bidding", masked=False, seed=args.seed, timesteps=args.timesteps, config=config,
        env_options=overrides | {"budget_fraction": args.budget_fraction, "num_envs": args.num_envs},
        hyperparameters=asdict(args), metrics=metrics, train_seconds=train_seconds, run_dir=run_dir, registry=args.registry,
    )
