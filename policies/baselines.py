"""Baseline journey policies for the agents: the simulator's tuned heuristics when ``environment`` offers them,
else a small rule policy of the same shape. All implement SB3's
``predict(obs, state=None, episode_start=None, deterministic=False)`` on the journey observation (N, 24)
(see :class:`environment.journey.JourneyEnv`), and carry a ``name`` and a ``version`` for the decision log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from environment.heuristics import EmailEveryK, EngagementLadder

ACTIONS = ("wait", "email", "sms", "push", "ad", "offer")
"""Action ids of the journey environment (0 wait .. 5 offer)."""
WAIT, EMAIL, SMS = 0, 1, 2
_CONSENT_EMAIL, _CONSENT_SMS, _CAPPED, _SINCE_CONTACT, _SINCE_CLICK = 9, 10, 12, 14, 16


class JourneyPolicy(Protocol):
    """A journey policy as the journey agent uses it (SB3's predictor, plus its name and version)."""

    name: str

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]: ...


@dataclass(frozen=True, slots=True)
class RuleJourneyPolicy:
    """E-mail every ``k`` days where allowed; an SMS to whoever clicked in the last day (a rule policy with
    nothing tuned)."""

    k: int = 7
    name: str = "rule_journey"
    version: str = "1"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.atleast_2d(np.asarray(observation, dtype=np.float32))
        free = obs[:, _CAPPED] < 0.5
        since_contact = np.rint(obs[:, _SINCE_CONTACT] * 30)
        action = np.where(free & (obs[:, _CONSENT_EMAIL] > 0.5) & (since_contact >= self.k), EMAIL, WAIT)
        clicked = np.rint(obs[:, _SINCE_CLICK] * 30) <= 1
        action = np.where(free & (obs[:, _CONSENT_SMS] > 0.5) & clicked & (since_contact >= 2), SMS, action)
        return (action[0] if np.ndim(observation) == 1 else action), state


@dataclass(frozen=True, slots=True)
class NoContact:
    """Never contacts anyone: the holdout's "no contact" arm."""

    name: str = "no_contact"
    version: str = "1"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.atleast_2d(np.asarray(observation))
        action = np.zeros(len(obs), dtype=np.int64)
        return (action[0] if np.ndim(observation) == 1 else action), state


@dataclass(frozen=True, slots=True)
class Named:
    """A predictor with the name and version the decision log records."""

    policy: Any
    name: str
    version: str

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self.policy.predict(observation, state, episode_start, deterministic)


def journey_baseline() -> JourneyPolicy:
    """The production baseline: the simulator's tuned engagement ladder."""
    return Named(EngagementLadder(), "engagement_ladder", "tuned-1")


def holdout_baseline() -> JourneyPolicy:
    """The holdout's baseline arm: e-mail every 12 days (the simplest business-as-usual policy)."""
    return Named(EmailEveryK(), "email_every_k", "tuned-1")
