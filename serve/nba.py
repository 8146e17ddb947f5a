"""The next best action of ``/v1/next-best-action``: the journey policy on what the engine knows of a customer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from data.projections.profile import CustomerProfile

ACTIONS = ("wait", "email", "sms", "push", "ad", "offer")
CHANNEL_OF_ACTION = {"email": "email", "sms": "sms", "push": "push", "ad": "ad", "offer": "email"}


def journey_record(profile: CustomerProfile | None) -> dict[str, Any]:
    """The journey agent's record (``agents.journey``) as far as the profile projection knows it.

    The profile has no per-contact history, so caps are applied by the journey agent downstream, not here.
    """
    from agents.journey import new_record

    rec = new_record()
    if profile is None:
        return rec
    rec.update(
        first_us=profile.first_seen_us, purchase_us=profile.last_purchase_us, purchases=profile.purchases,
        revenue=profile.revenue, consent={c: [s.granted, s.at_us] for c, s in profile.consent.items()},
    )
    if profile.last_channel_at is not None:
        rec["visit_us"] = profile.last_channel_at[0]
    return rec


@dataclass(frozen=True, slots=True)
class ActionChoice:
    action: str
    channel: str | None
    propensity: float
    reason: str | None
    features_hash: str


class NextBestAction:
    """The journey policy on a profile, with the journey agent's consent and quiet-hour guardrails."""

    def __init__(self) -> None:
        from agents.journey import JourneyAgent

        self.agent = JourneyAgent()

    def decide(self, policy: Any, profile: CustomerProfile | None, now_us: int) -> ActionChoice:
        rec = journey_record(profile)
        obs = self.agent.observation(rec, now_us)
        features_hash = hashlib.blake2b(obs.tobytes(), digest_size=8).hexdigest()
        if self.agent.quiet(now_us):
            return ActionChoice("wait", None, 1.0, "quiet hours", features_hash)
        probs = _action_probabilities(policy, obs)
        if probs is not None:
            a = int(np.argmax(probs))
            propensity = float(max(probs[a], 1e-6))
        else:
            action, _ = policy.predict(obs, deterministic=True)
            a, propensity = int(np.asarray(action).reshape(-1)[0]), 1.0
        name = ACTIONS[a] if 0 <= a < len(ACTIONS) else "wait"
        channel = CHANNEL_OF_ACTION.get(name)
        if channel is not None and not self.agent.allowed(rec, channel):
            return ActionChoice("wait", None, 1.0, f"no consent on {channel}", features_hash)
        return ActionChoice(name, channel, round(min(1.0, propensity), 6), None, features_hash)


def _action_probabilities(policy: Any, obs: np.ndarray) -> np.ndarray | None:
    """Action probabilities where the policy offers them (an exported registry policy), else None."""
    fn = getattr(policy, "action_probabilities", None)
    if fn is None:
        return None
    probs = np.asarray(fn(obs[None, :]), dtype=np.float64).reshape(-1)
    return probs if probs.size == len(ACTIONS) else None


