"""The guardrails every journey decision passes, defined once for the simulator, the agents and the decision API:
the actions and their channels, consent, the frequency cap and quiet hours.

A contact on a channel needs the customer's explicit consent on it (e-mail, SMS, push; an offer goes by e-mail);
an ad needs none but is never shown to a customer who withdrew consent on the ad channel. No contact while the
frequency cap holds (:func:`environment.observation.capped`), nor in quiet hours. Wait is always allowed. An action
the guardrails forbid is carried out as wait.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from environment.population import ACTION_CONSENT_BIT, ACTIONS, AD, N_ACTIONS, WAIT

ACTION_CHANNEL: tuple[str | None, ...] = (None, "email", "sms", "push", "ad", "email")
"""The channel of each action (ACTIONS order); wait has none."""
HOUR_US = 3_600_000_000


def _legal_table() -> np.ndarray:
    """(16, 6) bool: the actions allowed for (consent bits * 2 + capped)."""
    table = np.zeros((16, N_ACTIONS), dtype=bool)
    for consent in range(8):
        table[consent * 2] = (ACTION_CONSENT_BIT == 0) | ((consent & ACTION_CONSENT_BIT) != 0)
    table[:, WAIT] = True
    return table


LEGAL = _legal_table()


def allowed_actions(consent: np.ndarray, capped: np.ndarray, quiet: np.ndarray | bool = False,
                    ad_withdrawn: np.ndarray | bool = False) -> np.ndarray:
    """(N, 6) bool: the actions the guardrails allow, for consent bits (email 1, sms 2, push 4) and the cap."""
    consent = np.asarray(consent, dtype=np.int64)
    mask = LEGAL[consent * 2 + np.asarray(capped, dtype=np.int64)].copy()
    quiet = np.broadcast_to(np.asarray(quiet, dtype=bool), consent.shape)
    mask[quiet, 1:] = False
    mask[np.broadcast_to(np.asarray(ad_withdrawn, dtype=bool), consent.shape), AD] = False
    return mask


def enforce(proposed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The actions carried out: each proposal where allowed, wait where not."""
    proposed = np.asarray(proposed, dtype=np.int64)
    return np.where(allowed[np.arange(len(proposed)), proposed], proposed, WAIT)


def executed_distribution(proposal_probs: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(N, 6) probabilities of each action being carried out, given the probabilities of each being proposed:
    a forbidden proposal's probability moves to wait."""
    probs = np.where(allowed, proposal_probs, 0.0)
    probs[:, WAIT] += np.where(allowed, 0.0, proposal_probs).sum(axis=1)
    return probs


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No contact from ``start`` o'clock to ``end`` o'clock (UTC; the span may cross midnight)."""

    start: int = 21
    end: int = 8

    def at(self, t_us: int) -> bool:
        hour = (t_us // HOUR_US) % 24
        return (self.start <= hour or hour < self.end) if self.start > self.end else self.start <= hour < self.end


def suppression_reason(action: int, consent: int, capped: bool, quiet: bool, ad_withdrawn: bool) -> str | None:
    """Why the guardrails carry ``action`` out as wait (None: they don't)."""
    if action == WAIT:
        return None
    if (ACTION_CONSENT_BIT[action] and not consent & ACTION_CONSENT_BIT[action]) or (action == AD and ad_withdrawn):
        return "consent"
    if capped:
        return "frequency_cap"
    return "quiet_hours" if quiet else None


def mask_bits(mask: np.ndarray) -> int:
    """One row of allowed actions as an integer (bit i: action i allowed), for the decision log."""
    return int(np.dot(np.asarray(mask, dtype=np.int64), 1 << np.arange(len(mask))))


def mask_of_bits(bits: np.ndarray | int) -> np.ndarray:
    """The inverse of :func:`mask_bits`, for one or many integers: (..., 6) bool."""
    return (np.asarray(bits, dtype=np.int64)[..., None] >> np.arange(N_ACTIONS)) & 1 == 1


__all__ = ["ACTIONS", "ACTION_CHANNEL", "LEGAL", "QuietHours", "allowed_actions", "enforce", "executed_distribution",
           "mask_bits", "mask_of_bits", "suppression_reason"]
