"""Exact k-NN by multi-index hashing in compiled code (numba), for codes of up to 64 bits.

Norouzi, Punjani & Fleet's search: split codes into m substrings of at most 16 bits, one table
per substring. Round s probes every table with the query's substring flipped in exactly s bits;
after table j of round s, an item not yet met differs from the query in at least s+1 bits of
tables 0..j and s bits of the others, so a query whose k-th best distance is <= m*s + j is done.

Two things make it beat FAISS's scan, where numpy verification of the same candidates did not
(0.99x at 1M 64-bit codes: ~15 ns a candidate for gathers, popcounts and de-duplication):
  - each table keeps its own copy of the codes in bucket order, so a bucket's candidates are read
    in one sweep of memory instead of one cache miss each (1M codes: 1.5x -> 2.1x a scan);
  - a batch of queries is probed in bucket order (a counting sort of its probes), so every bucket
    is read once for all the queries that probe it (1M codes, 1,000 queries: 2.1x -> 5.8x).
Small batches probe query by query: the counting sort costs a pass over 2^16 buckets per round.
Measured on 1M and 10M random 64-bit codes, k = 10, one thread: 16-bit substrings (m = 4) 5.8x
and 15.3x a scan; 21-bit (m = 3, Norouzi's rule at 1M) 0.2x; 13-bit (m = 5) 12.0x at 10M.

numba compiles the kernels on first use (about 1 s) and caches them beside this file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from math import ceil

import numpy as np

from ...hashing.codes import ball_size, flip_masks, substring_bounds, substrings, to_int
from .hashtable import HashTable
from .multi_index import MultiIndexHash

SUB_BITS = 16  # substring length: measured best at 1M and 10M (module docstring)
MAX_PROBED = 0.2  # rounds stop before probing more than this fraction of all buckets (the scan's turn)
MAX_K = 256  # an offer costs O(k): 100k codes, k = 1,000: 20 ms a query against the scan's 16 ms
SWEEP_FROM = 0.25  # a round sweeps in bucket order when its probes number this fraction of the buckets or more


@functools.cache
def available() -> bool:
    """Whether numba imports (the compiled search is then used; else numpy's rounds). Asked only
    where the compiled search would run: the import takes ~0.4 s."""
    try:
        import numba  # noqa: F401
    except Exception:  # not installed, or broken (a mismatched llvmlite): numpy's rounds answer
        return False
    return True


@dataclass
class KnnTables:
    """m tables of substrings of at most SUB_BITS bits: tables[j] (direct HashTable: its rows are item
    positions in bucket order) and codes[j] (n,) uint64, the whole codes in that same order."""

    widths: list[int]
    tables: list[HashTable]
    codes: list[np.ndarray]
    masks: list[list[np.ndarray]]  # masks[j][s]: (count,) uint64 flips of exactly s bits of table j

    @classmethod
    def build(cls, codes: np.ndarray, mih: MultiIndexHash | None = None) -> KnnTables:
        """codes: (n, bits/8) uint8 in position order, bits <= 64. mih: the searcher's own
        multi-index split over the same codes; its tables are taken as they are when it is split
        the same way (32-bit codes: m = 2), so that only the codes' copies are new."""
        bits = codes.shape[1] * 8
        m = split(bits)
        widths = [stop - start for start, stop in substring_bounds(bits, m)]
        if mih is not None and mih.m == m and all(t.direct for t in mih.tables):
            tables = mih.tables
        else:
            subkeys = substrings(codes, m)
            tables = [HashTable.build(subkeys[:, j], w, direct=True) for j, w in enumerate(widths)]
        masks = [_masks_by_weight(w, max_radius(w, m)) for w in widths]
        whole = to_int(codes)
        return cls(widths, tables, [whole[t.rows] for t in tables], masks)

    @property
    def max_radius(self) -> int:
        """The last round: beyond it the rounds would have probed more than MAX_PROBED of the items."""
        return min(len(m) - 1 for m in self.masks)

    def search(self, q: np.ndarray, k: int, stop: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k nearest item positions of each query, by rounds 0..stop (default max_radius).
        q: (nq, bits/8) uint8. Returns (distances (nq, k) int64 ascending, positions (nq, k) int64,
        done (nq,) bool): rows not done (their k-th neighbour is farther than the rounds reach)
        are to be answered another way."""
        from . import knn_kernels as K

        stop = self.max_radius if stop is None else min(stop, self.max_radius)
        m, nq = len(self.tables), len(q)
        whole, subkeys = to_int(q), substrings(q, m)
        dist, pos = np.zeros((nq, k), np.int64), np.zeros((nq, k), np.int64)
        count = np.zeros(nq, np.int64)
        todo = np.arange(nq, dtype=np.int64)
        for s in range(stop + 1):
            for j, (table, width) in enumerate(zip(self.tables, self.widths)):
                masks = self.masks[j][s]
                sweep = len(todo) * len(masks) >= SWEEP_FROM * 2**width
                run = K.sweep_round if sweep else K.probe_round
                run(
                    whole, subkeys[:, j].copy(), todo, masks, table.offsets, table.rows, self.codes[j], dist, pos, count
                )
                done = (count[todo] == k) & (dist[todo, k - 1] <= m * s + j)
                todo = todo[~done]
                if not len(todo):
                    return dist, pos, np.ones(nq, bool)
        finished = np.ones(nq, bool)
        finished[todo] = False
        return dist, pos, finished

    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.codes) + sum(t.nbytes() for t in self.tables)


def split(bits: int) -> int:
    """The number of substring tables for `bits`-bit codes: substrings of at most SUB_BITS bits."""
    return ceil(bits / SUB_BITS)


def max_radius(width: int, m: int) -> int:
    """The last round s after which m tables of `width` bits have probed at most MAX_PROBED of the
    items (uniform codes): 16-bit substrings, m = 4: round 4 (15% of the items), not 5 (42%)."""
    s = 0
    while s < width and m * ball_size(width, s + 1) <= MAX_PROBED * 2**width:
        s += 1
    return s


def _masks_by_weight(width: int, radius: int) -> list[np.ndarray]:
    """[flips of exactly s bits for s in 0..radius] of a width-bit substring, each (count,) uint64."""
    masks = flip_masks(width, radius)
    edges = [0] + [ball_size(width, s) for s in range(radius + 1)]
    return [masks[edges[s] : edges[s + 1]].copy() for s in range(radius + 1)]
