"""The compiled loops of knn_tables (numba; imported only when a k-NN search runs them).

Per query, the k best so far are kept sorted by (distance, position) in dist[i, :count[i]] /
pos[i, :count[i]]; an item met again in another table is recognised there (k is small: O(k) an
offer, hence knn_tables.MAX_K) and not offered twice.
"""

from __future__ import annotations

import numba
import numpy as np

M1, M2, M4, H01 = (
    np.uint64(c) for c in (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101)
)


@numba.njit(inline="always", cache=True)
def popcount(x):
    x = x - ((x >> np.uint64(1)) & M1)
    x = (x & M2) + ((x >> np.uint64(2)) & M2)
    x = (x + (x >> np.uint64(4))) & M4
    return np.int64((x * H01) >> np.uint64(56))


@numba.njit(inline="always", cache=True)
def offer(dist, pos, count, i, d, p):
    """Keep item p at distance d among query i's k best, unless it is there already; ordered by
    (distance, position), so that of items tied at the k-th distance the first positions stay,
    whatever order the probes met them in (and as FAISS's scan keeps them)."""
    k, n = dist.shape[1], count[i]
    for u in range(n):
        if pos[i, u] == p:
            return
    u = n if n < k else k - 1
    while u > 0 and (dist[i, u - 1] > d or (dist[i, u - 1] == d and pos[i, u - 1] > p)):
        dist[i, u] = dist[i, u - 1]
        pos[i, u] = pos[i, u - 1]
        u -= 1
    dist[i, u] = d
    pos[i, u] = p
    if n < k:
        count[i] = n + 1


@numba.njit(inline="always", cache=True)
def scan_bucket(code, a, b, codes, rows, dist, pos, count, i):
    """Offer query i every item of one bucket (rows[a:b], their codes codes[a:b]) that beats its
    k-th best by (distance, position)."""
    k = dist.shape[1]
    for r in range(a, b):
        d = popcount(code ^ codes[r])
        if count[i] < k or d < dist[i, k - 1] or (d == dist[i, k - 1] and rows[r] < pos[i, k - 1]):
            offer(dist, pos, count, i, d, np.int64(rows[r]))


@numba.njit(nogil=True, cache=True)
def probe_round(whole, subkeys, todo, masks, offsets, rows, codes, dist, pos, count):
    """One table, one round, query by query: each probe reads its bucket where it lies."""
    for i in todo:
        for t in range(len(masks)):
            key = np.int64(subkeys[i] ^ masks[t])
            scan_bucket(whole[i], offsets[key], offsets[key + 1], codes, rows, dist, pos, count, i)


@numba.njit(nogil=True, cache=True)
def sweep_round(whole, subkeys, todo, masks, offsets, rows, codes, dist, pos, count):
    """One table, one round, for a batch: the probes counting-sorted by bucket, then every bucket
    read once, in memory order, for all the queries that probe it."""
    buckets = len(offsets) - 1
    start = np.zeros(buckets + 1, np.int64)
    for i in todo:
        for t in range(len(masks)):
            start[np.int64(subkeys[i] ^ masks[t]) + 1] += 1
    for key in range(buckets):
        start[key + 1] += start[key]
    fill = start[:-1].copy()
    who = np.empty(start[buckets], np.int64)
    for i in todo:
        for t in range(len(masks)):
            key = np.int64(subkeys[i] ^ masks[t])
            who[fill[key]] = i
            fill[key] += 1
    for key in range(buckets):
        a, b = offsets[key], offsets[key + 1]
        if a < b:
            for w in range(start[key], start[key + 1]):
                scan_bucket(whole[who[w]], a, b, codes, rows, dist, pos, count, who[w])
