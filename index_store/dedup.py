"""Near-duplicates: groups of items whose codes lie within a Hamming radius of each other.

    dedup("items.db", radius=2)   # {"index", "radius", "items", "groups": [[key, ...], ...]}

Every item is a radius query against its own index (the bit-flip and multi-index tables answer it
at a cost independent of the index's size); two items within the radius are joined, and the
groups are the connected components of those links (scipy), largest first.
"""

from __future__ import annotations

import numpy as np

from .index import Index

BATCH = 20_000  # items queried per radius search: bounds the candidate lists in memory


def dedup(target, name: str = "default", radius: int = 0) -> dict:
    """Groups (two or more items) of index `name` linked by Hamming distance <= radius."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    index = Index.open(target, name, mode="read")
    s = index.searcher
    rows, cols = [], []
    for start in range(0, len(s), BATCH):
        res = s.radius(s.codes[start : start + BATCH], radius)
        rows.append(np.repeat(np.arange(start, start + len(res)), res.counts()))
        cols.append(res.ids)
    order = np.argsort(s.ids)
    found = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    a = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    b = order[np.searchsorted(s.ids, found, sorter=order)]  # item id -> position
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(len(s), len(s)))
    _, label = connected_components(graph, directed=False)
    by_group = np.argsort(label, kind="stable")
    bounds = np.flatnonzero(np.diff(label[by_group])) + 1
    members = [m for m in np.split(by_group, bounds) if len(m) > 1]
    meta = index.store.items(name, s.ids[np.concatenate(members)] if members else [])
    groups = [sorted(meta[int(s.ids[p])]["key"] for p in m) for m in members]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return {"index": name, "radius": radius, "items": len(s), "groups": groups}
