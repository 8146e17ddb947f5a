"""Probability calibration (isotonic or Platt), the 0-100 score and the High/Medium/Low tiers.

Both calibrators are fitted on a held-out calibration split, never on the rows the trees learned from,
and both are plain numpy at prediction time, so they add microseconds to a score.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.optimize import minimize

from policies.scoring.errors import FitError

EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def pool_adjacent_violators(y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Isotonic (non-decreasing) regression of ``y`` already sorted by score: block means, weights, block ends."""
    means: list[float] = []
    sizes: list[float] = []
    ends: list[int] = []
    for i, (value, weight) in enumerate(zip(y.tolist(), weights.tolist(), strict=True)):
        means.append(value)
        sizes.append(weight)
        ends.append(i)
        while len(means) > 1 and means[-2] >= means[-1]:
            w = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / w
            sizes[-2] = w
            ends[-2] = ends[-1]
            del means[-1], sizes[-1], ends[-1]
    return np.asarray(means), np.asarray(sizes), np.asarray(ends)


class Calibrator(BaseModel):
    """Maps the model's raw probability to a calibrated one.

    ``isotonic``: a non-decreasing step function found by pool-adjacent-violators, interpolated linearly
    between block centres (so nearby customers do not tie). ``platt``: a logistic curve on the raw logit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: Literal["isotonic", "platt"]
    x: tuple[float, ...] = ()  # isotonic knots (raw probability)
    y: tuple[float, ...] = ()  # isotonic values (calibrated probability)
    a: float = 1.0  # platt slope on the logit
    b: float = 0.0  # platt intercept

    def transform(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))
        return np.interp(raw, self.x, self.y)


def fit_isotonic(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    order = np.argsort(raw, kind="mergesort")
    xs, ys = np.asarray(raw, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    # collapse equal scores first, so a tie is one point
    knots, start = np.unique(xs, return_index=True)
    counts = np.diff(np.append(start, len(xs)))
    sums = np.add.reduceat(ys, start)
    means, _sizes, ends = pool_adjacent_violators(sums / counts, counts.astype(np.float64))
    starts = np.concatenate([[0], ends[:-1] + 1])
    centres = np.array([np.average(knots[s : e + 1], weights=counts[s : e + 1]) for s, e in zip(starts, ends, strict=True)])
    x = np.concatenate([[0.0], centres, [1.0]])
    v = np.concatenate([[means[0]], means, [means[-1]]])
    x, keep = np.unique(x, return_index=True)
    return Calibrator(method="isotonic", x=tuple(x.tolist()), y=tuple(np.clip(v[keep], 0, 1).tolist()))


def fit_platt(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    z = _logit(np.asarray(raw, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        m = theta[0] * z + theta[1]
        p = 1.0 / (1.0 + np.exp(-m))
        nll = np.sum(np.logaddexp(0.0, m) - y * m)
        g = p - y
        return float(nll), np.array([np.dot(g, z), g.sum()])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    if not np.all(np.isfinite(result.x)):
        raise FitError(f"Platt calibration did not converge ({result.message}); try --calibration isotonic")
    return Calibrator(method="platt", a=float(result.x[0]), b=float(result.x[1]))


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str = "auto") -> Calibrator:
    """Fit on the calibration split. ``auto`` picks isotonic when each class has 100+ rows, Platt otherwise."""
    if method == "auto":
        n_pos = int(np.sum(y))
        method = "isotonic" if min(n_pos, len(y) - n_pos) >= 100 else "platt"
    if method == "isotonic":
        return fit_isotonic(raw, y)
    if method == "platt":
        return fit_platt(raw, y)
    raise FitError(f"unknown calibration method {method!r}; use auto, isotonic or platt")


class ScoreScale(BaseModel):
    """Calibrated probability -> 0-100 score -> tier.

    The score is the percentile of the probability among the calibration split's customers (mid-rank), so
    score 90 means "above 90% of the reference population" whatever the base rate; it is monotone in the
    probability, which stays available beside it. Tiers cut the score: High >= ``high``, Medium >= ``medium``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    knots: tuple[float, ...]  # distinct calibrated probabilities of the reference population
    percentiles: tuple[float, ...]  # their mid-rank percentile, 0-100
    high: float = 80.0
    medium: float = 50.0

    def score(self, probability: np.ndarray) -> np.ndarray:
        return np.interp(probability, self.knots, self.percentiles)

    def tier(self, score: np.ndarray) -> np.ndarray:
        return np.where(score >= self.high, "High", np.where(score >= self.medium, "Medium", "Low"))

    def tier_of(self, score: float) -> str:
        return "High" if score >= self.high else "Medium" if score >= self.medium else "Low"


def fit_score_scale(probability: np.ndarray, high: float = 80.0, medium: float = 50.0) -> ScoreScale:
    values = np.sort(np.asarray(probability, dtype=np.float64))
    knots, start, counts = np.unique(values, return_index=True, return_counts=True)
    mid = (start + (counts - 1) / 2.0 + 0.5) / len(values) * 100.0
    if len(knots) == 1:  # a degenerate reference: everyone the same
        knots, mid = np.array([knots[0], knots[0] + EPS]), np.array([50.0, 50.0])
    # keep at most ~1,000 knots: enough resolution, small file
    if len(knots) > 1000:
        pick = np.unique(np.linspace(0, len(knots) - 1, 1000).round().astype(int))
        knots, mid = knots[pick], mid[pick]
    if not 0 <= medium <= high <= 100:
        raise FitError(f"tier cut-offs must satisfy 0 <= medium ({medium}) <= high ({high}) <= 100")
    return ScoreScale(knots=tuple(knots.tolist()), percentiles=tuple(mid.tolist()), high=high, medium=medium)
