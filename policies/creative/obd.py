"""Creative selection checked on the Open Bandit Dataset sample (ZOZOTOWN; ``datasets/open_bandit`` in the repository).

The uniform-random logs (``random/all``: 80 items, 3 positions, true propensity 1/80) are split by time. On the
first half we learn a per-item click-rate model (clicks shrunk toward the overall rate) and the policy "uniform
over the top-k items, with an epsilon of uniform exploration". On the second half we estimate that policy's click
rate by IPS, SNIPS and DR (the reward model is the same per-item rates) with bootstrap CIs, using
:mod:`policies.ope`; beside it: the behaviour (random) policy's on-policy click rate on the same half, the logged
Bernoulli-TS policy's on-policy click rate (``bts/all``), and the OPE estimate of that BTS policy (its per-position
item frequencies) from the random logs, a check that the estimators recover a known value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.csvfile import read_csv_table
from policies.ope import Estimate, bootstrap_ci, evaluate


@dataclass(frozen=True, slots=True)
class ObdLogs:
    """Logged bandit feedback: one row per impression (positions 0-based)."""

    item: np.ndarray
    position: np.ndarray
    click: np.ndarray
    propensity: np.ndarray
    n_items: int

    def __len__(self) -> int:
        return int(self.item.shape[0])

    def take(self, rows: np.ndarray | slice) -> ObdLogs:
        return ObdLogs(self.item[rows], self.position[rows], self.click[rows], self.propensity[rows], self.n_items)


def load_obd(root: Path, behavior: str = "random", campaign: str = "all") -> ObdLogs:
    """Read ``{root}/{behavior}/{campaign}/{campaign}.csv.gz`` (or ``.csv``), in time order."""
    base = Path(root) / behavior / campaign
    path = next((p for p in (base / f"{campaign}.csv.gz", base / f"{campaign}.csv") if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f"no Open Bandit logs at {base} (expected {campaign}.csv.gz; see datasets/open_bandit/SOURCE.md)")
    df = read_csv_table(path, usecols=["timestamp", "item_id", "position", "click", "propensity_score"])
    df = df.sort_values("timestamp", kind="stable")
    items = base / "item_context.csv.gz"
    n_items = int(read_csv_table(items).shape[0]) if items.exists() else int(df.item_id.max() + 1)
    return ObdLogs(
        item=df.item_id.to_numpy(np.int64),
        position=df.position.to_numpy(np.int64) - 1,
        click=df.click.to_numpy(np.float64),
        propensity=df.propensity_score.to_numpy(np.float64),
        n_items=n_items,
    )


def item_ctr(logs: ObdLogs, prior_strength: float = 200.0) -> np.ndarray:
    """Per-item click rate, shrunk toward the overall rate with ``prior_strength`` pseudo-impressions."""
    shown = np.bincount(logs.item, minlength=logs.n_items).astype(np.float64)
    clicks = np.bincount(logs.item, weights=logs.click, minlength=logs.n_items)
    overall = logs.click.mean()
    return (clicks + prior_strength * overall) / (shown + prior_strength)


def top_k_policy(scores: np.ndarray, k: int, epsilon: float) -> np.ndarray:
    """``(n_items,)`` probabilities: uniform over the ``k`` best-scored items, mixed with ``epsilon`` uniform."""
    n = scores.shape[0]
    probs = np.full(n, epsilon / n)
    probs[np.argsort(-scores, kind="stable")[:k]] += (1.0 - epsilon) / k
    return probs


def position_frequencies(logs: ObdLogs) -> np.ndarray:
    """``(3, n_items)`` empirical item distribution per position: the logged policy's marginal choice rates."""
    counts = np.zeros((int(logs.position.max()) + 1, logs.n_items))
    np.add.at(counts, (logs.position, logs.item), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


@dataclass(frozen=True, slots=True)
class Row:
    policy: str
    method: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    note: str = ""


def _on_policy(name: str, clicks: np.ndarray, note: str, n_boot: int, seed: int) -> Row:
    lo, hi = bootstrap_ci(clicks, np.ones_like(clicks), n_boot=n_boot, rng=seed)
    return Row(name, "on-policy", float(clicks.mean()), lo, hi, int(clicks.size), note)


def _rows(policy: str, estimates: dict[str, Estimate], note: str) -> list[Row]:
    return [Row(policy, e.estimator.upper(), e.value, e.ci_low, e.ci_high, e.n,
                f"{note}; ESS {e.effective_sample_size:,.0f}") for e in estimates.values()]


def obd_report(root: Path, k: int = 10, epsilon: float = 0.1, n_boot: int = 1000, seed: int = 0) -> list[Row]:
    """The table of the module docstring (learn on the first half in time, evaluate on the second)."""
    random_logs = load_obd(root, "random")
    bts_logs = load_obd(root, "bts")
    half = len(random_logs) // 2
    train, test = random_logs.take(slice(0, half)), random_logs.take(slice(half, None))

    ctr = item_ctr(train)
    target = top_k_policy(ctr, k, epsilon)
    rows = [_on_policy("random (behaviour)", test.click, "eval half of random/all", n_boot, seed)]
    est = evaluate(
        test.click, test.propensity, target[test.item],
        predicted_logged=ctr[test.item], predicted_target=np.full(len(test), float(target @ ctr)),
        estimators=("ips", "snips", "dr"), n_boot=n_boot, seed=seed,
    )
    rows += _rows(f"learned top-{k} items (eps {epsilon})", est, "learned on 1st half, OPE on 2nd")

    bts_probs = position_frequencies(bts_logs)
    pos = np.minimum(test.position, bts_probs.shape[0] - 1)
    est = evaluate(
        test.click, test.propensity, bts_probs[pos, test.item],
        predicted_logged=ctr[test.item], predicted_target=(bts_probs[pos] * ctr[None, :]).sum(axis=1),
        estimators=("ips", "snips", "dr"), n_boot=n_boot, seed=seed,
    )
    rows += _rows("Bernoulli TS (bts item frequencies)", est, "OPE on random logs")
    rows.append(_on_policy("Bernoulli TS (bts)", bts_logs.click, "bts/all logs, all rows", n_boot, seed))
    return rows
