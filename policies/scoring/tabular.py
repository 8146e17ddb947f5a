"""Tabular preparation for the scoring models: any customer table becomes a float32 matrix.

:func:`infer_spec` looks at a training table once and writes down what each column is (numeric or
categorical with its categories), what was dropped and why, and how the target maps to 0/1. The spec is
saved with the model. :func:`transform_frame` (batch) and :func:`transform_record` (one customer, online)
then apply it; a test asserts that both give the same row. Missing values stay NaN (XGBoost learns a
default direction for them); an unseen category is all zeros in its one-hot group.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from data.csvfile import CsvError, read_csv_table
from policies.scoring.errors import DataError

log = logging.getLogger(__name__)

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n"})
POSITIVE_WORDS = TRUE_WORDS | {"1.0", "positive", "converted", "churned", "won"}
NUMERIC_PARSE_SHARE = 0.95  # an object column is numeric when this share of its values parse as numbers
LEAKAGE_AUC = 0.99  # a column that separates the target this well nearly equals it


class ColumnSpec(BaseModel):
    """One input column as the model sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    kind: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()


class TabularSpec(BaseModel):
    """Everything needed to turn a raw table into the model's matrix, saved beside the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    target: str
    positive_label: str
    id_column: str | None = None
    time_column: str | None = None
    columns: tuple[ColumnSpec, ...]
    dropped: dict[str, str] = Field(default_factory=dict, description="column -> why it was dropped")
    warnings: tuple[str, ...] = ()
    feature_set: str | None = Field(None, description="set when the inputs come from policies.scoring.features")

    @property
    def feature_names(self) -> list[str]:
        """The matrix's column names: a numeric column keeps its name, a category becomes ``col=value``."""
        names: list[str] = []
        for col in self.columns:
            if col.kind == "numeric":
                names.append(col.name)
            else:
                names.extend(f"{col.name}={cat}" for cat in col.categories)
        return names

    @property
    def groups(self) -> np.ndarray:
        """For each matrix column, the index of the input column it came from (one-hot groups share one)."""
        out: list[int] = []
        for i, col in enumerate(self.columns):
            out.extend([i] * (1 if col.kind == "numeric" else len(col.categories)))
        return np.asarray(out, dtype=np.int64)

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.columns]


def read_table(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV (any separator, sniffed unless given; see :func:`data.csvfile.read_csv_table`) or Parquet
    customer table, with an error that says what to check when it fails."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"table file {path} does not exist; pass an existing CSV with --csv")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return read_csv_table(path, sep, low_memory=False)
    except CsvError as error:
        raise DataError(str(error)) from None
    except (ValueError, OSError) as error:
        raise DataError(f"could not read {path} as a Parquet table: {error}") from None


def coerce_numeric(values: pd.Series) -> pd.Series:
    """Numbers as float64: booleans and yes/no words become 1/0, anything unparseable becomes NaN."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").replace([np.inf, -np.inf], np.nan)
    text = values.astype("string").str.strip().str.lower()
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    numbers = numbers.mask(text.isin(TRUE_WORDS) & numbers.isna(), 1.0)
    numbers = numbers.mask(text.isin(FALSE_WORDS) & numbers.isna(), 0.0)
    return numbers.replace([np.inf, -np.inf], np.nan)


def coerce_number(value: Any) -> float:
    """One value as :func:`coerce_numeric` would read it (the online path)."""
    if value is None:
        return float("nan")
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return number if np.isfinite(number) else float("nan")
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        return 1.0 if text in TRUE_WORDS else 0.0 if text in FALSE_WORDS else float("nan")
    return number if np.isfinite(number) else float("nan")


def category_text(values: pd.Series) -> pd.Series:
    """Categories compared as text; missing stays missing."""
    return values.astype("string").str.strip()


def coerce_target(values: pd.Series, name: str, positive: str | None = None) -> tuple[np.ndarray, str]:
    """The target as 0/1 and the label taken as positive. Rows with a missing target must be removed first."""
    text = values.astype("string").str.strip()
    distinct = sorted(set(text.dropna().tolist()))
    if len(distinct) != 2:
        shown = ", ".join(distinct[:8]) + (" ..." if len(distinct) > 8 else "")
        raise DataError(
            f"target {name!r} must have exactly two values for a classifier, found {len(distinct)}: {shown}; "
            "pick a binary outcome column (for example conversion) or recode it to 0/1"
        )
    if positive is None:
        matches = [v for v in distinct if v.lower() in POSITIVE_WORDS]
        if len(matches) != 1:
            raise DataError(
                f"cannot tell which value of target {name!r} is the positive class among {distinct}; pass --positive VALUE"
            )
        positive = matches[0]
    elif positive not in distinct:
        raise DataError(f"--positive {positive!r} is not a value of target {name!r}; its values are {distinct}")
    return (text == positive).to_numpy(dtype=np.int8, na_value=0), positive


def separation_auc(column: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of a single numeric column against the target, NaN sorted as the lowest value."""
    column = np.where(np.isnan(column), -np.inf, column)
    ranks = pd.Series(column).rank(method="average").to_numpy()
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def leakage_warnings(frame: pd.DataFrame, spec_columns: Sequence[ColumnSpec], y: np.ndarray) -> list[str]:
    """Warnings for columns that (nearly) equal the target: AUC of the column alone >= 0.99 (or <= 0.01)."""
    out: list[str] = []
    for col in spec_columns:
        if col.kind == "numeric":
            values = coerce_numeric(frame[col.name]).to_numpy()
        else:  # the category's own target rate, a one-column model
            text = category_text(frame[col.name]).fillna("<missing>")
            values = text.map(pd.Series(y, index=text.index).groupby(text).mean()).to_numpy(dtype=np.float64)
        auc = separation_auc(values, y)
        strength = max(auc, 1.0 - auc)
        if strength >= LEAKAGE_AUC:
            out.append(
                f"column {col.name!r} nearly equals the target (AUC {strength:.3f} on its own); "
                f"if it is recorded at or after the outcome, drop it with --drop {col.name}"
            )
    return out


def _rows_with_target(frame: pd.DataFrame, target: str, named: list[str]) -> pd.DataFrame:
    """The rows whose target is known, after checking that the table has rows and every named column."""
    if frame.empty:
        raise DataError("the table has no rows; check the file or the --table name")
    missing = [c for c in named if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {missing} not in the table; its columns are {list(frame.columns)}")
    kept_rows = frame[target].notna()
    if not kept_rows.all():
        log.warning("dropping %d rows whose target %r is missing", int((~kept_rows).sum()), target)
        frame = frame[kept_rows]
    return frame


def column_spec(name: str, values: pd.Series, max_categories: int = 50) -> ColumnSpec | str:
    """How one input column enters the model: numeric, or categorical with its kept categories; or, as a
    string, the reason it is dropped (empty, a date, constant, an identifier)."""
    if values.isna().all():
        return "all values missing"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "a date column other than --time; derive a number (days since) from it first"
    numbers = coerce_numeric(values)
    share = numbers.notna().sum() / max(values.notna().sum(), 1)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or share >= NUMERIC_PARSE_SHARE:
        if numbers.nunique(dropna=True) <= 1:
            return "constant"
        if share < 1.0:
            unread = int(values.notna().sum() - numbers.notna().sum())
            log.warning("column %r: %d values are not numbers and are read as missing", name, unread)
        return ColumnSpec(name=name, kind="numeric")
    counts = category_text(values).value_counts(dropna=True)
    if len(counts) <= 1:
        return "constant"
    if len(counts) > max(max_categories, 0.5 * len(values)) or (len(counts) == values.notna().sum() and len(values) > 20):
        return f"looks like an identifier ({len(counts)} distinct texts); pass it as --id if it is one"
    if len(counts) > max_categories:
        log.warning("column %r: keeping the %d most frequent of %d categories", name, max_categories, len(counts))
    return ColumnSpec(name=name, kind="categorical", categories=tuple(counts.index[:max_categories].astype(str)))


def infer_spec(
    frame: pd.DataFrame,
    target: str,
    *,
    id_column: str | None = None,
    time_column: str | None = None,
    drop: Iterable[str] = (),
    positive: str | None = None,
    max_categories: int = 50,
) -> TabularSpec:
    """Decide, once, how each column of a training table enters the model.

    :param frame: the training table, one row per customer.
    :param target: the binary outcome column.
    :param id_column: a customer id column, kept out of the features.
    :param time_column: the column that orders rows in time (split key), kept out of the features.
    :param drop: columns to drop (the leakage guard's explicit list: outcomes recorded after the target).
    :param positive: the target value that counts as 1 when it is not obvious.
    :param max_categories: the most frequent categories kept per column; rarer ones read as unseen.
    """
    drop = list(drop)
    named = [c for c in [target, id_column, time_column, *drop] if c is not None]
    frame = _rows_with_target(frame, target, named)
    y, positive_label = coerce_target(frame[target], target, positive)
    if y.sum() < 2 or (len(y) - y.sum()) < 2:
        raise DataError(f"target {target!r} needs at least two rows of each class, found {int(y.sum())} positive of {len(y)}")

    dropped: dict[str, str] = dict.fromkeys(drop, "listed in --drop")
    columns: list[ColumnSpec] = []
    for name in frame.columns:
        if name in named:
            continue
        decided = column_spec(str(name), frame[name], max_categories)
        if isinstance(decided, ColumnSpec):
            columns.append(decided)
        else:
            dropped[name] = decided
    if not columns:
        raise DataError(f"no usable feature columns remain after dropping {dropped}; the table needs at least one feature")
    warnings = leakage_warnings(frame, columns, y)
    for message in warnings:
        log.warning(message)
    for name, why in dropped.items():
        if why != "listed in --drop":
            log.info("dropped column %r: %s", name, why)
    return TabularSpec(
        target=target,
        positive_label=positive_label,
        id_column=id_column,
        time_column=time_column,
        columns=tuple(columns),
        dropped=dropped,
        warnings=tuple(warnings),
    )


def target_vector(spec: TabularSpec, frame: pd.DataFrame) -> np.ndarray:
    """The target of a table as 0/1 under the spec's positive label."""
    if spec.target not in frame.columns:
        raise DataError(f"target column {spec.target!r} is not in the table; its columns are {list(frame.columns)}")
    return (category_text(frame[spec.target]) == spec.positive_label).to_numpy(dtype=np.int8, na_value=0)


def transform_frame(spec: TabularSpec, frame: pd.DataFrame) -> np.ndarray:
    """The batch path: a table becomes the model's float32 matrix (rows in the table's order)."""
    missing = [c.name for c in spec.columns if c.name not in frame.columns]
    if missing:
        raise DataError(
            f"the model was trained with column(s) {missing}, which the input lacks; "
            f"send them (empty values are fine, they read as missing). Input columns: {list(frame.columns)}"
        )
    n = len(frame)
    out = np.zeros((n, len(spec.feature_names)), dtype=np.float32)
    j = 0
    for col in spec.columns:
        if col.kind == "numeric":
            out[:, j] = coerce_numeric(frame[col.name]).to_numpy(dtype=np.float64)
            j += 1
            continue
        codes = pd.Categorical(category_text(frame[col.name]), categories=list(col.categories)).codes
        rows = np.nonzero(codes >= 0)[0]
        out[rows, j + codes[rows]] = 1.0
        j += len(col.categories)
    return out


class RecordEncoder:
    """The online path: one record (a mapping) becomes one row, written into a preallocated buffer.

    It applies the same rules as :func:`transform_frame`, in plain Python, so one score takes microseconds.
    """

    def __init__(self, spec: TabularSpec) -> None:
        self.spec = spec
        self.width = len(spec.feature_names)
        self._plan: list[tuple[str, int, dict[str, int] | None]] = []
        j = 0
        for col in spec.columns:
            if col.kind == "numeric":
                self._plan.append((col.name, j, None))
                j += 1
            else:
                self._plan.append((col.name, j, {cat: k for k, cat in enumerate(col.categories)}))
                j += len(col.categories)

    def encode_into(self, record: Mapping[str, Any], row: np.ndarray) -> np.ndarray:
        """Fill ``row`` (float32, length ``width``) from ``record`` and return it."""
        row.fill(0.0)
        for name, j, lookup in self._plan:
            value = record.get(name)
            if lookup is None:
                row[j] = coerce_number(value)
            elif value is not None and not (isinstance(value, float) and value != value):
                k = lookup.get(str(value).strip())
                if k is not None:
                    row[j + k] = 1.0
        return row

    def encode(self, record: Mapping[str, Any]) -> np.ndarray:
        return self.encode_into(record, np.empty(self.width, dtype=np.float32))


def transform_record(spec: TabularSpec, record: Mapping[str, Any]) -> np.ndarray:
    """One record as one float32 row (build a :class:`RecordEncoder` once when scoring many)."""
    return RecordEncoder(spec).encode(record)
