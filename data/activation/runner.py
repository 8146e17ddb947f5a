"""Run a sync: read the model, diff against the state, send the changes in batches, record what stuck.

A row counts as synced only when its destination accepted it: a partially failed batch commits its other
rows, and the failed ones keep their old state, so the next run sends them again. Running twice in a row
sends nothing the second time.

With a gate (:mod:`data.activation.gate`), an erased customer is never sent and is deleted (``erase``) wherever
the destination holds them; a customer without the consent the destination needs is not sent and is taken out of
the audience (``delete``) where it holds them. Both leave the state once the destination accepted them, so each
is sent once.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from croniter import croniter

from data.activation.config import SyncConfig
from data.activation.destinations import BatchOutcome, Destination, Record, RunInfo, build_destination
from data.activation.diff import Admission, admit, batches, map_row, plan_sync
from data.activation.errors import ActivationError, DestinationError
from data.activation.gate import AudienceGate, blocked
from data.activation.state import SyncState
from data.activation.transport import Clock, HttpTransport
from data.warehouse import open_warehouse
from data.warehouse.base import WarehouseError

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 1_000


class RowSource(Protocol):
    """Where a sync's rows come from (the warehouse; a list in tests)."""

    def rows(self, sync: SyncConfig) -> Iterable[dict[str, Any]]: ...


def model_columns(sync: SyncConfig) -> list[str]:
    """The identity key and every mapped column, once each."""
    return list(dict.fromkeys([sync.identity_key, *sync.mapping.values()]))


def model_query(sync: SyncConfig, dataset: str) -> str:
    """The SQL that reads a sync's audience from the warehouse."""
    cols = ", ".join(model_columns(sync))
    where = f" WHERE {sync.filter}" if sync.filter else ""
    return f"SELECT {cols} FROM {dataset}.{sync.model}{where}"


class WarehouseSource:
    """Reads a sync's model from the warehouse (DuckDB or BigQuery), only the columns the sync maps.

    :param url: warehouse URL (default ``AME_WAREHOUSE``).
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url

    def rows(self, sync: SyncConfig) -> Iterable[dict[str, Any]]:
        store = open_warehouse(self.url)
        try:
            result = store.query(model_query(sync, store.dataset))
        except WarehouseError:
            raise
        except Exception as error:  # noqa: BLE001 (engine errors differ by backend; name the sync and the fix)
            raise ActivationError(
                f"sync {sync.name!r}: cannot read {sync.model} ({', '.join(model_columns(sync))}): {error}. "
                "Check the model and mapped column names (`ame warehouse docs`), and build the warehouse first"
                " (`ame warehouse build`)."
            ) from None
        finally:
            store.close()
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


@dataclass
class SyncReport:
    """What one run did; ``to_json()`` is the JSON report."""

    sync: str
    run_id: str
    destination: str
    mode: str
    status: str = "running"
    model_rows: int = 0
    unchanged: int = 0
    withheld: int = 0
    upserts_sent: int = 0
    deletes_sent: int = 0
    erasures_sent: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    fatal: str | None = None
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    started_at: str = ""
    seconds: float = 0.0

    def add_error(self, key: str, operation: str, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"key": key, "operation": operation, "error": message})

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def new_run_id(now: float | None = None) -> str:
    """A run id that sorts by time (microseconds, UTC), so report and file names list in run order."""
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def _send_batch(dest: Destination, operation: str, batch: Sequence[Record],
                report: SyncReport) -> tuple[BatchOutcome | None, str | None]:
    """Send one batch. A refused batch's rows become errors and the outcome is None; for a 401/403 the second
    value says why the rest of the run is not attempted."""
    try:
        return dest.send(operation, batch), None  # type: ignore[arg-type]
    except DestinationError as error:
        for r in batch:
            report.add_error(r.key, operation, str(error))
        return None, f"the destination refused the credentials ({error})" if error.status in (401, 403) else None


def _send_all(sync: SyncConfig, dest: Destination, plan_items: Sequence[tuple[str, Sequence[Record]]],
              state: SyncState, report: SyncReport, hashes: dict[str, str]) -> tuple[list, list]:
    """Send every batch; commit per batch or return what waits for close(). Returns pending (upserts, deletes)."""
    size = sync.effective_batch_size()
    pending_up: list[tuple[str, str, dict[str, Any]]] = []
    pending_del: list[str] = []
    aborted: str | None = None
    for operation, records in plan_items:
        for batch in batches(records, size):
            if operation == "upsert":
                report.upserts_sent += len(batch)
            elif operation == "delete":
                report.deletes_sent += len(batch)
            else:
                report.erasures_sent += len(batch)
            if aborted:
                for r in batch:
                    report.add_error(r.key, operation, f"not attempted: {aborted}")
                continue
            outcome, aborted = _send_batch(dest, operation, batch, report)
            if outcome is None:
                continue
            for key, message in outcome.failed.items():
                report.add_error(key, operation, message)
            good_up = [(r.key, hashes[r.key], r.fields) for r in batch
                       if operation == "upsert" and r.key not in outcome.failed]
            good_del = [r.key for r in batch if operation != "upsert" and r.key not in outcome.failed]
            if dest.commit_per_batch:
                state.commit(sync.name, good_up, good_del)
                report.succeeded += len(good_up) + len(good_del)
            else:
                pending_up += good_up
                pending_del += good_del
    return pending_up, pending_del


def _admit(sync: SyncConfig, records: list[Record], held: dict[str, tuple[str, dict[str, Any]]],
           gate: AudienceGate | None) -> Admission:
    """Who may be sent, and which held rows must go (everyone may, and none must, without a gate)."""
    if gate is None:
        return admit(records, held, set(), set())
    erased, no_consent = blocked(gate, {r.key for r in records} | held.keys(), sync.consent_channel())
    return admit(records, held, erased, no_consent)


def run_sync(sync: SyncConfig, source: RowSource, state: SyncState, *, clock: Clock | None = None,
             rng: Any = None, report_dir: Path | None = None, destination: Destination | None = None,
             gate: AudienceGate | None = None) -> SyncReport:
    """Run one sync once and return its report (also stored in the state and written as JSON to ``report_dir``).

    :param sync: the sync's configuration.
    :param source: where the model's rows come from.
    :param state: the sync state (row hashes, runs).
    :param clock: time for backoff and the rate limit (a fake clock in tests).
    :param rng: randomness of the backoff jitter.
    :param report_dir: folder of the JSON reports (``<dir>/<sync>/<run_id>.json``); None writes none.
    :param destination: a ready destination (tests); default: built from the configuration.
    :param gate: erasures and consent (:class:`~data.activation.gate.EngineGate` from the CLI); None: no checks.
    """
    started = time.perf_counter()
    run_id = new_run_id()
    report = SyncReport(sync.name, run_id, sync.destination.type, sync.mode,
                        started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    state.start_run(sync.name, run_id)
    transport = HttpTransport(sync.retry, sync.rate_limit, clock=clock, rng=rng)
    try:
        records = [map_row(row, sync.mapping, sync.identity_key) for row in source.rows(sync)]
        report.model_rows = len(records)
        admission = _admit(sync, records, state.rows(sync.name), gate)
        report.withheld = admission.withheld
        plan = plan_sync(admission.records, admission.held, mirror=sync.mode == "mirror")
        report.unchanged = plan.unchanged
        dest = destination or build_destination(sync, transport)
        items = [("upsert", [r for r, _ in plan.upserts]), ("delete", plan.deletes + admission.removals),
                 ("erase", admission.erasures)]
        if any(records for _, records in items):
            dest.open(RunInfo(sync.name, run_id))
            hashes = {r.key: digest for r, digest in plan.upserts}
            pending_up, pending_del = _send_all(sync, dest, items, state, report, hashes)
            try:
                dest.close(ok=True)
            except ActivationError as error:
                for key, _, _ in pending_up:
                    report.add_error(key, "upsert", f"run not completed: {error}")
                for key in pending_del:
                    report.add_error(key, "delete or erase", f"run not completed: {error}")
            else:
                state.commit(sync.name, pending_up, pending_del)
                report.succeeded += len(pending_up) + len(pending_del)
        report.status = "ok" if report.failed == 0 else ("partial" if report.succeeded else "failed")
    except (ActivationError, WarehouseError) as error:
        report.fatal = str(error)
        report.status = "failed"
    finally:
        report.requests = transport.stats.requests
        report.retries = transport.stats.retries
        report.throttled = transport.stats.throttled
        report.waited_s = round(transport.stats.slept_s + transport.bucket.waited_s, 3)
        report.seconds = round(time.perf_counter() - started, 3)
        if report.status == "running":
            report.status = "failed"
            report.fatal = report.fatal or "interrupted"
        payload = report.to_json()
        state.finish_run(sync.name, run_id, report.status, payload)
        if report_dir is not None:
            folder = Path(report_dir) / sync.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{run_id}.json").write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    log.info("sync %s run %s: %s (%d sent, %d failed)", sync.name, run_id, report.status,
             report.upserts_sent + report.deletes_sent + report.erasures_sent, report.failed)
    return report


def is_due(schedule: str, last_success: float | None, now: float | None = None) -> bool:
    """Whether the cron ``schedule`` has a tick between the last successful run and now (never run: due)."""
    if last_success is None:
        return True

    now = time.time() if now is None else now
    next_tick = croniter(schedule, datetime.fromtimestamp(last_success, UTC)).get_next(float)
    return next_tick <= now
