"""Benchmarks: ``python -m benchmarks [--quick] [AREA ...]`` runs every ``bench_*.py`` and prints one table."""
