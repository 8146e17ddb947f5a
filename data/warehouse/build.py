"""Building the models with SQLMesh: plan (apply model changes), then run the missing daily intervals.

A build covers every day up to the last day that has events (``execution_time`` is the day after it), so
simulated data in the past or the future builds the same. Days that received late events since the last
build are restated, so an incremental model never keeps a stale partition.
"""

from __future__ import annotations

import logging
import os
import typing as t
from datetime import date, datetime, timedelta

from data.settings import get_settings
from data.warehouse.base import BuildFailed, BuildReport, ModelRun, WarehouseUnavailable
from data.warehouse.project import (
    PROJECT_DIR,
    parse_warehouse_url,
    sqlmesh_config,
)

log = logging.getLogger(__name__)

# The models that read raw_events for the days of their interval: a day that received late events is restated
# in these (and so in every model downstream of them).
RAW_READERS = ("staging_events_all", "staging_events_payload", "staging_customers_profiles")

os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")


def _recording_console():  # -> Console
    from sqlmesh.core.console import NoopConsole  # lazy: SQLMesh is heavy

    class RecordingConsole(NoopConsole):
        """Keeps what each model evaluation did (intervals, audits) and the errors, prints nothing."""

        def __init__(self) -> None:
            self.runs: dict[str, ModelRun] = {}
            self.errors: list[str] = []
            self.audits_failed = 0

        def update_snapshot_evaluation_progress(self, snapshot, interval, batch_idx, duration_ms,
                                                num_audits_passed, num_audits_failed, audit_only=False,
                                                execution_stats=None, auto_restatement_triggers=None) -> None:
            name = snapshot.name.split(".")[-1].strip('"')
            if not snapshot.is_model:
                self.audits_failed += num_audits_failed
                return
            run = self.runs.setdefault(name, ModelRun(model=name, kind=str(snapshot.model_kind_name)))
            start, end = interval
            run.intervals.append((_ms_to_day(start), _ms_to_day(end - 1)))
            run.audits_passed += num_audits_passed
            run.audits_failed += num_audits_failed
            run.seconds += (duration_ms or 0) / 1000

        def log_error(self, message: str, *args: t.Any, **kwargs: t.Any) -> None:
            self.errors.append(message)

        def log_warning(self, short_message: str, long_message: str | None = None, *args: t.Any, **kwargs: t.Any) -> None:
            message = long_message or short_message
            if "does not support partial restatement" in message:
                # expected: a restated day rebuilds the per-id merge models from their first day
                log.info("%s", message)
                return
            self.errors.append(message)

        def log_failed_models(self, errors: t.Any) -> None:
            for error in errors:
                self.errors.append(str(getattr(error, "__cause__", None) or error))

    return RecordingConsole()


def _ms_to_day(ms: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(milliseconds=int(ms))).date().isoformat()


class WarehouseProject:
    """A SQLMesh context over the project for one warehouse URL.

    :param url: the warehouse URL.
    :param start: the first day incremental models cover (default: ``AME_WAREHOUSE_START``).
    """

    def __init__(self, url: str, start: str | None = None) -> None:
        from sqlmesh import Context  # lazy: SQLMesh is heavy
        from sqlmesh.core.console import set_console  # lazy: SQLMesh is heavy


        settings = get_settings()

        self.url = url
        self.target = parse_warehouse_url(url)
        self.console = _recording_console()
        set_console(self.console)
        config = sqlmesh_config(url, start=start or settings.warehouse_start,
                                bigquery_location=settings.warehouse_bigquery_location or None,
                                dictionary_compression=settings.warehouse_dictionary_compression)
        try:
            self.context = Context(paths=str(PROJECT_DIR), config=config)
        except Exception as error:  # noqa: BLE001 - a locked file, bad credentials, a model that does not parse
            raise WarehouseUnavailable(
                f"cannot open the SQLMesh project on {url}: {error}. If the DuckDB file is in use, wait for the "
                "other process (one writer at a time); for BigQuery, check the credentials and the project."
            ) from None
        self.dataset = self.target.dataset

    # -- what to build ------------------------------------------------------------------------------
    def _fetch_one(self, sql: str) -> t.Any:
        return self.context.engine_adapter.fetchone(sql)

    def data_end(self) -> date | None:
        """The last day that has events in raw_events (None when it is empty or missing)."""
        try:
            row = self._fetch_one(f"SELECT CAST(MAX(occurred_at) AS DATE) FROM {self.dataset}.raw_events")
        except Exception as error:  # noqa: BLE001 - a missing table means there is nothing to build
            message = str(error)
            if "does not exist" in message or "Not found" in message:
                return None
            raise WarehouseUnavailable(f"cannot read {self.dataset}.raw_events in {self.url}: {message}") from None
        return row[0] if row and row[0] is not None else None

    def _last_build(self) -> date | None:
        """The last day built, from ``warehouse_build_state`` (None before the first build)."""
        adapter = self.context.engine_adapter
        adapter.execute(f"CREATE SCHEMA IF NOT EXISTS {self.dataset}")
        adapter.execute(
            f"CREATE TABLE IF NOT EXISTS {self.dataset}.warehouse_build_state (built_through DATE,"
            " last_loaded_at TIMESTAMP, built_at TIMESTAMP)"
        )
        row = self._fetch_one(
            f"SELECT built_through FROM {self.dataset}.warehouse_build_state ORDER BY built_at DESC LIMIT 1"
        )
        return row[0] if row else None

    def _late_days(self, built_through: date) -> date | None:
        """The earliest already-built day that received events in a load after the last build."""
        row = self._fetch_one(
            f"SELECT CAST(MIN(l.min_occurred_at) AS DATE) FROM {self.dataset}.raw_loads AS l WHERE l.loaded_at >"
            f" (SELECT COALESCE(MAX(last_loaded_at), TIMESTAMP '1970-01-01') FROM {self.dataset}.warehouse_build_state)"
        )
        first = row[0] if row else None
        return first if first is not None and first <= built_through else None

    # -- building -----------------------------------------------------------------------------------
    def build(self, through: date | None = None) -> BuildReport:
        """Apply model changes and compute every missing day up to ``through`` (default: the last day with data).

        :raises BuildFailed: a model failed or a blocking audit found bad data; the message names them.
        """
        self.console.runs.clear()
        self.console.errors.clear()
        through = through or self.data_end()
        if through is None:
            raise BuildFailed(
                f"{self.dataset}.raw_events is empty or missing in {self.url}: run `ame warehouse load` first."
            )
        execution_time = datetime.combine(through + timedelta(days=1), datetime.min.time())
        report = BuildReport(execution_time=execution_time.isoformat())
        built_through = self._last_build()
        try:
            # plan applies model changes and backfills them; run then computes every missing interval. A plan
            # costs about half a second even when nothing changed, so it is skipped when prod already holds
            # every local model's version.
            if self._models_changed():
                self.context.plan(auto_apply=True, no_prompts=True, execution_time=execution_time, skip_tests=True,
                                  no_diff=True)
            if built_through is not None:
                late = self._late_days(built_through)
                if late is not None:
                    report.restated = self._restate(late, built_through, execution_time)
            self.context.run(execution_time=execution_time, skip_janitor=True)
        except Exception as error:  # noqa: BLE001 - re-raised as ours with the audit or model named
            raise BuildFailed(self._failure_message(error)) from None
        if self.console.errors:
            raise BuildFailed(self._failure_message(None))
        self.context.engine_adapter.execute(
            f"INSERT INTO {self.dataset}.warehouse_build_state SELECT DATE '{through.isoformat()}',"
            f" (SELECT MAX(loaded_at) FROM {self.dataset}.raw_loads), now()"
        )
        report.models = dict(self.console.runs)
        self._count_rows(report)
        return report

    def _models_changed(self) -> bool:
        """True unless the prod environment holds exactly the local snapshots (same names and fingerprints)."""
        environment = self.context.state_reader.get_environment("prod")
        if environment is None:
            return True
        deployed = {s.name: s.fingerprint for s in environment.snapshots}
        local = {s.name: s.fingerprint for s in self.context.snapshots.values()}
        return deployed != local

    def _restate(self, first: date, last: date, execution_time: datetime) -> list[str]:
        # the models that read raw_events by day (their downstream models are restated with them)
        models = [f"{self.dataset}.{name}" for name in RAW_READERS]
        log.info("restating %s..%s: late events arrived for days already built", first, last)
        self.context.plan(
            restate_models=models, start=first.isoformat(), end=last.isoformat(), auto_apply=True, no_prompts=True,
            execution_time=execution_time, skip_tests=True, no_diff=True,
        )
        return [f"{m} {first}..{last}" for m in models]

    def _count_rows(self, report: BuildReport) -> None:
        """Rows each model holds in the intervals it just computed (for incremental models: what it processed)."""
        time_columns = {"staging_events_all": "event_date", "intermediate_web_sessions": "session_date",
                        "marts_marketing_campaign_performance": "event_date",
                        "staging_events_payload": "event_date"}
        for name, run in report.models.items():
            column = time_columns.get(name)
            where = " OR ".join(f"{column} BETWEEN DATE '{a}' AND DATE '{b}'" for a, b in run.intervals) if column else ""
            sql = f"SELECT COUNT(*) FROM {self.dataset}.{name}" + (f" WHERE {where}" if where else "")
            row = self._fetch_one(sql)
            run.rows = int(row[0]) if row else 0

    def _failure_message(self, error: BaseException | None) -> str:
        details = "\n".join(dict.fromkeys(self.console.errors)) or (str(error) if error else "unknown error")
        if "audit" in details.lower():
            hint = ("An audit failed: the data broke a rule (a duplicate key, a null key, an unknown value). Find "
                    "the rows with `ame warehouse query`, fix the input, then build again.")
        elif "lock" in details.lower():
            hint = "Another process holds the DuckDB file (one writer at a time): wait for it, then build again."
        else:
            hint = "Fix the cause above, then build again; `ame -v warehouse build` logs more."
        return f"the warehouse build failed ({self.url}):\n{details}\n{hint}"

    # -- checks and docs ----------------------------------------------------------------------------
    def test(self) -> t.Any:
        """Run the SQLMesh unit tests (``sqlmesh/tests/*.yaml``); returns unittest's result."""
        return self.context.test()

    def close(self) -> None:
        self.context.close()
