"""Benchmarks: run from the repository root as modules, e.g. ``python3 -m bench.switch``."""
