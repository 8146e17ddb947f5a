"""Run every benchmark module (``benchmarks/bench_*.py``) and print its figures beside their baselines."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.common import BenchResult, write_json

console = Console(width=None if Console().is_terminal else 220)


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def print_results(results: list[BenchResult]) -> None:
    table = Table(title="benchmarks (figures and baselines measured in the same run)")
    for column in ("area", "benchmark", "figure", "unit", "baseline", "baseline figure", "target", "met", "note"):
        table.add_column(column, overflow="fold", justify="right" if "figure" in column else "left")
    for r in results:
        met = "-" if r.met is None else ("[green]yes[/]" if r.met else "[red]NO[/]")
        table.add_row(r.area, r.name, _figure(r.value), r.unit, r.baseline_name, _figure(r.baseline_value), r.target, met, r.note)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("areas", nargs="*", help="Only these areas (bench_<area>.py); default: all.")
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a smoke run.")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args()
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    if args.areas:
        names = [n for n in names if n.removeprefix("bench_") in args.areas]
    results: list[BenchResult] = []
    for name in names:
        console.print(f"[bold]running {name}[/] …")
        start = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        results.extend(module.run(quick=args.quick))
        console.print(f"  {name} took {time.perf_counter() - start:.0f} s")
    print_results(results)
    if args.json:
        write_json(results, args.json)


if __name__ == "__main__":
    main()
