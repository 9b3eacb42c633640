"""Near-duplicates: groups of items whose codes lie within a Hamming radius of each other.

    dedup("items.db", radius=2)   # {"index", "radius", "items", "groups": [[key, ...], ...]}
    dedup("photos/", radius=2, model="m.semhash")   # a folder's images (any input kind's path), encoded, nothing stored

Every item is a radius query against its own index (the bit-flip and multi-index tables answer it
at a cost independent of the index's size); two items within the radius are joined, and the
groups are the connected components of those links, largest first. The queries run in batches
sized by the searcher's neighbour profile, each batch's links merged into a union-find as they
come: memory is one integer per item plus one batch of links (LINK_BUDGET), whatever the radius.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hashing import inputs
from ..hashing.data import folder_keys
from ..hashing.errors import ModelMissing, ParameterError
from .engine.searcher import Searcher
from .index import Index
from .query import encode, whole_number

BATCH = 20_000  # items queried per radius search at most (fewer when their balls are large)


def dedup(target, name: str = "default", radius: int = 0, model=None) -> dict:
    """Groups (two or more items) linked by Hamming distance <= radius: of index `name` of the store
    at target, or, when target is a path of items (a folder of images, a feature file, ...), of
    its items encoded by `model` (nothing is stored).
    Returns {"index" (or "folder"), "radius", "items", "groups": [[key, ...], ...]}."""
    radius = whole_number(radius, "the radius")
    kind = inputs.for_path(Path(target)) if Path(target).exists() else None
    if kind is not None:
        if model is None:
            raise ModelMissing(f"{target} holds {kind.name}, not an index: name the model that encodes them")
        labels, codes = encode(model, **{kind.keyword: [str(target)] if kind.repeat else str(target)})
        keys = folder_keys(target, labels) if Path(target).is_dir() else labels
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


# Bytes of links a batch of radius searches may hold, and a link's bytes at the batch's peak (the
# searcher's (query, position, distance) int64 triples, joined from its chunks, and this module's
# copies; measured: 4,000 16-bit codes at radius 8 peaked at 1.8x the budget at 64 B a link). The
# batch is sized so that the links the neighbour profile expects fit, so memory is the parent
# array plus one batch of links whatever the radius (every link at once: radius 8 over 140,000
# items ran out of memory after 2.5 GB).
LINK_BUDGET, LINK_BYTES = 256 << 20, 128


def _linked(s: Searcher, radius: int) -> list[np.ndarray]:
    """Positions of each group of two or more items linked by radius searches, in batches merged
    into a union-find as they come."""
    if not 0 <= radius <= s.bits:
        raise ParameterError(f"radius must be between 0 and the code length {s.bits}, got {radius}")
    fits = LINK_BUDGET // LINK_BYTES
    expected = _links_per_item(s, radius, fits)
    parent = np.arange(len(s), dtype=np.int64)
    start, size = 0, _batch(fits, expected)
    while start < len(s):
        q = s.codes[start : start + size]
        qi, pos, _ = s.run_radius_plan(q, radius, *s.plan(radius, len(q)))
        qi += start
        once = pos > qi  # a pair's other item finds it too; an item finds itself
        _union(parent, qi[once], pos[once])
        start += len(q)
        size = _batch(fits, max(expected, len(qi) / len(q)))  # a denser stretch: smaller batches
    return _groups(_find(parent, np.arange(len(s), dtype=np.int64)))


def _links_per_item(s: Searcher, radius: int, fits: int) -> float:
    """Links the median item's ball holds (itself included), by the searcher's neighbour profile;
    ParameterError, naming a radius that fits, when one ball alone is more than `fits` links."""
    within = np.asarray(s.within, dtype=np.float64) + 1
    if within[radius] <= fits:
        return float(within[radius])
    smaller = np.flatnonzero(within <= fits)
    fitting = f"radius {int(smaller.max())} or less fits" if len(smaller) else "no radius fits"
    raise ParameterError(
        f"at radius {radius} a typical item has about {within[radius]:,.0f} neighbours: more than "
        f"{LINK_BUDGET >> 20} MB of links for one item's search; {fitting}"
    )


def _batch(fits: int, per_item: float) -> int:
    """Items a batch queries so that its links, per_item each, fit in `fits`: 1 to BATCH."""
    return int(min(BATCH, max(1, fits // max(per_item, 1.0))))


def _find(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The root of each position in x; each step halves the path walked (parent[x] = its grandparent)."""
    while True:
        p = parent[x]
        if np.array_equal(p, x):
            return x
        grand = parent[p]
        parent[x] = grand
        x = grand


def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the sets of a[i] and b[i] for every i: the roots the links touch, as a small graph, whose
    connected components each hang under their smallest root (every root is its set's smallest)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ra, rb = _find(parent, a), _find(parent, b)
    cross = ra != rb
    if not cross.any():
        return
    roots, at = np.unique(np.concatenate([ra[cross], rb[cross]]), return_inverse=True)
    k = int(cross.sum())
    graph = coo_matrix((np.ones(k, np.int8), (at[:k], at[k:])), shape=(len(roots), len(roots)))
    _, component = connected_components(graph, directed=False)
    _, first = np.unique(component, return_index=True)  # roots ascend: a component's first is its smallest
    parent[roots] = roots[first][component]


def _groups(root: np.ndarray) -> list[np.ndarray]:
    """Positions of each set of two or more (root: each position's root), in position order within."""
    shared = np.flatnonzero(np.bincount(root, minlength=len(root))[root] > 1)
    order = shared[np.argsort(root[shared], kind="stable")]
    return np.split(order, np.flatnonzero(np.diff(root[order])) + 1) if len(order) else []
