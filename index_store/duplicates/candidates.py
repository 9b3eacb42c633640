"""Candidate pairs from codes: radius searches in batches, each batch's pairs handed on as it
comes, so memory is one batch of pairs (PAIR_BUDGET) whatever the radius and the index's size.

    for qi, pos, dist in candidate_batches(searcher, radius):           # within one set: qi < pos
    for qi, pos, dist in candidate_batches(searcher, radius, queries):  # set B's codes against A's

The batch is sized by the searcher's neighbour profile (the median item's ball at each radius), and
shrinks where a stretch of the index is denser than that. A radius at which one item's ball alone
overflows the budget is refused up front, naming one that fits.
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


def check_radius(s: Searcher, radius: int) -> None:
    if not 0 <= radius <= s.bits:
        raise ParameterError(f"radius must be between 0 and the code length {s.bits}, got {radius}")


def candidate_batches(s: Searcher, radius: int, queries: np.ndarray | None = None, pair_bytes: int = PAIR_BYTES):
    """Yield (qi, pos, dist) int64 arrays of each batch: query qi's code is within `radius` of
    position pos of s. queries None: s's own codes, each pair once (qi < pos, no item with
    itself); else queries (m, bits/8) uint8, qi indexing them. pair_bytes: a pair's bytes at the
    batch's peak (the verifier's signatures add theirs)."""
    check_radius(s, radius)
    fits = max(1, PAIR_BUDGET // pair_bytes)
    expected = links_per_item(s, radius, fits)
    own = queries is None
    codes = s.codes if own else queries
    start, size = 0, min(FIRST_BATCH, _batch(fits, expected))
    while start < len(codes):
        q = codes[start : start + size]
        qi, pos, dist = s.run_radius_plan(q, radius, *s.plan(radius, len(q)))
        qi = qi + start
        if own:
            once = pos > qi  # a pair's other item finds it too; an item finds itself
            qi, pos, dist = qi[once], pos[once], dist[once]
        yield qi.astype(np.int64), pos.astype(np.int64), dist.astype(np.int64)
        start += len(q)
        # the next batch sized by what this one met (a crowded stretch: smaller batches), growing at
        # most GROWTH-fold: a median ball says little where codes crowd (ITQ codes of 100,000
        # texts held over 8 GB in one batch sized by it)
        size = min(GROWTH * len(q), _batch(fits, max(expected, 2 * len(qi) / max(1, len(q)))))


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
