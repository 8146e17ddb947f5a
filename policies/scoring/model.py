"""A trained scoring model as the scoring agent and the API use it: table or record in, scores out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from policies.scoring.calibration import Calibrator, ScoreScale
from policies.scoring.errors import ScoringError
from policies.scoring.explain import (
    ReasonItem,
    contributions,
    exact_contributions,
    group_starts,
    grouped_contributions,
    split_edges,
    top_indices,
)
from policies.scoring.features import feature_frame, profile_features
from policies.scoring.tabular import (
    RecordEncoder,
    TabularSpec,
    category_text,
    coerce_number,
    coerce_numeric,
    transform_frame,
)


@dataclass(frozen=True, slots=True)
class Score:
    """One customer's score: calibrated probability, 0-100 score, tier and the top reasons."""

    probability: float
    score: float
    tier: str
    reasons: tuple[ReasonItem, ...] = ()


@dataclass
class ScoringModel:
    """XGBoost booster + tabular spec + calibrator + score scale, loaded from one registry entry.

    :param kind: ``lead`` or ``churn``.
    :param version: the registry version it was loaded from.
    """

    kind: str
    version: str
    spec: TabularSpec
    booster: xgb.Booster
    calibrator: Calibrator
    scale: ScoreScale
    _encoder: RecordEncoder = field(init=False, repr=False)
    _row: np.ndarray = field(init=False, repr=False)
    _starts: np.ndarray = field(init=False, repr=False)
    _single: xgb.Booster = field(init=False, repr=False)
    _edges: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._encoder = RecordEncoder(self.spec)
        self._row = np.empty((1, self._encoder.width), dtype=np.float32)
        self._starts = group_starts(self.spec)
        # one row is fastest on one thread: no OpenMP hand-off, and no waiting for a busy core
        self._single = self.booster.copy()
        self._single.set_param({"nthread": 1})
        self._edges = split_edges(self.booster, self._encoder.width)

    # ---- batch ---------------------------------------------------------------------------------------

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return transform_frame(self.spec, frame)

    def raw_probability(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's uncalibrated probability (``inplace_predict``: no DMatrix copy)."""
        return np.asarray(self.booster.inplace_predict(matrix, missing=np.nan, validate_features=False), dtype=np.float64)

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        return self.calibrator.transform(self.raw_probability(matrix))

    def score_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated probability, score and tier for each row of a prepared matrix."""
        p = self.probability(matrix)
        s = self.scale.score(p)
        return p, s, self.scale.tier(s)

    def reasons_matrix(self, matrix: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` inputs per row (indices into ``spec.columns``) and their contributions."""
        single = len(matrix) == 1
        booster = self._single if single else self.booster
        contrib = contributions(booster, matrix, n_threads=1) if single else exact_contributions(booster, matrix, self._edges)
        grouped = grouped_contributions(contrib, self._starts)
        top = top_indices(grouped, k)
        return top, np.take_along_axis(grouped, top, axis=1)

    def score_frame(self, frame: pd.DataFrame, top_k: int = 0) -> pd.DataFrame:
        """Score a table: columns probability, score, tier and, when ``top_k`` > 0, ``reasons``
        (a list of :class:`ReasonItem` per row). Rows keep the table's index."""
        matrix = self.matrix(frame)
        p, s, t = self.score_matrix(matrix)
        out = pd.DataFrame({"probability": p, "score": s, "tier": t}, index=frame.index)
        if top_k > 0:
            top, contrib = self.reasons_matrix(matrix, top_k)
            values = [self._display_values(frame[col.name], col.kind) for col in self.spec.columns]
            names = self.spec.input_names
            out["reasons"] = [
                [ReasonItem(names[j], float(c), values[j][i]) for j, c in zip(top[i], contrib[i], strict=True)] for i in range(len(frame))
            ]
        return out

    @staticmethod
    def _display_values(column: pd.Series, kind: str) -> list[str | float | None]:
        if kind == "numeric":
            numbers = coerce_numeric(column).to_numpy()
            return [None if np.isnan(v) else float(v) for v in numbers]
        return [None if v is pd.NA else str(v) for v in category_text(column).tolist()]

    # ---- online --------------------------------------------------------------------------------------

    def score_one(self, record: Mapping[str, Any], top_k: int = 0) -> Score:
        """Score one customer given as a mapping of column -> value (the online path, no pandas)."""
        row = self._encoder.encode_into(record, self._row[0])
        raw = float(self._single.inplace_predict(self._row, missing=np.nan, validate_features=False)[0])
        p = float(self.calibrator.transform(np.array([raw]))[0])
        s = float(self.scale.score(np.array([p]))[0])
        reasons: tuple[ReasonItem, ...] = ()
        if top_k > 0:
            top, contrib = self.reasons_matrix(row[None, :], top_k)
            reasons = tuple(
                ReasonItem(self.spec.columns[j].name, float(c), self._record_value(record, int(j)))
                for j, c in zip(top[0], contrib[0], strict=True)
            )
        return Score(probability=p, score=s, tier=self.scale.tier_of(s), reasons=reasons)

    # ---- profiles (the feature function of policies.scoring.features) -------------------------------

    def _require_profile_features(self) -> None:
        if self.spec.feature_set is None:
            raise ScoringError(
                f"{self.kind} model {self.version} was trained on a table's own columns, not on profile features; "
                "score it with score_one/score_frame, or retrain with `ame train scoring --features profile`"
            )

    def score_profile(self, profile: Mapping[str, Any] | Any, as_of: datetime, top_k: int = 0) -> Score:
        """Online: one profile (projection record or customer_360 row) -> features -> score."""
        self._require_profile_features()
        return self.score_one(profile_features(profile, as_of), top_k=top_k)

    def score_profiles(self, profiles: Iterable[Mapping[str, Any] | Any] | pd.DataFrame, as_of: datetime, top_k: int = 0) -> pd.DataFrame:
        """Batch: many profiles -> the same feature function -> scores (rows in input order)."""
        self._require_profile_features()
        return self.score_frame(feature_frame(profiles, as_of), top_k=top_k)

    def _record_value(self, record: Mapping[str, Any], j: int) -> str | float | None:
        col = self.spec.columns[j]
        value = record.get(col.name)
        if col.kind == "numeric":
            number = coerce_number(value)
            return None if np.isnan(number) else number
        return None if value is None or (isinstance(value, float) and value != value) else str(value).strip()
