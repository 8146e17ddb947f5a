"""The challenger gate: a retrained model replaces the champion only when it is better beyond doubt.

Both models score the same time-split holdout rows. The paired bootstrap resamples those rows (the same rows for
both models in each resample) and gives the distribution of ``AUC(challenger) - AUC(champion)``; the challenger is
promoted only when the whole confidence interval of that difference lies above 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from policies.scoring.errors import DataError
from policies.scoring.metrics import roc_auc

MAX_CELLS = 4_000_000  # resampled scores held at once (memory of one chunk of resamples)


@dataclass(frozen=True, slots=True)
class ChallengeResult:
    """Both AUCs on the holdout, their difference and its paired-bootstrap CI."""

    champion_auc: float
    challenger_auc: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    bootstrap: int
    rows: int

    @property
    def promote(self) -> bool:
        """The challenger wins only when the CI of the difference excludes 0 on the positive side."""
        return self.ci_low > 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promote": self.promote}


def auc_rows(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of every row of ``scores`` against the same row of the labels ``y`` (rank statistic, ties halved)."""
    ranks = rankdata(scores, axis=1)
    positives = y.sum(axis=1)
    negatives = y.shape[1] - positives
    return ((ranks * y).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives)


def paired_bootstrap(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, n_boot: int = 2_000,
                     confidence: float = 0.95, seed: int = 7) -> ChallengeResult:
    """Compare two models' probabilities on the same holdout rows (see the module docstring).

    :param y: the holdout's labels (0/1).
    :param champion: the champion's scores of the rows.
    :param challenger: the challenger's scores of the same rows.
    :param n_boot: bootstrap resamples (those that draw one class only are left out).
    :param confidence: the CI's coverage.
    :param seed: the resampling's seed.
    """
    y = np.asarray(y, dtype=np.int8)
    champion, challenger = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    if not (len(y) == len(champion) == len(challenger)):
        raise DataError(f"the holdout has {len(y)} labels but {len(champion)} champion and {len(challenger)} challenger scores")
    if y.min(initial=1) == y.max(initial=0):
        raise DataError(f"the holdout's {len(y)} rows hold one class only; an AUC needs won and lost outcomes both")
    rng = np.random.default_rng(seed)
    n = len(y)
    chunk = max(1, MAX_CELLS // n)
    differences: list[np.ndarray] = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        yb = y[idx]
        both = (yb.sum(axis=1) > 0) & (yb.sum(axis=1) < n)
        yb, idx = yb[both], idx[both]
        differences.append(auc_rows(yb, challenger[idx]) - auc_rows(yb, champion[idx]))
    diff = np.concatenate(differences)
    tail = (1 - confidence) / 2
    low, high = np.quantile(diff, [tail, 1 - tail])
    a, b = roc_auc(y, champion), roc_auc(y, challenger)
    return ChallengeResult(round(a, 6), round(b, 6), round(b - a, 6), round(float(low), 6), round(float(high), 6),
                           confidence, len(diff), n)
