"""Near-duplicates: groups of items whose codes lie within a Hamming radius of each other.

    dedup("items.db", radius=2)   # {"index", "radius", "items", "groups": [[key, ...], ...]}
    dedup("photos/", radius=2, model="m.semhash")   # a folder's images, encoded, nothing stored

Every item is a radius query against its own index (the bit-flip and multi-index tables answer it
at a cost independent of the index's size); two items within the radius are joined, and the
groups are the connected components of those links (scipy), largest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hashing.data import folder_keys
from ..hashing.errors import ModelMissing, ParameterError
from .engine.searcher import Searcher
from .index import Index
from .query import encode

BATCH = 20_000  # items queried per radius search: bounds the candidate lists in memory


def dedup(target, name: str = "default", radius: int = 0, model=None) -> dict:
    """Groups (two or more items) linked by Hamming distance <= radius: of index `name` of the store
    at target, or, when target is a folder, of its images encoded by `model` (nothing is stored).
    Returns {"index" (or "folder"), "radius", "items", "groups": [[key, ...], ...]}."""
    if Path(target).is_dir():
        if model is None:
            raise ModelMissing(f"{target} is a folder: name the model that encodes its images")
        files, codes = encode(model, images=[str(target)])
        keys = folder_keys(target, files)
        members = _linked(Searcher(np.arange(len(keys), dtype=np.int64), codes), radius)
        groups = [sorted(keys[int(p)] for p in m) for m in members]
        return _report({"folder": str(target)}, radius, len(keys), groups)
    if model is not None:
        raise ParameterError(f"{target} is an index, whose items are encoded already: a model goes with a folder")
    index = Index.open(target, name, mode="read")
    s = index.searcher
    members = _linked(s, radius)
    meta = index.store.items(name, s.ids[np.concatenate(members)] if members else [])
    groups = [sorted(meta[int(s.ids[p])]["key"] for p in m) for m in members]
    return _report({"index": name}, radius, len(s), groups)


def _report(what: dict, radius: int, items: int, groups: list[list[str]]) -> dict:
    groups.sort(key=lambda g: (-len(g), g[0]))
    return {**what, "radius": radius, "items": items, "groups": groups}


def _linked(s: Searcher, radius: int) -> list[np.ndarray]:
    """Positions of each group of two or more items linked by radius searches, largest first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

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
    return [m for m in np.split(by_group, bounds) if len(m) > 1]
