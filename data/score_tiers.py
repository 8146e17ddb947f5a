"""The score tiers: a 0-100 score is High from 80, Medium from 50, else Low.

One definition for every reader: the scoring agent tags its ``score_updated`` events with it, and the warehouse
cuts its rule lead score (a probability, the score / 100) at the same points (``data/warehouse/variables.py``).
"""

from __future__ import annotations

from typing import Literal

Tier = Literal["High", "Medium", "Low"]

HIGH_FROM = 80.0
"""A score at or above this (0-100) is High."""
MEDIUM_FROM = 50.0
"""A score at or above this (0-100), and below :data:`HIGH_FROM`, is Medium."""


def tier_of(score: float) -> Tier:
    """The tier of a 0-100 score.

    :param score: the score, 0-100.
    """
    return "High" if score >= HIGH_FROM else "Medium" if score >= MEDIUM_FROM else "Low"
