"""CSV and Parquet files: one file of changes per run, ``<path>/<sync>/<run_id>.<csv|parquet>``.

Each row carries ``_ame_key`` and ``_ame_op`` (``upsert``, ``delete``, or ``erase`` for an erased customer, whom a
reader must delete) and the mapped fields. The file is
written to a temporary name and renamed when the run closes, so a reader never sees half a file. Parquet is
written by DuckDB's ``COPY ... (FORMAT PARQUET)`` (no pyarrow needed).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from data.activation.config import FileDestination
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo


class FileSink:
    commit_per_batch = False

    def __init__(self, config: FileDestination) -> None:
        self.config = config
        self.kind = config.type
        self.rows: list[dict[str, Any]] = []
        self.target: Path | None = None

    def open(self, run: RunInfo) -> None:
        folder = Path(self.config.path) / run.sync
        folder.mkdir(parents=True, exist_ok=True)
        self.target = folder / f"{run.run_id}.{self.config.type}"
        self.rows = []

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        for r in records:
            self.rows.append({"_ame_key": r.key, "_ame_op": operation, **r.fields})
        return BatchOutcome()

    def close(self, ok: bool) -> None:
        if not ok or self.target is None or not self.rows:
            return
        tmp = self.target.with_name(self.target.name + ".tmp")
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row if c not in columns]
        if self.config.type == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, restval="")
                writer.writeheader()
                writer.writerows(self.rows)
        else:
            frame = pd.DataFrame.from_records(self.rows, columns=columns)  # noqa: F841 (read by DuckDB below)
            con = duckdb.connect()
            try:
                con.execute(f"COPY (SELECT * FROM frame) TO '{tmp.as_posix()}' (FORMAT PARQUET)")
            finally:
                con.close()
        os.replace(tmp, self.target)
