"""Benchmarks (`make bench`): each module exposes `run() -> dict`; results are printed as JSON."""
