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

from rich.progress import Progress

from environment.belief import WithBelief
from environment.config import load_market_config
from environment.heuristics import journey_baselines
from policies.evaluate import run_journey
from policies.imitation import behaviour_clone, planner_demonstrations
from policies.registry import journey_action_mask
from policies.train_common import (
    make_callbacks,
    make_logger,
    register_trained,
    start_run,
)

logger = logging.getLogger(__name__)


WARM_STARTS = (None, "planner", "lookahead")


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
    normalize_reward: bool = False  # scale rewards by a running std of the return (VecNormalize, rewards only)
    clip_range: float = 0.2
    unsub_price: float = 1.0  # train (and plan demonstrations) with unsubscribes at this x their value; eval: true market
    belief: bool = False  # observe the Bayes filter's belief over the hidden state too (84 columns)
    warm_start: str | None = None  # "planner" (QMDP) or "lookahead": clone that belief planner before PPO (belief, ppo)
    demo_customers: int = 1_000  # planner demonstrations: customers per training seed
    demo_seeds: int = 10  # ... and seeds (1..demo_seeds; evaluation seeds are >= 9,000)
    bc_epochs: int = 10
    dagger_rounds: int = 0  # after cloning: rounds of the clone acting and the planner labelling (demo_seeds x demo_customers each)
    validation_seed: int = 9_000  # picks sampled vs argmax actions; never a benchmark seed (those start at 10,000)
    registry: str | None = None  # registry root; default AME_POLICIES_DIR
    run_dir: str | None = None  # logs and checkpoints; default runs/<name>-<seed>
    progress: bool = True


def main(args: JourneyArgs) -> Path:
    """Train, evaluate and register a journey policy; returns the registered version's folder."""
    _check(args)
    name = args.name or f"journey-{args.algo}"
    # the run folder; seeding: python, numpy, torch (the env by its reset)
    run_dir = start_run(args.run_dir or Path("runs") / f"{name}-s{args.seed}", args.seed, args.torch_threads)
    config = load_market_config(args.config)
    # the market trained on: unsubscribes priced higher when asked (a Lagrangian price); evaluation uses `config`
    # (with_unsub_price rejects a price <= 0)
    train_config = config if args.unsub_price == 1.0 else config.with_unsub_price(args.unsub_price)
    model = _model(args, _env(args, train_config))
    model.set_logger(make_logger(run_dir))
    trained = _acting(model, args)

    start = time.perf_counter()
    warm_metrics = _warm_start(model, args, train_config) if args.warm_start else {}
    if args.warm_start:  # what the clone earns before PPO, on the validation customers (true market)
        warm_metrics["warm_start_validation_profit"] = run_journey(trained, config, args.eval_customers, args.validation_seed).profit
    model.learn(args.timesteps, callback=make_callbacks(run_dir, name, args.checkpoint_every, args.num_envs, args.progress, args.timesteps))
    train_seconds = time.perf_counter() - start

    metrics = {**_evaluate(trained, args, config, name), "train_seconds": train_seconds, **warm_metrics}
    return register_trained(
        model, name, task="journey", masked=args.algo == "ppo", seed=args.seed, timesteps=args.timesteps, config=config,
        env_options={"num_envs": args.num_envs, "belief": args.belief, "act": trained.acting,
                     "unsub_price": args.unsub_price},
        hyperparameters=asdict(args), metrics=metrics,
        train_seconds=train_seconds, run_dir=run_dir, registry=args.registry,
    )


def _check(args: JourneyArgs) -> None:
    """Refuse the combinations that cannot train (before any work)."""
    if args.algo not in ("ppo", "a2c", "dqn"):
        raise ValueError(f"unknown algo {args.algo!r}; choose ppo, a2c or dqn")
    if args.warm_start not in WARM_STARTS:
        raise ValueError(f"unknown warm start {args.warm_start!r}; choose planner or lookahead")
    if args.validation_seed <= args.demo_seeds * (args.dagger_rounds + 1):
        raise ValueError("the demonstration seeds (1..demo_seeds x (dagger_rounds + 1)) must stay below the validation seed")
    if args.warm_start and (args.algo != "ppo" or not args.belief):
        raise ValueError("--warm-start clones a belief-observing planner: it needs --algo ppo and --belief")


def _env(args: JourneyArgs, train_config: Any) -> Any:
    """The vectorized training market as SB3 sees it (rewards normalized when asked)."""
    from environment.vector import JourneyVectorEnv, SB3VecEnvAdapter  # lazy: loads torch and stable-baselines3

    env = SB3VecEnvAdapter(JourneyVectorEnv(args.num_envs, train_config, belief=args.belief))
    env.seed(args.seed)
    if not args.normalize_reward:
        return env
    from stable_baselines3.common.vec_env import VecNormalize  # lazy: stable-baselines3 is heavy

    return VecNormalize(env, norm_obs=False, norm_reward=True, gamma=args.gamma)


def _model(args: JourneyArgs, env: Any) -> Any:
    """The untrained model of ``args.algo`` (masked PPO, A2C or DQN)."""
    policy_kwargs: dict[str, Any] = {"net_arch": list(args.net_arch)}
    common = {"seed": args.seed, "device": "cpu", "verbose": 0, "policy_kwargs": policy_kwargs}
    if args.algo == "ppo":
        from sb3_contrib import MaskablePPO  # lazy: sb3-contrib is heavy

        return MaskablePPO(
            "MlpPolicy", env, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
            learning_rate=args.learning_rate, gamma=args.gamma, gae_lambda=args.gae_lambda, ent_coef=args.ent_coef,
            clip_range=args.clip_range, **common,
        )
    if args.algo == "a2c":
        from stable_baselines3 import A2C  # lazy: stable-baselines3 is heavy

        return A2C("MlpPolicy", env, n_steps=8, learning_rate=args.learning_rate * 3, gamma=args.gamma,
                   gae_lambda=args.gae_lambda, ent_coef=args.ent_coef, **common)
    from stable_baselines3 import DQN  # lazy: stable-baselines3 is heavy

    return DQN("MlpPolicy", env, learning_rate=1e-4, buffer_size=500_000, learning_starts=20_000, batch_size=512,
               train_freq=1, gradient_steps=1, target_update_interval=2_000, gamma=args.gamma,
               exploration_fraction=0.3, **common)


def _acting(model: Any, args: JourneyArgs) -> Any:
    """The model as it will be served: environment.acting.choose on its distribution (with its belief features)."""
    from policies.export import sb3_action_probabilities  # lazy: loads torch

    class _Trained:
        acting = "argmax" if args.algo == "dqn" else "sample"

        def action_probabilities(self, obs, action_masks=None):
            return sb3_action_probabilities(model, obs, journey_action_mask(obs) if args.algo == "ppo" else None)

        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            if args.algo == "ppo":
                return model.predict(obs, deterministic=deterministic, action_masks=journey_action_mask(obs))
            return model.predict(obs, deterministic=deterministic)

    return WithBelief(_Trained()) if args.belief else _Trained()


def _evaluate(trained: Any, args: JourneyArgs, config: Any, name: str) -> dict[str, float]:
    """Profit on held-out customers against the tuned heuristics (the same customers for each); sets the acting mode
    served: sampled (propensities to log) unless argmax is better on the validation customers."""
    sampled = run_journey(trained, config, args.eval_customers, args.validation_seed).profit
    trained.acting = "argmax"
    argmax = run_journey(trained, config, args.eval_customers, args.validation_seed).profit
    trained.acting = "sample" if args.algo != "dqn" and sampled >= argmax else "argmax"
    ours = run_journey(trained, config, args.eval_customers, args.eval_seed)
    best = max((run_journey(h, config, args.eval_customers, args.eval_seed) for h in journey_baselines()), key=lambda m: m.profit)
    logger.info("%s: profit %.3f vs best heuristic %s %.3f", name, ours.profit, best.policy, best.profit)
    return {"profit_per_customer": ours.profit, "unsubscribe_rate": ours.unsubscribe_rate,
            "conversion_rate": ours.conversion_rate, "best_heuristic_profit": best.profit,
            "validation_profit_sampled": sampled, "validation_profit_argmax": argmax}


def _warm_start(model: Any, args: JourneyArgs, config: Any) -> dict[str, float]:
    """Clone the belief-state planner into ``model`` (actor and critic) before PPO; returns the fit's figures."""
    lookahead = args.warm_start == "lookahead"

    def clone_acts(features: Any, mask: Any) -> Any:  # the clone, sampling its distribution, for DAgger
        return model.predict(features, deterministic=False, action_masks=mask)[0]

    with Progress(disable=not args.progress) as bar:
        demos = None
        for round_ in range(args.dagger_rounds + 1):  # round 0: the planner acts; then the clone acts, the planner labels
            first = 1 + round_ * args.demo_seeds  # fresh training customers each round (evaluation seeds are >= 9,000)
            task = bar.add_task("planner demonstrations" if round_ == 0 else f"DAgger round {round_}", total=args.demo_seeds)
            more = planner_demonstrations(config, args.demo_customers, list(range(first, first + args.demo_seeds)),
                                          args.gamma, progress=lambda task=task: bar.advance(task), lookahead=lookahead,
                                          learner=clone_acts if round_ else None)
            demos = more if demos is None else demos + more
            task = bar.add_task("behaviour cloning", total=args.bc_epochs)
            fit = behaviour_clone(model, demos, args.bc_epochs, seed=args.seed + round_,
                                  progress=lambda task=task: bar.advance(task))
            logger.info("warm start round %d: %d planner decisions, agreement %.3f", round_, len(demos), fit["bc_agreement"])
    assert demos is not None
    return {**fit, "bc_decisions": float(len(demos))}
