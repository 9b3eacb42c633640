"""Benchmarks, run by `semhash bench quality|search|train|serve|reconstruction|explore`: one `run()`
per module (bench_*.py, explore_ae.py), one result writer (results.py) and the library's one timer
(semhash.hashing.timing)."""
