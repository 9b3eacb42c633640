"""Benchmarks: runnable as scripts (python benchmarks/bench_*.py) and from `semhash bench`."""
