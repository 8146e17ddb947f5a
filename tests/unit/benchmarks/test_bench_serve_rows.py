"""The serve benchmark's rows: each configuration is judged against its own baseline from the same run."""

from __future__ import annotations

from benchmarks.bench_serve import CONFIGS, SERVE_RUN, rows


def _measured(name: str, baseline: str, targets: tuple[str, ...], rps: float, p99: float) -> dict:
    out = {"config": name, "name": name, "baseline": baseline, "targets": targets, "load": 1.0}
    for route in ("/v1/bid", "/v1/next-best-action"):
        for level in (1, 8, 32):
            out[(route, level)] = (1.0, 2.0, rps, 0)
        out[(route, "200/s")] = (1.0, p99, 200.0, 0)
    return out


def test_serve_run_and_postgresql_rows_are_ratios_to_their_own_baselines():
    uvicorn = _measured("plain uvicorn (baseline)", "", (), rps=1000.0, p99=4.0)
    serve_run = _measured(SERVE_RUN, "plain uvicorn (baseline)", ("serve-run",), rps=499.0, p99=12.0)
    pg = _measured("ame serve run, state on PostgreSQL", SERVE_RUN, ("postgresql",), rps=400.0, p99=24.5)
    results = {r.name: r for r in rows([uvicorn, serve_run, pg])}
    bid = results[f"{SERVE_RUN}: /v1/bid @ c=32"]
    assert (bid.value, bid.baseline_value, bid.met) == (499.0, 1000.0, False)  # 49.9% of uvicorn: below half
    steady = results[f"{SERVE_RUN}: /v1/next-best-action @ 200/s p99"]
    assert (steady.value, steady.baseline_value, steady.met) == (12.0, 4.0, True)  # exactly 3x passes
    pg_nba = results["ame serve run, state on PostgreSQL: /v1/next-best-action @ 200/s p99"]
    assert (pg_nba.baseline_value, pg_nba.met) == (12.0, False)  # against SQLite's serve run, not uvicorn: 2.04x
    assert results[f"{SERVE_RUN}: /v1/bid @ c=1"].met is None  # no target there


def test_the_configurations_name_baselines_that_run_before_them():
    names = [c.name for c in CONFIGS]
    for i, config in enumerate(CONFIGS[1:], start=1):
        assert config.baseline in names[:i], config.name
