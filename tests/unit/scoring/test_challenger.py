"""The challenger gate's paired bootstrap: a clearly better model is promoted, an equal one is not."""

from __future__ import annotations

import numpy as np
import pytest

from policies.scoring.challenger import auc_rows, paired_bootstrap
from policies.scoring.errors import DataError
from policies.scoring.metrics import roc_auc


def _holdout(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + rng.normal(scale=1.0, size=n) > 0.5).astype(int)
    return y, signal


def test_auc_rows_equals_the_roc_auc_of_each_row() -> None:
    y, s = _holdout(200)
    noisy = s + np.random.default_rng(1).normal(size=200)
    rows = auc_rows(np.vstack([y, y]), np.vstack([s, noisy]))
    assert rows == pytest.approx([roc_auc(y, s), roc_auc(y, noisy)])


def test_a_clearly_better_challenger_is_promoted() -> None:
    y, signal = _holdout()
    weak = signal + np.random.default_rng(5).normal(scale=3.0, size=len(y))
    result = paired_bootstrap(y, champion=weak, challenger=signal, n_boot=500)
    assert result.challenger_auc > result.champion_auc and result.ci_low > 0 and result.promote
    assert result.ci_low <= result.difference <= result.ci_high


def test_an_equal_challenger_is_kept() -> None:
    y, signal = _holdout()
    same = signal + 1e-9 * np.random.default_rng(6).normal(size=len(y))
    result = paired_bootstrap(y, champion=signal, challenger=same, n_boot=500)
    assert not result.promote and result.ci_low <= 0


def test_a_one_class_holdout_is_refused_by_name() -> None:
    with pytest.raises(DataError, match="one class only"):
        paired_bootstrap(np.ones(10), np.arange(10.0), np.arange(10.0))
