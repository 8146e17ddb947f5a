"""The scoring models' own errors. Each message says what was wrong and how to fix it."""

from __future__ import annotations


class ScoringError(ValueError):
    """Base of the errors raised for bad input to the scoring models."""


class DataError(ScoringError):
    """The input table cannot be used as it is (missing column, bad target, no rows...)."""


class ModelNotFound(ScoringError):
    """No registry entry matches the requested kind and version."""


class FitError(ScoringError):
    """A model could not be fitted (the optimiser did not converge, too few rows...)."""
