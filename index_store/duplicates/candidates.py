"""Candidate pairs from codes: radius searches in batches, each batch's pairs handed on as it
comes, so memory is one batch of pairs (PAIR_BUDGET) whatever the radius and the index's size.

    for qi, pos, dist in candidate_batches(searcher, radius):           # within one set: qi < pos
    for qi, pos, dist in candidate_batches(searcher, radius, queries):  # set B's codes against A's

The batch is sized by the searcher's neighbour profile (the median item's ball at each radius), and
shrinks where a stretch of the index is denser than that. A radius at which one item's ball alone
overflows the budget is refused up front, naming one that fits.

Crowded codes: a code more than CROWD items share says nothing about which of them are duplicates
(64-bit ITQ codes of 1M clustered embeddings: 453 distinct codes, one of 15,845 items; 7.6 billion
pairs at radius 0). With `skip` (crowded(): those items), they ask nothing of the codes, and their
pairs with each other come from the signatures' own proposals (Verifier.propose); every other
item still queries the ball, so a pair with one of them in it is still found.
"""

from __future__ import annotations

import numpy as np

from ...hashing.errors import ParameterError
from ..engine.searcher import Searcher

BATCH = 20_000  # items queried per radius search at most (fewer when their balls are large)
FIRST_BATCH, GROWTH = 16, 4  # the first batch's items; each next one at most GROWTH times larger
# Bytes of pairs a batch may hold, and a pair's bytes at the batch's peak (the searcher's (query,
# position, distance) int64 triples joined from its chunks, the verifier's copies of two
# signatures' rows; measured on the old union-find's links: 1.8x the budget at 64 B a link).
PAIR_BUDGET, PAIR_BYTES = 256 << 20, 128
CROWD = 64  # items one code may hold before it stops proposing pairs among them


def check_radius(s: Searcher, radius: int) -> None:
    if not 0 <= radius <= s.bits:
        raise ParameterError(f"radius must be between 0 and the code length {s.bits}, got {radius}")


def crowded(s: Searcher, queries: np.ndarray | None = None) -> np.ndarray:
    """(m,) bool: the queries (default: s's own codes) whose code more than CROWD of s's items share."""
    own = _as_keys(s.codes)
    values, counts = np.unique(own, return_counts=True)
    keys = own if queries is None else _as_keys(queries)
    at = np.minimum(np.searchsorted(values, keys), len(values) - 1) if len(values) else np.zeros(len(keys), int)
    return (values[at] == keys) & (counts[at] > CROWD) if len(values) else np.zeros(len(keys), bool)


def _as_keys(codes: np.ndarray) -> np.ndarray:
    """(n, bytes) uint8 codes -> (n,) sortable keys (one void scalar a code)."""
    c = np.ascontiguousarray(codes)
    return c.view(np.dtype((np.void, c.shape[1]))).ravel()


def candidate_batches(
    s: Searcher,
    radius: int,
    queries: np.ndarray | None = None,
    pair_bytes: int = PAIR_BYTES,
    skip: np.ndarray | None = None,
):
    """Yield (qi, pos, dist) int64 arrays of each batch: query qi's code is within `radius` of
    position pos of s. queries None: s's own codes, each pair once (qi < pos, no item with
    itself); else queries (m, bits/8) uint8, qi indexing them. pair_bytes: a pair's bytes at the
    batch's peak (the verifier's signatures add theirs). skip (m,) bool: queries that ask nothing
    (crowded()); within one set, their pairs with the others still come, from the others' side."""
    check_radius(s, radius)
    fits = max(1, PAIR_BUDGET // pair_bytes)
    expected = links_per_item(s, radius, fits) if skip is None or radius > 0 else CROWD
    own = queries is None
    codes = s.codes if own else queries
    rows = np.arange(len(codes)) if skip is None else np.flatnonzero(~skip)
    start, size = 0, min(FIRST_BATCH, _batch(fits, expected))
    while start < len(rows):
        at = rows[start : start + size]
        qi, pos, dist = s.run_radius_plan(codes[at], radius, *s.plan(radius, len(at)))
        qi = at[qi]
        if own:  # a pair's other item finds it too, unless skipped; an item finds itself
            once = (pos > qi) | (skip[pos] if skip is not None else False)
            qi, pos, dist = qi[once], pos[once], dist[once]
        yield qi.astype(np.int64), pos.astype(np.int64), dist.astype(np.int64)
        start += len(at)
        # the next batch sized by what this one met (a crowded stretch: smaller batches), growing at
        # most GROWTH-fold: a median ball says little where codes crowd (ITQ codes of 100,000
        # texts held over 8 GB in one batch sized by it)
        size = min(GROWTH * len(at), _batch(fits, max(expected, 2 * len(qi) / max(1, len(at)))))


def links_per_item(s: Searcher, radius: int, fits: int) -> float:
    """Pairs the median item's ball holds (itself included), by the searcher's neighbour profile;
    ParameterError, naming a radius that fits, when one ball alone is more than `fits` pairs."""
    within = np.asarray(s.within, dtype=np.float64) + 1
    if within[radius] <= fits:
        return float(within[radius])
    smaller = np.flatnonzero(within <= fits)
    fitting = f"radius {int(smaller.max())} or less fits" if len(smaller) else "no radius fits"
    raise ParameterError(
        f"at radius {radius} a typical item has about {within[radius]:,.0f} neighbours: more than "
        f"{PAIR_BUDGET >> 20} MB of candidate pairs for one item's search; {fitting}"
    )


def _batch(fits: int, per_item: float) -> int:
    """Items a batch queries so that its pairs, per_item each, fit in `fits`: 1 to BATCH."""
    return int(min(BATCH, max(1, fits // max(per_item, 1.0))))
