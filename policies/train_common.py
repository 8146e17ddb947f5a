"""What every training entry point shares: the run folder and seeding, the SB3 logger (CSV curves, TensorBoard
when installed), the callbacks (checkpoints, a rich progress bar) and registration of the trained model."""

from __future__ import annotations

import importlib.util
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.logger import Logger, configure

from policies.registry import PolicyRegistry, config_hash

logger = logging.getLogger(__name__)

CURVE_FILE = "progress.csv"


def start_run(run_dir: str | Path, seed: int, torch_threads: int) -> Path:
    """Create the run folder and seed python, numpy and torch (the env is seeded by its own reset)."""
    import torch  # lazy: torch is heavy

    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)
    return path


def make_logger(run_dir: Path) -> Logger:
    """SB3 logger writing ``progress.csv`` (the learning curve), plus TensorBoard when it is installed."""
    formats = ["csv"]
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append("tensorboard")
    return configure(str(run_dir), formats)


class RichProgress(BaseCallback):
    """A rich progress bar over timesteps, showing the latest mean episode return when SB3 has one."""

    def __init__(self, total: int, description: str) -> None:
        super().__init__()
        self.total, self.description = total, description
        self._progress: Any = None
        self._task: Any = None

    def _on_training_start(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total, info="")

    def _on_step(self) -> bool:
        info = ""
        buf = getattr(self.model, "ep_info_buffer", None)
        if buf:
            info = f"return {sum(e['r'] for e in buf) / len(buf):.3f}"
        self._progress.update(self._task, completed=min(self.num_timesteps, self.total), info=info)
        return True

    def _on_training_end(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class EpisodeReturns(BaseCallback):
    """Logs mean episode return from the vector env's rewards (the adapter has no Monitor wrapper)."""

    def __init__(self, num_envs: int) -> None:
        super().__init__()
        self._running: Any = None
        self._done: list[float] = []

    def _on_step(self) -> bool:
        rewards, dones = self.locals.get("rewards"), self.locals.get("dones")
        if rewards is None or dones is None:
            return True
        if self._running is None:
            self._running = np.zeros(len(rewards))
        self._running += rewards
        if np.any(dones):
            finished = self._running[dones]
            self._done.extend(finished.tolist())
            self._running[dones] = 0.0
            if self.model.ep_info_buffer is not None:
                self.model.ep_info_buffer.extend({"r": float(r), "l": 0, "t": 0.0} for r in finished[-100:])
        return True

    def _on_rollout_end(self) -> None:
        if self._done:
            self.logger.record("rollout/episode_return", sum(self._done) / len(self._done))
            self._done = []


def make_callbacks(run_dir: Path, name: str, checkpoint_every: int, num_envs: int, progress: bool, total: int) -> CallbackList:
    """Episode returns, checkpoints every ``checkpoint_every`` steps, and (optionally) the progress bar."""
    callbacks: list[BaseCallback] = [
        EpisodeReturns(num_envs),
        CheckpointCallback(max(checkpoint_every // num_envs, 1), str(run_dir / "checkpoints"), name_prefix=name),
    ]
    if progress:
        callbacks.append(RichProgress(total, f"train {name}"))
    return CallbackList(callbacks)


def register_trained(
    model: Any, name: str, *, task: str, masked: bool, seed: int, timesteps: int, config: Any, env_options: dict[str, Any],
    hyperparameters: dict[str, Any], metrics: dict[str, float], train_seconds: float, run_dir: Path, registry: str | None,
) -> Path:
    """Register ``model`` (zip, TorchScript export checked against SB3, metadata) and copy its learning curve."""
    reg = PolicyRegistry(registry)
    meta = reg.register(
        name, model, task=task, masked=masked, seed=seed, timesteps=timesteps, env_config_hash=config_hash(config),
        env_options=env_options, hyperparameters=hyperparameters, metrics=metrics, train_seconds=train_seconds,
    )
    path = reg.path(name, meta.version)
    curve = run_dir / CURVE_FILE
    if curve.is_file():
        shutil.copyfile(curve, path / CURVE_FILE)
    logger.info("registered %s %s (%s)", name, meta.version, path)
    return path
