"""Train a journey policy (next-best-action per customer per day) on the vectorized journey simulator.

Read top to bottom: arguments, seeding, env, model, learn (CSV/TensorBoard curves, checkpoints, a progress
bar), evaluate against the tuned heuristics on held-out customers, register. ``main(args)`` returns the
registered version's folder. ``ppo`` is sb3-contrib's MaskablePPO (the legal-action mask comes from consent
and the frequency cap); ``a2c`` and ``dqn`` are stable-baselines3's, unmasked (an illegal action becomes wait).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from policies.train_common import (
    make_callbacks,
    make_logger,
    register_trained,
    start_run,
)

logger = logging.getLogger(__name__)


@dataclass
class JourneyArgs:
    """Hyperparameters and run settings (the defaults are what the reported figures used)."""

    algo: str = "ppo"  # ppo (MaskablePPO) | a2c | dqn
    timesteps: int = 3_000_000
    seed: int = 0
    config: str | None = None  # market YAML; default: the shipped calibrated market
    name: str | None = None  # registry name; default journey-<algo>
    num_envs: int = 256
    n_steps: int = 60  # one 60-day episode per env per rollout
    batch_size: int = 3_840
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.995
    gae_lambda: float = 0.95
    ent_coef: float = 0.003
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    eval_customers: int = 2_000
    eval_seed: int = 10_000  # customers never seen in training (training seeds are small ints)
    checkpoint_every: int = 500_000
    torch_threads: int = 2
    registry: str | None = None  # registry root; default AME_POLICIES_DIR
    run_dir: str | None = None  # logs and checkpoints; default runs/<name>-<seed>
    progress: bool = True


def main(args: JourneyArgs) -> Path:
    """Train, evaluate and register a journey policy; returns the registered version's folder."""
    from environment.config import load_market_config
    from environment.heuristics import journey_baselines
    from environment.vector import JourneyVectorEnv, SB3VecEnvAdapter
    from policies.evaluate import run_journey

    name = args.name or f"journey-{args.algo}"
    # the run folder; seeding: python, numpy, torch (the env by its reset)
    run_dir = start_run(args.run_dir or Path("runs") / f"{name}-s{args.seed}", args.seed, args.torch_threads)
    config = load_market_config(args.config)
    env = SB3VecEnvAdapter(JourneyVectorEnv(args.num_envs, config))
    env.seed(args.seed)

    policy_kwargs: dict[str, Any] = {"net_arch": list(args.net_arch)}
    common = {"seed": args.seed, "device": "cpu", "verbose": 0, "policy_kwargs": policy_kwargs}
    if args.algo == "ppo":
        from sb3_contrib import MaskablePPO

        model = MaskablePPO(
            "MlpPolicy", env, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
            learning_rate=args.learning_rate, gamma=args.gamma, gae_lambda=args.gae_lambda, ent_coef=args.ent_coef, **common,
        )
    elif args.algo == "a2c":
        from stable_baselines3 import A2C

        model = A2C("MlpPolicy", env, n_steps=8, learning_rate=args.learning_rate * 3, gamma=args.gamma,
                    gae_lambda=args.gae_lambda, ent_coef=args.ent_coef, **common)
    elif args.algo == "dqn":
        from stable_baselines3 import DQN

        model = DQN("MlpPolicy", env, learning_rate=1e-4, buffer_size=500_000, learning_starts=20_000, batch_size=512,
                    train_freq=1, gradient_steps=1, target_update_interval=2_000, gamma=args.gamma,
                    exploration_fraction=0.3, **common)
    else:
        raise ValueError(f"unknown algo {args.algo!r}; choose ppo, a2c or dqn")
    model.set_logger(make_logger(run_dir))

    start = time.perf_counter()
    model.learn(args.timesteps, callback=make_callbacks(run_dir, name, args.checkpoint_every, args.num_envs, args.progress, args.timesteps))
    train_seconds = time.perf_counter() - start

    # evaluate on held-out customers against the tuned heuristics (same customers for each)
    from policies.registry import journey_action_mask

    class _Trained:  # samples its distribution, as served (see policies.evaluate.resolve_policy)
        stochastic = args.algo != "dqn"

        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            if args.algo == "ppo":
                return model.predict(obs, deterministic=deterministic, action_masks=journey_action_mask(obs))
            return model.predict(obs, deterministic=deterministic)

    ours = run_journey(_Trained(), config, args.eval_customers, args.eval_seed)
    best = max((run_journey(h, config, args.eval_customers, args.eval_seed) for h in journey_baselines()), key=lambda m: m.profit)
    metrics = {
        "profit_per_customer": ours.profit, "unsubscribe_rate": ours.unsubscribe_rate, "conversion_rate": ours.conversion_rate,
        "best_heuristic_profit": best.profit, "train_seconds": train_seconds,
    }
    logger.info("%s: profit %.3f vs best heuristic %s %.3f", name, ours.profit, best.policy, best.profit)

    return register_trained(
        model, name, task="journey", masked=args.algo == "ppo", seed=args.seed, timesteps=args.timesteps, config=config,
        env_options={"num_envs": args.num_envs}, hyperparameters=asdict(args), metrics=metrics,
        train_seconds=train_seconds, run_dir=run_dir, registry=args.registry,
    )
