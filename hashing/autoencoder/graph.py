"""The training data's k-NN graph, whose neighbour pairs the loss's neighbours term pulls together:
exact L2 search (FAISS) in PCA-50 space, optionally among random affine views of the images, and
optionally re-ranked by shared nearest neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from .regularizers import Regularizers, affine_jitter
from .sparse_rows import SparseRows


def knn_graph(x: torch.Tensor | SparseRows, reg: Regularizers, seed: int = 0) -> torch.Tensor:
    """(n, k) int64: each training item's k neighbours, found by exact L2 (FAISS) in PCA-50 space
    or the input space (bags of words, SparseRows: by cosine in LSA space, topic_space).
    Images trained under views (reg.affine > 0) are searched among
    reg.graph_views seeded random views of every item as well: an item's distance to another is to
    the nearest of its views. Other data: its k nearest, or with reg.neighbour_pool = p > 1, the k
    of its p*k nearest that share most of their own p*k nearest with it (shared_neighbours).

    Measured on MNIST at 32 bits (test mAP after 12 epochs, bench explore): the plain k = 50 graph
    0.638, shared neighbours of a pool of 100 0.676, searched among 4 views 0.711, and both 0.667:
    a graph of views is not re-ranked."""
    import faiss

    if isinstance(x, SparseRows):  # bags of words: neighbours by cosine in LSA space, no views
        items, n, views, project = topic_space(x.csr, seed), len(x), 0, None
    else:
        flat = x.reshape(len(x), -1).numpy().astype(np.float32)
        project = projection(flat, reg.neighbour_space)
        n, views = len(flat), reg.graph_views if (reg.affine > 0 and x.ndim == 4) else 0
        items = project(flat)
    index = faiss.IndexFlatL2(items.shape[1])
    index.add(items)
    for view in _views(x, reg.affine, views, seed, project):
        index.add(view)  # row r of the index is a view of item r % n
    k = min(reg.k_neighbours, n - 1)
    pool = k if views else min(max(1, reg.neighbour_pool) * k, n - 1)
    found_rows = (views + 1) * pool + 1  # (views + 1) rows per distinct item, and the item's own
    step = max(1, GRAPH_BYTES // (40 * found_rows))  # _first_distinct holds ~5 int64 copies
    ids = np.empty((n, pool), dtype=np.int64)
    for a in range(0, n, step):
        _, found = index.search(items[a : a + step], found_rows)
        ids[a : a + step] = _first_distinct(found % n, np.arange(a, a + len(found)), pool)
    return torch.from_numpy(ids if pool == k else shared_neighbours(ids, k))


LSA_DIMS = 200  # measured on 20 Newsgroups (11,293 documents, 10,000 words): 10-NN label precision 0.742


def topic_space(csr, seed: int = 0) -> np.ndarray:
    """csr: (n, d) bags of words (TF-IDF) -> (n, LSA_DIMS) float32 rows of unit length: latent
    semantic analysis (a truncated SVD of the sparse matrix, never densified), where the L2 distance
    ranks as the cosine does and documents on one topic are near even when they share few words."""
    from sklearn.decomposition import TruncatedSVD

    dims = max(1, min(LSA_DIMS, csr.shape[1] - 1, csr.shape[0] - 1))
    z = TruncatedSVD(dims, random_state=seed).fit_transform(csr).astype(np.float32)
    return np.ascontiguousarray(z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))


GRAPH_BYTES = 256 << 20  # bound on the search results of the items searched at a time
VIEW_BYTES = 64 << 20  # images turned into views at a time


def projection(flat: np.ndarray, space: str = "pca50") -> Callable[[np.ndarray], np.ndarray]:
    """Where neighbours are searched: PCA-50 of flat (n, d) for space "pca50", d > 50 and n > 50,
    else the input space; (m, d) float32 -> (m, 50 or d)."""
    from ..pca import principal_directions

    if space != "pca50" or flat.shape[1] <= 50 or len(flat) <= 50:
        return lambda a: a  # (50 items or fewer span at most 49 dimensions: PCA-50 would keep them all)
    mean, pcs = principal_directions(flat, 50)
    return lambda a: np.ascontiguousarray((a - mean) @ pcs)


def _views(x: torch.Tensor, strength: float, count: int, seed: int, project) -> Iterator[np.ndarray]:
    """count projected random views of every image of x (n, C, H, W), each (n, dims), drawn from a
    generator seeded with seed (every rank of a process group draws the same)."""
    generator = torch.Generator().manual_seed(seed)
    rows = max(1, VIEW_BYTES // (4 * x[0].numel()))
    for _ in range(count):
        parts = [affine_jitter(x[a : a + rows].float(), strength, generator) for a in range(0, len(x), rows)]
        yield np.concatenate([project(p.reshape(len(p), -1).numpy()) for p in parts])


def _first_distinct(owners: np.ndarray, own: np.ndarray, m: int) -> np.ndarray:
    """owners: (q, r) the items of each query's r nearest rows, nearest first; own: (q,) the query's
    own item -> (q, m): the first m distinct items of each row other than its own (each item has
    views + 1 rows, so r = (views + 1) * m + 1 rows hold at least m others)."""
    order = np.argsort(owners, axis=1, kind="stable")
    ranked = np.take_along_axis(owners, order, 1)
    first = np.ones_like(ranked, dtype=bool)
    first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]  # the nearest row of each item
    keep = np.empty_like(first)
    np.put_along_axis(keep, order, first, 1)
    keep &= owners != own[:, None]
    taken = np.argsort(~keep, axis=1, kind="stable")[:, :m]  # kept rows, nearest first
    return np.take_along_axis(owners, taken, 1)


# measured (MNIST's 60,000 training images, PCA-50, 50 neighbours of a pool of 100): the share of
# the graph's edges within a class 0.922 -> 0.934 (4 views, no pool: 0.934 too, and 0.912 at k = 100)
POOL_MEMORY = 64 << 20  # bytes of gathered candidate lists and membership rows per chunk


def shared_neighbours(ids: np.ndarray, k: int) -> np.ndarray:
    """ids: (n, p) each item's p nearest items, nearest first -> (n, k): the k of them that share
    the most of their own p nearest with it, nearer first among equals (Jarvis & Patrick's shared
    nearest neighbours: two items that agree about their neighbourhood are rarely in different
    classes, where a near pair across a class boundary often is not)."""
    n, p = ids.shape
    cand = torch.from_numpy(ids)
    shared = torch.empty(n, p, dtype=torch.int32)
    rows = max(1, min(POOL_MEMORY // (8 * p * p), POOL_MEMORY // max(n, 1)))
    for a in range(0, n, rows):
        mine = cand[a : a + rows]
        member = torch.zeros(len(mine), n, dtype=torch.bool).scatter_(1, mine, True)  # row i: i's pool
        theirs = cand[mine].reshape(len(mine), p * p)  # the pools of i's candidates
        shared[a : a + rows] = torch.gather(member, 1, theirs).reshape(len(mine), p, p).sum(2)
    order = torch.sort(shared, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.gather(cand, 1, order).numpy()
