"""Train a lead or churn score on any customer table, top to bottom in one place.

prepare (spec) -> split (by time, else stratified) -> XGBoost with early stopping -> calibrate on the
held-out calibration split -> score scale and tiers -> evaluate on the test split -> save to the registry.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from data.privacy.training import exclude_erased
from policies.scoring.calibration import fit_calibrator, fit_score_scale
from policies.scoring.drift import reference_profile
from policies.scoring.errors import DataError
from policies.scoring.explain import global_importance
from policies.scoring.fairness import AuditArgs, SensitiveColumn, fairness_audit, parse_sensitive, resolve_sensitive
from policies.scoring.fairness_bounds import FairnessBound, check_bounds, parse_bound
from policies.scoring.features import FEATURE_SET, feature_frame
from policies.scoring.metrics import evaluate, roc_auc
from policies.scoring.model import ScoringModel
from policies.scoring.registry import ModelRegistry, frame_hash
from policies.scoring.report import model_card, report_plot_writer
from policies.scoring.tabular import infer_spec, target_vector, transform_frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainArgs:
    """Everything a training run needs; the CLI fills it from its options."""

    target: str
    kind: str = "lead"
    id_column: str | None = None
    time_column: str | None = None
    drop: tuple[str, ...] = ()
    positive: str | None = None
    seed: int = 7
    test_share: float = 0.2
    calibration_share: float = 0.2
    early_stopping_share: float = 0.15  # of the training split, for choosing the number of trees
    calibration: str = "auto"  # auto | isotonic | platt
    max_depth: int = 4
    learning_rate: float = 0.05
    n_estimators: int = 600
    early_stopping_rounds: int = 40
    min_child_weight: float = 1.0  # hessian units: with rare positives, larger values forbid pure leaves
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    high_tier: float = 80.0
    medium_tier: float = 50.0
    max_categories: int = 50
    n_threads: int = 0
    importance_rows: int = 5_000
    source: str = "dataframe"
    feature_set: str | None = None  # "profile": derive the inputs with policies.scoring.features first
    as_of: str | None = None  # with feature_set: the moment recency is measured at (ISO 8601)
    sensitive: tuple[str, ...] = ()  # COL or COL=E1,E2,...: audited per group, kept out of the features
    sensitive_as_feature: bool = False  # the sensitive columns are features too
    fairness_bounds: tuple[str, ...] = ()  # METRIC_diff=V or METRIC_ratio=V: a model over a bound is not registered


@dataclass
class TrainResult:
    """The trained model and its figures (``path`` is set once saved)."""

    model: ScoringModel
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    drift_reference: dict[str, Any]
    path: Path | None = None
    test_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class Split:
    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    method: str


def split_rows(y: np.ndarray, times: pd.Series | None, args: TrainArgs, rng: np.random.Generator) -> Split:
    """By time when a time column is given (oldest rows train, newest test), stratified on the target otherwise."""
    n = len(y)
    n_test, n_cal = round(n * args.test_share), round(n * args.calibration_share)
    if times is not None:
        parsed = pd.to_datetime(times, errors="coerce", utc=True)
        if parsed.isna().mean() > 0.01:
            numbers = pd.to_numeric(times, errors="coerce")
            if numbers.isna().mean() > 0.01:
                unreadable = int(parsed.isna().sum())
                raise DataError(f"time column {times.name!r} is neither dates nor numbers for {unreadable} rows; fix it or omit --time")
            order = np.argsort(numbers.to_numpy(), kind="stable")
        else:
            order = np.argsort(parsed.to_numpy(dtype="datetime64[ns]"), kind="stable")
        n_train = n - n_test - n_cal
        return Split(order[:n_train], order[n_train : n_train + n_cal], order[n_train + n_cal :], "time")
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in (0, 1):
        idx = rng.permutation(np.nonzero(y == cls)[0])
        k_test, k_cal = round(len(idx) * args.test_share), round(len(idx) * args.calibration_share)
        parts[2].append(idx[:k_test])
        parts[1].append(idx[k_test : k_test + k_cal])
        parts[0].append(idx[k_test + k_cal :])
    train, cal, test = (np.sort(np.concatenate(p)) for p in parts)
    return Split(train, cal, test, "stratified")


def fit_booster(x: np.ndarray, y: np.ndarray, args: TrainArgs, rng: np.random.Generator) -> xgb.Booster:
    """XGBoost (hist), the number of trees chosen by early stopping on a slice of the training split."""
    idx = rng.permutation(len(y))
    n_stop = max(int(len(y) * args.early_stopping_share), 1)
    stop, fit = idx[:n_stop], idx[n_stop:]
    n_pos = float(y[fit].sum())
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.learning_rate,
        "min_child_weight": args.min_child_weight,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "base_score": min(max(n_pos / max(len(fit), 1), 1e-4), 1 - 1e-4),
        "nthread": args.n_threads,
        "seed": args.seed,
    }
    dfit = xgb.DMatrix(x[fit], label=y[fit], missing=np.nan, nthread=args.n_threads)
    dstop = xgb.DMatrix(x[stop], label=y[stop], missing=np.nan, nthread=args.n_threads)
    booster = xgb.train(
        params, dfit, num_boost_round=args.n_estimators, evals=[(dstop, "early_stopping")],
        early_stopping_rounds=args.early_stopping_rounds, verbose_eval=False,
    )
    best = booster.best_iteration + 1
    log.info("trees: %d (early stopping on %d rows)", best, n_stop)
    return booster[:best]


def profile_training_table(frame: pd.DataFrame, args: TrainArgs) -> pd.DataFrame:
    """Profile rows (projection or customer_360) -> the feature columns of :mod:`features`, plus the
    target, id and time columns carried over unchanged."""
    if args.as_of is None:
        raise DataError("training on profile features needs --as-of: the moment recency is measured at (the label cut-off)")
    try:
        as_of = datetime.fromisoformat(args.as_of.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"--as-of {args.as_of!r} is not an ISO 8601 time") from None
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    if args.target not in frame.columns:
        raise DataError(f"target column {args.target!r} is not in the table; its columns are {list(frame.columns)}")
    features = feature_frame(frame, as_of)
    for column in dict.fromkeys(c for c in (args.target, args.id_column, args.time_column, *sensitive_names(args)) if c):
        features[column] = frame[column].to_numpy()
    return features


def sensitive_names(args: TrainArgs) -> list[str]:
    return [parse_sensitive(text).name for text in args.sensitive]


def fairness_setup(args: TrainArgs, frame: pd.DataFrame) -> tuple[list[SensitiveColumn], tuple[FairnessBound, ...]]:
    """The declared sensitive columns and bounds, checked against the table before any training."""
    columns = [parse_sensitive(text) for text in args.sensitive]
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise DataError(f"sensitive column(s) {missing} not in the table; its columns are {list(frame.columns)}")
    bounds = tuple(parse_bound(text) for text in args.fairness_bounds)
    if bounds and not columns:
        raise DataError("--fairness-bound needs the sensitive columns it applies to: add --sensitive COL")
    if args.target in [c.name for c in columns]:
        raise DataError(f"the target {args.target!r} cannot be a sensitive column; name the attribute you audit by")
    if args.sensitive_as_feature and args.feature_set is not None:
        raise DataError("--sensitive-as-feature works with a table's own columns, not with --features profile")
    return columns, bounds


def audit_split(frame: pd.DataFrame, test: np.ndarray, columns: list[SensitiveColumn], y: np.ndarray, p: np.ndarray,
                s: np.ndarray, model: ScoringModel, args: TrainArgs) -> tuple[dict[str, Any] | None, list[SensitiveColumn]]:
    """The fairness audit of the test rows (None without sensitive columns), and the columns as grouped:
    bins are fixed on the whole training table."""
    if not columns:
        return None, []
    resolved = [resolve_sensitive(c, frame) for c in columns]
    audit = fairness_audit(frame.iloc[test], resolved, y, p, s, AuditArgs(threshold=model.scale.high, seed=args.seed))
    return audit, resolved


def train_scoring(frame: pd.DataFrame, args: TrainArgs) -> TrainResult:
    """Fit, calibrate and evaluate a scoring model on ``frame`` (nothing is written)."""
    started = time.perf_counter()
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    sensitive, _ = fairness_setup(args, frame)
    if args.feature_set == "profile":
        frame = profile_training_table(frame, args)
    elif args.feature_set is not None:
        raise DataError(f"unknown feature set {args.feature_set!r}; use profile, or none for the table's own columns")
    audit_only = [] if args.sensitive_as_feature else [c.name for c in sensitive if c.name not in args.drop]
    spec = infer_spec(
        frame, args.target, id_column=args.id_column, time_column=args.time_column, drop=(*args.drop, *audit_only),
        positive=args.positive, max_categories=args.max_categories,
    )
    if audit_only:
        spec = spec.model_copy(update={"dropped": {**spec.dropped, **dict.fromkeys(audit_only, "sensitive: audited, not a feature")}})
    if args.feature_set == "profile":
        spec = spec.model_copy(update={"feature_set": FEATURE_SET})
    frame = frame[frame[args.target].notna()].reset_index(drop=True)
    y = target_vector(spec, frame)
    x = transform_frame(spec, frame)
    split = split_rows(y, frame[args.time_column] if args.time_column else None, args, rng)
    for name, rows in (("train", split.train), ("calibration", split.calibration), ("test", split.test)):
        if y[rows].sum() == 0:
            raise DataError(f"the {name} split has no positive rows ({int(y.sum())} positives in all); add rows or lower --test-share")

    booster = fit_booster(x[split.train], y[split.train], args, rng)
    raw_cal = booster.inplace_predict(x[split.calibration], missing=np.nan, validate_features=False)
    calibrator = fit_calibrator(raw_cal, y[split.calibration], args.calibration)
    scale = fit_score_scale(calibrator.transform(raw_cal), args.high_tier, args.medium_tier)
    model = ScoringModel(kind=args.kind, version="unsaved", spec=spec, booster=booster, calibrator=calibrator, scale=scale)

    x_test, y_test = x[split.test], y[split.test]
    raw_test = model.raw_probability(x_test)
    p_test, s_test, t_test = model.score_matrix(x_test)
    sample = rng.choice(len(x_test), size=min(args.importance_rows, len(x_test)), replace=False)
    importance = global_importance(booster, spec, x_test[sample])
    metrics = {
        "test": evaluate(y_test, p_test),
        "test_raw_roc_auc": roc_auc(y_test, raw_test),
        "train_roc_auc": roc_auc(y[split.train], model.raw_probability(x[split.train])),
        "calibration_method": calibrator.method,
        "tiers": {t: int((t_test == t).sum()) for t in ("High", "Medium", "Low")},
        "tier_rates": {t: float(y_test[t_test == t].mean()) if (t_test == t).any() else None for t in ("High", "Medium", "Low")},
        "importance": importance,
        "trees": int(booster.num_boosted_rounds()),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    audit, resolved = audit_split(frame, split.test, sensitive, y_test, p_test, s_test, model, args)
    if audit is not None:
        metrics["fairness"] = audit
    top_features = [str(r["feature"]) for r in importance[:5]]
    reference = reference_profile(spec, frame.iloc[split.test], s_test, top_features)
    metadata = {
        "headline": f"AUC {metrics['test']['roc_auc']:.3f}, top-decile lift {metrics['test']['lift_top_decile']:.2f}",
        "data": {"source": args.source, "rows": len(frame), "columns": [str(c) for c in frame.columns]},
        "target": {"column": spec.target, "positive_label": spec.positive_label, "positive_rate": float(y.mean())},
        "split": {"method": split.method, "train": len(split.train), "calibration": len(split.calibration), "test": len(split.test)},
        "features": {"inputs": spec.input_names, "matrix_width": len(spec.feature_names), "dropped": spec.dropped},
        "leakage_warnings": list(spec.warnings),
        "sensitive": [c.model_dump(mode="json") for c in resolved],
        "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(args).items()},
    }
    return TrainResult(model, metrics, metadata, reference, test_rows=split.test)


def save_scoring(result: TrainResult, registry: ModelRegistry, version: str, data_hash: str, card: str, plot: Any = None) -> Path:
    """Write the trained model to the registry entry ``version`` and return its folder."""
    model = result.model
    files: dict[str, Any] = {
        "model.ubj": bytes(model.booster.save_raw(raw_format="ubj")),
        "preprocessing.json": model.spec.model_dump_json(indent=2),
        "calibrator.json": model.calibrator.model_dump_json(),
        "score_scale.json": model.scale.model_dump_json(),
        "metrics.json": json.dumps(result.metrics, indent=2),
        "drift_reference.json": json.dumps(result.drift_reference, indent=2),
        "model_card.md": card,
    }
    if plot is not None:
        files["report.png"] = plot
    path = registry.save(model.kind, version, data_hash, files, result.metadata)
    result.path = path
    model.version = path.name
    return path


def main(frame: pd.DataFrame, args: TrainArgs, registry: ModelRegistry | None = None) -> TrainResult:
    """Train on ``frame``, then save the entry (model, card, report plot) in the registry."""
    registry = registry or ModelRegistry()
    frame, privacy = exclude_erased(frame, args.id_column)
    if privacy["erased_excluded"]:
        log.info("left out %d erased customers (%d rows)", privacy["erased_excluded"], privacy["rows_excluded"])
    elif privacy["customers"] is None:
        log.warning("%s", privacy["note"])
    data_hash = frame_hash(frame)
    _, bounds = fairness_setup(args, frame)
    result = train_scoring(frame, args)
    if bounds:
        check_bounds(result.metrics["fairness"], bounds, f"the {args.kind} model")
    result.metadata["data"]["privacy"] = privacy
    version = registry.new_version(args.kind, data_hash)
    result.model.version = version
    card = model_card(result, version, data_hash)
    save_scoring(result, registry, version, data_hash, card, report_plot_writer(result.metrics, title=f"{args.kind} {version}"))
    return result
