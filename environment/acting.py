"""One way to act: how a journey policy's choice becomes the action carried out and the propensity logged with it.

The simulator's evaluation, the market stream, the journey agent and the decision API all call :func:`choose`:

1. the policy proposes: by ``argmax`` (a deterministic policy, or a trained one recorded to act by argmax) or by
   sampling its distribution (``sample``), the uniform draw given by the caller - in the engine it derives from the
   decision's id (:func:`draws_of`), so a replay chooses the same action;
2. the guardrails (:mod:`environment.guardrails`) carry a forbidden proposal out as wait;
3. the propensity is the probability of the action carried out under what was actually done: 1.0 for a
   deterministic choice that was allowed, the policy's probability summed over every proposal that ends in that
   action otherwise.

Policies are SB3 predictors; what else they can do is said by the Protocols below, never probed with ``hasattr``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from environment.guardrails import LEGAL, enforce, executed_distribution
from environment.population import N_ACTIONS

ActingMode = Literal["argmax", "sample"]


@runtime_checkable
class Predictor(Protocol):
    """SB3's predictor protocol: heuristics, the oracle and trained models are all scored the same way."""

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]: ...


@runtime_checkable
class ActionDistribution(Protocol):
    """A policy that gives the probability of every action (a trained policy, an epsilon-greedy heuristic)."""

    def action_probabilities(self, observation: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class HasActingMode(Protocol):
    """A policy that says how it acts: ``argmax`` of its distribution or a ``sample`` from it."""

    acting: ActingMode


@runtime_checkable
class EnvBound(Protocol):
    """A policy that reads the simulator it runs in (the oracle, the belief planners, linear bidders)."""

    def bind(self, env: Any) -> None: ...


@runtime_checkable
class Reseedable(Protocol):
    """A policy with randomness of its own that can be reseeded."""

    def reseed(self, seed: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Choice:
    """What :func:`choose` decided for N customers."""

    proposed: np.ndarray  # (N,) the policy's proposal
    executed: np.ndarray  # (N,) what the guardrails let through (a forbidden proposal becomes wait)
    propensity: np.ndarray  # (N,) P(executed action) under the policy and the guardrails
    proposed_propensity: np.ndarray  # (N,) P(proposed action) under the policy

    @property
    def suppressed(self) -> np.ndarray:
        return self.proposed != self.executed


_CAPABILITIES: dict[tuple[type, type], bool] = {}


def capable(policy: Any, protocol: type) -> bool:
    """``isinstance(policy, protocol)``, decided once per policy class: a Protocol check walks every attribute of
    the Protocol, too slow to repeat on every decision (the policies of one class share their capabilities)."""
    key = (type(policy), protocol)
    known = _CAPABILITIES.get(key)
    if known is None:
        known = _CAPABILITIES[key] = isinstance(policy, protocol)
    return known


def acting_mode(policy: Any) -> ActingMode:
    """How ``policy`` acts: its recorded mode, else ``argmax`` (every policy without a distribution is one)."""
    return policy.acting if capable(policy, HasActingMode) else "argmax"


def legal_from_observation(obs: np.ndarray) -> np.ndarray:
    """(N, 6) the actions the observation's consent (columns 9-11) and cap (column 12) allow: the mask a policy
    is trained with."""
    o = np.atleast_2d(np.asarray(obs))
    consent = (o[:, 9] > 0.5).astype(np.int64) + 2 * (o[:, 10] > 0.5) + 4 * (o[:, 11] > 0.5)
    return LEGAL[consent * 2 + (o[:, 12] > 0.5)]


def proposal_distribution(policy: Any, obs: np.ndarray, mode: ActingMode | None = None) -> np.ndarray:
    """(N, 6) the probability of each proposal: the policy's distribution when it samples, else one-hot."""
    obs = np.atleast_2d(np.asarray(obs, dtype=np.float32))
    mode = mode or acting_mode(policy)
    if capable(policy, ActionDistribution):
        probs = np.asarray(policy.action_probabilities(obs), dtype=np.float64).reshape(len(obs), N_ACTIONS)
        if mode == "sample":
            return probs
        return np.eye(N_ACTIONS)[probs.argmax(axis=1)]
    actions, _ = policy.predict(obs, deterministic=True)
    return np.eye(N_ACTIONS)[np.asarray(actions, dtype=np.int64).reshape(len(obs))]


def choose(policy: Any, obs: np.ndarray, allowed: np.ndarray, draws: np.ndarray | None = None,
           mode: ActingMode | None = None) -> Choice:
    """Choose for N customers (see the module docstring). ``draws`` are N uniforms in [0, 1), needed only when
    the policy samples; ``allowed`` is the guardrails' (N, 6) mask."""
    probs = proposal_distribution(policy, obs, mode)
    n = len(probs)
    rows = np.arange(n)
    if np.all(probs.max(axis=1) == 1.0):
        proposed = probs.argmax(axis=1)
    else:
        if draws is None:
            raise ValueError("a sampling policy needs one uniform draw per decision (draws)")
        u = np.asarray(draws, dtype=np.float64).reshape(n, 1)
        proposed = np.minimum((probs.cumsum(axis=1) <= u).sum(axis=1), N_ACTIONS - 1)
        proposed = _first_with_mass(probs, proposed)
    executed = enforce(proposed, np.asarray(allowed, dtype=bool))
    done = executed_distribution(probs, np.asarray(allowed, dtype=bool))
    return Choice(proposed, executed, done[rows, executed], probs[rows, proposed])


def _first_with_mass(probs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
    """Move a draw that landed on a zero-probability action (float round-off at the top) to the last one with mass."""
    rows = np.arange(len(probs))
    empty = probs[rows, proposed] <= 0.0
    if empty.any():
        last = N_ACTIONS - 1 - np.argmax((probs[:, ::-1] > 0.0), axis=1)
        proposed = np.where(empty, last, proposed)
    return proposed


def draw_of(key: str) -> float:
    """The uniform draw in [0, 1) of a decision, from its id (the same id always gives the same draw)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=b"ame-draw").digest()
    return int.from_bytes(digest) / 2.0**64


def draws_of(keys: Sequence[str]) -> np.ndarray:
    return np.fromiter((draw_of(k) for k in keys), dtype=np.float64, count=len(keys))
