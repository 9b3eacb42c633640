"""Retrieval quality of binary codes: mAP, precision/recall in a Hamming ball, precision/recall@k.

Everything is computed from per-query histograms over Hamming distance (how many database items,
and how many relevant ones, lie at each distance 0..bits), so 1,000 queries against 60,000 codes
take a second or two and memory stays at one chunk of the distance matrix.

Ties. Hamming ranking leaves many items at the same distance; their order is arbitrary. Every
ranked metric here is tie-aware (McSherry & Najork, ECIR 2008): the expectation over all orders
of the items inside a tie, computed in closed form. It sits between the best and the worst
tie-breaking and does not depend on database order.

Relevance: same label (labelled data), or being among a query's true Euclidean neighbours
(unlabelled vectors; see `euclidean_neighbours`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .codes import hamming, unpack
from .errors import ParameterError


@dataclass
class Histograms:
    """total[q, d] / relevant[q, d]: database items / relevant items at Hamming distance d from query q."""

    total: np.ndarray  # (nq, bits+1) int64
    relevant: np.ndarray  # (nq, bits+1) int64

    @property
    def bits(self) -> int:
        return self.total.shape[1] - 1

    @property
    def n_relevant(self) -> np.ndarray:
        return self.relevant.sum(axis=1)


def histograms(query_codes: np.ndarray, db_codes: np.ndarray, relevance, chunk: int = 100) -> Histograms:
    """relevance(rows: slice) -> (len(rows), n_db) bool, e.g. label_relevance(...)."""
    bits = db_codes.shape[1] * 8
    nq, nb = len(query_codes), bits + 1
    total = np.zeros((nq, nb), dtype=np.int64)
    relevant = np.zeros((nq, nb), dtype=np.int64)
    for start in range(0, nq, chunk):
        rows = slice(start, min(start + chunk, nq))
        dist = hamming(query_codes[rows], db_codes).astype(np.int64)
        n = dist.shape[0]
        flat = dist + np.arange(n)[:, None] * nb  # one bincount for the whole chunk
        total[rows] = np.bincount(flat.ravel(), minlength=n * nb).reshape(n, nb)
        rel = relevance(rows)
        relevant[rows] = np.bincount(flat[rel], minlength=n * nb).reshape(n, nb)
    return Histograms(total, relevant)


def label_relevance(query_labels, db_labels):
    """Relevance = same label."""
    q, d = np.asarray(query_labels), np.asarray(db_labels)
    return lambda rows: q[rows, None] == d[None, :]


def neighbour_relevance(neighbours: np.ndarray, n_db: int):
    """Relevance = among the query's true neighbours; neighbours: (nq, k) database ids."""

    def rel(rows):
        ids = neighbours[rows]
        out = np.zeros((len(ids), n_db), dtype=bool)
        out[np.arange(len(ids))[:, None], ids] = True
        return out

    return rel


def euclidean_neighbours(queries: np.ndarray, database: np.ndarray, k: int) -> np.ndarray:
    """Exact Euclidean k-NN through FAISS: (nq, d), (n, d) float -> (nq, k) int64 database ids."""
    import faiss

    index = faiss.IndexFlatL2(database.shape[1])
    index.add(np.ascontiguousarray(database, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return ids


# --- tie-aware ranked metrics ------------------------------------------------------------------


def _harmonic(n: int) -> np.ndarray:
    """H[i] = 1 + 1/2 + ... + 1/i, H[0] = 0."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def _ranked(h: Histograms, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Expected (sum of precision at each relevant rank, number of relevant items) in the top k.

    Within a tie of n items, r relevant, preceded by c items of which R are relevant, the expected
    sum over its first m positions i of P(i relevant) * precision@i is
        (r/n) * sum_{i=1..m} (R + 1 + (i-1)(r-1)/(n-1)) / (c + i)
      = (r/n) * [ b m + (R + 1 - b (1 + c)) (H[c+m] - H[c]) ],   b = (r-1)/(n-1).
    """
    n = h.total.astype(np.float64)
    r = h.relevant.astype(np.float64)
    c = np.cumsum(h.total, axis=1) - h.total  # items before each tie
    R = np.cumsum(h.relevant, axis=1) - h.relevant  # relevant items before each tie
    m = h.total if k is None else np.clip(k - c, 0, h.total)
    H = _harmonic(int(h.total.sum(axis=1).max()))
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(n > 1, (r - 1) / (n - 1), 0.0)
        frac = np.where(n > 0, r / n, 0.0)
    sums = frac * (b * m + (R + 1 - b * (1 + c)) * (H[c + m] - H[c]))
    return sums.sum(axis=1), (frac * m).sum(axis=1)


def average_precision(h: Histograms, k: int | None = None) -> np.ndarray:
    """Per-query tie-aware AP (k=None: over the whole ranking; else over the top k).

    AP@k divides by the number of relevant items retrieved in the top k (the usual convention in
    the hashing literature); AP@all by all relevant items. A query with none scores 0.
    """
    if k is not None and k <= 0:
        raise ParameterError(f"k must be positive, got {k}")
    sums, retrieved = _ranked(h, k)
    denom = h.n_relevant.astype(np.float64) if k is None else retrieved
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, sums / denom, 0.0)


def precision_recall_at_k(h: Histograms, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query tie-aware precision@k and recall@k."""
    if k <= 0:
        raise ParameterError(f"k must be positive, got {k}")
    _, retrieved = _ranked(h, k)
    nrel = h.n_relevant
    return retrieved / k, np.divide(retrieved, nrel, out=np.zeros_like(retrieved), where=nrel > 0)


def ball(h: Histograms, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query (precision, recall, empty) of the Hamming ball of radius r; an empty ball has precision 0."""
    if radius < 0:
        raise ParameterError(f"radius must be >= 0, got {radius}")
    found = h.total[:, : radius + 1].sum(axis=1)
    hits = h.relevant[:, : radius + 1].sum(axis=1).astype(np.float64)
    nrel = h.n_relevant
    precision = np.divide(hits, found, out=np.zeros_like(hits), where=found > 0)
    recall = np.divide(hits, nrel, out=np.zeros_like(hits), where=nrel > 0)
    return precision, recall, found == 0


def pr_curve(h: Histograms) -> dict[str, list[float]]:
    """Mean precision and recall of the Hamming ball for every radius 0..bits."""
    curve = {"radius": [], "precision": [], "recall": [], "empty": []}
    for radius in range(h.bits + 1):
        p, r, e = ball(h, radius)
        curve["radius"].append(radius)
        curve["precision"].append(float(p.mean()))
        curve["recall"].append(float(r.mean()))
        curve["empty"].append(float(e.mean()))
    return curve


@dataclass
class Report:
    """Mean metrics over the queries; pr_curve maps radius -> mean precision/recall."""

    bits: int
    queries: int
    database: int
    map_all: float
    map_at_k: float
    k: int
    precision_at_k: float
    recall_at_k: float
    radius: int
    precision_at_radius: float
    recall_at_radius: float
    empty_ball_fraction: float
    pr_curve: dict
    precision_at_100: float = 0.0  # tie-aware P@100: the text-hashing literature's figure

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(query_codes: np.ndarray, db_codes: np.ndarray, relevance, k: int = 1000, radius: int = 2) -> Report:
    """All metrics for one code set; relevance as for histograms()."""
    h = histograms(query_codes, db_codes, relevance)
    p_k, r_k = precision_recall_at_k(h, k)
    p_r, r_r, empty = ball(h, radius)
    return Report(
        bits=h.bits,
        queries=len(query_codes),
        database=len(db_codes),
        map_all=float(average_precision(h).mean()),
        map_at_k=float(average_precision(h, k).mean()),
        k=k,
        precision_at_k=float(p_k.mean()),
        recall_at_k=float(r_k.mean()),
        radius=radius,
        precision_at_radius=float(p_r.mean()),
        recall_at_radius=float(r_r.mean()),
        empty_ball_fraction=float(empty.mean()),
        pr_curve=pr_curve(h),
        precision_at_100=float(precision_recall_at_k(h, 100)[0].mean()),
    )


# --- how a code set uses its bits ---------------------------------------------------------------

UNBALANCED = 0.02  # a bit on for fewer than 2% of the items, or for more than 98%, is nearly constant


def code_statistics(codes: np.ndarray, bits: int | None = None) -> dict:
    """How a set of codes (n, bits/8) uses its bits: items, distinct codes, constant bits (the same
    for every item) and unbalanced ones (on for under 2% or over 98% of the items, not constant)."""
    bits = bits or codes.shape[1] * 8
    on = unpack(codes)[:, :bits].mean(axis=0) if len(codes) else np.zeros(bits)
    constant = (on == 0) | (on == 1)
    unbalanced = ((on < UNBALANCED) | (on > 1 - UNBALANCED)) & ~constant
    return {
        "items": int(len(codes)),
        "distinct": int(len(np.unique(codes, axis=0))),
        "constant_bits": int(constant.sum()),
        "unbalanced_bits": int(unbalanced.sum()),
    }
