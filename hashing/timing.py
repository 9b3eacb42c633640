"""The one timer: the search planner and the benchmarks time code with it."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(fn: Callable[[], object], repeats: int = 2) -> float:
    """Wall-clock seconds of the fastest of `repeats` calls of fn() (time.perf_counter). The best,
    not the mean: a slow spell of the machine only ever adds time."""
    best = float("inf")
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
