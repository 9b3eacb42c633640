"""Candidate pairs as one int64 each (low * n + high, low < high), as the signatures' proposals
collect them: a pair found twice (two bands, two tables) is one id."""

from __future__ import annotations

import numpy as np


def pair_ids(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """(m,) int64 ids of the pairs (a[i], b[i]) of n items, whichever comes first."""
    return np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)


def distinct(ids: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-d integer array, ascending (np.unique), by sorting: numpy 2.4's
    hashing np.unique took 6.6 s over 5M distinct int64 pair ids that a sort takes 0.34 s over."""
    s = np.sort(ids)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def handed_on(parts: list[np.ndarray], n: int, n_a: int | None, step: int = 1 << 20):
    """Yield (qi, pos) int64 arrays, `step` pairs at a time, of the distinct pair ids in parts over
    n items: n_a None, pairs within one set (qi < pos); else the items are set A's n_a then set
    B's, and only pairs of one of each are handed on, qi in B, pos in A."""
    ids = distinct(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    low, high = np.divmod(ids, n)
    if n_a is not None:  # one of each set: the low one is A's
        cross = (low < n_a) & (high >= n_a)
        low, high = high[cross] - n_a, low[cross]
    for k in range(0, len(low), step):
        yield low[k : k + step], high[k : k + step]
