"""Hamming search over an in-memory set of codes: radius (Hamming ball) and k-NN, in batches.

Three ways to answer, picked per call by a cost model in "probe units" (one hash-table probe):
  bit-flip  probe the whole-code table with every code of the ball (codes of at most 64 bits);
  MIH       multi-index hashing: m substring tables probed at radius floor(r/m), then verified;
  scan      FAISS's exact scan (range_search / k-NN on IndexBinaryFlat), when probing costs more.
All three return exactly the same set; results are ordered by (distance, tie key, item id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..hashing.codes import hamming, hamming_rows, one_bit_away
from ..hashing.errors import ParameterError
from .multi_index import MultiIndexHash, choose_m

# Relative costs in probe units, measured on the development machine (numpy, one thread; 1M codes):
# a probe ~20 ns, a candidate's verification (gather, popcount, de-duplication) ~2 probes, and
# FAISS's scan ~1 ns per 32- or 64-bit code.
SCAN_COST_PER_ITEM = 0.05
VERIFY_COST = 2.0
KNN_ROUND_COST = 2.5  # a k-NN round's candidate costs more than a radius search's (two tables'
# de-duplication, the sure-distance filter, per-query counts): measured 48 vs 20 ns
SCAN_MARGIN = 1.05  # k-NN probes only when timed at least 5% faster: the scan's cost is the steadier
CLOCK_WITHIN = 4.0  # plans the model puts within this factor of the best are timed, not trusted
ESTIMATE_SAMPLE = 64  # database codes probed to measure how many candidates a query really meets
MAX_PROBES = 5_000_000  # per query; beyond it the ball is not enumerated


@dataclass
class Results:
    """Ragged results of a query batch: query i owns ids[offsets[i]:offsets[i+1]] (and distances)."""

    offsets: np.ndarray  # (nq + 1,) int64
    ids: np.ndarray  # (total,) int64 item ids
    distances: np.ndarray  # (total,) int64 Hamming distances, ascending within a query

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = slice(self.offsets[i], self.offsets[i + 1])
        return self.ids[s], self.distances[s]

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


class Searcher:
    """Search structures over codes; ids[i] is the item id of codes[i]. Immutable: rebuild to change."""

    def __init__(self, ids: np.ndarray, codes: np.ndarray, m: int | None = None):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if self.codes.ndim != 2 or len(self.codes) != len(self.ids):
            raise ParameterError(f"{len(self.ids)} ids for codes of shape {self.codes.shape}")
        self.bits = self.codes.shape[1] * 8
        n = len(self.ids)
        self.mih = {}
        if self.bits <= 64:
            self.mih[1] = MultiIndexHash.build(self.codes, 1)  # the bit-flip table
        m = m or max(2, choose_m(self.bits, n))  # k-NN needs a split to grow its radius gently
        if m not in self.mih:
            self.mih[m] = MultiIndexHash.build(self.codes, m)
        self._within = neighbour_profile(self.codes)
        self._forget()

    def _forget(self) -> None:
        """Start without the FAISS index and the memos of planning (all derived on first use)."""
        self._faiss = None
        self._candidates: dict[tuple[int, int], float] = {}  # (m, substring radius) -> per query
        self._radius_clock: dict[int, dict] = {}  # radius -> {plan: (fixed s, per-query s)}
        self._knn_clock: dict[int, dict] = {}  # k -> {"mih" | "scan": (fixed s, per-query s)}
        self._knn_starts: dict[int, int | None] = {}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def faiss_index(self):
        """IndexBinaryFlat over the codes in position order (built on first use)."""
        if self._faiss is None:
            import faiss

            self._faiss = faiss.IndexBinaryFlat(self.bits)
            if len(self.codes):
                self._faiss.add(self.codes)
        return self._faiss

    def nbytes(self) -> int:
        """Memory of the in-memory structures (FAISS's copy of the codes included)."""
        return self.ids.nbytes + self.codes.nbytes * 2 + sum(t.nbytes() for t in self.mih.values())

    # --- planning ---
    def plan(self, radius: int, nq: int = 1000) -> tuple[str, int]:
        """The fastest way to search nq queries at this radius: ("mih", m) (m = 1 is bit-flip) or
        ("scan", 0). The probe-unit model ranks the plans; those within CLOCK_WITHIN of the best are
        then timed (once per radius) and the clock decides."""
        if radius not in self._radius_clock:
            ranked = sorted(self._radius_costs(radius))
            close = [p for c, p in ranked if c <= CLOCK_WITHIN * ranked[0][0]]
            self._radius_clock[radius] = (
                {close[0]: (0.0, 0.0)}
                if len(close) == 1 or not len(self)
                else self._clock({p: (lambda q, p=p: self._radius_plan(q, radius, *p)) for p in close})
            )
        return _fastest(self._radius_clock[radius], nq)

    def _radius_costs(self, radius: int) -> list[tuple[float, tuple[str, int]]]:
        """(model cost in probe units, plan) of every feasible plan."""
        # Every method pays for the results it returns; a scan pays for them on top of the scan.
        results = self.candidates_per_query(1, radius) if 1 in self.mih else self._within[min(radius, self.bits)]
        costs = [(SCAN_COST_PER_ITEM * len(self) + VERIFY_COST * results, ("scan", 0))]
        for m, mih in self.mih.items():
            if mih.probes(radius) <= MAX_PROBES:
                costs.append((mih.probes(radius) + VERIFY_COST * self.candidates_per_query(m, radius // m), ("mih", m)))
        return costs

    def _clock(self, plans: dict) -> dict:
        """Seconds per call of each plan as (fixed, per query), from timing it on 1 and on a batch of
        database codes with one bit flipped (the batch bounded so that a scan takes ~0.1 s)."""
        batch = int(np.clip(4e7 / max(len(self), 1), 8, 256))
        q = one_bit_away(self.codes, batch, np.random.default_rng(2))
        # The plans take turns, so that a slow spell of the machine does not land on one plan only,
        # each warmed up first; one query: the median over 7 different ones; the batch: best of 3.
        ones = {name: [] for name in plans}
        alls = {name: [] for name in plans}
        for i in range(7):
            for name, run in plans.items():
                run(q[(i + 1) % batch : (i + 1) % batch + 1])  # warm this plan's tables up again
                ones[name].append(_seconds(lambda: run(q[i % batch : i % batch + 1]), 1))
                if i < 3:
                    alls[name].append(_seconds(lambda: run(q), 1))
        out = {}
        for name in plans:
            one, all_ = float(np.median(ones[name])), min(alls[name])
            per_q = max(all_ - one, 0.0) / (batch - 1)
            out[name] = (max(one - per_q, 0.0), per_q)
        return out

    # --- search ---
    def radius(self, query_codes: np.ndarray, radius: int, rerank=None) -> Results:
        """Every item within Hamming distance `radius` of each query. query_codes: (nq, bits/8) uint8."""
        q = self._check_queries(query_codes)
        if radius < 0 or radius > self.bits:
            raise ParameterError(f"radius must be between 0 and the code length {self.bits}, got {radius}")
        return self._collect(len(q), *self._radius_plan(q, radius, *self.plan(radius, len(q))), rerank)

    def _radius_plan(self, q, radius, how, m):
        """(query index, position, distance) of every item within radius, by one plan, in chunks."""
        work = self._work(m, radius) if how == "mih" else len(self) * SCAN_COST_PER_ITEM
        return _concat([self._radius_part(q[a:b], radius, how, m, a) for a, b in _chunks(len(q), work)])

    def _radius_part(self, q, radius, how, m, offset):
        if how == "scan":
            qi, pos, dist = self._scan_radius(q, radius)
        else:
            qi, pos = self.mih[m].candidates(q, radius // m)
            dist = hamming_rows(self.codes[pos], q[qi]).astype(np.int64)
            keep = dist <= radius
            qi, pos, dist = qi[keep], pos[keep], dist[keep]
        return qi + offset, pos, dist

    def knn(self, query_codes: np.ndarray, k: int, rerank=None) -> Results:
        """The k nearest items by Hamming distance (all of them if fewer than k)."""
        q = self._check_queries(query_codes)
        if k <= 0:
            raise ParameterError(f"k must be positive, got {k}")
        k = min(k, len(self))
        if k == 0:
            return Results(np.zeros(len(q) + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        start = self._knn_start(k)
        if rerank is None and (start is None or self._scan_is_faster(k, start, len(q))):
            return self._scan_knn(q, k)
        return self._mih_knn(q, k, start, rerank)

    def _mih_knn(self, q, k, start, rerank) -> Results:
        work = (
            len(self) * SCAN_COST_PER_ITEM if start is None else self._work(max(self.mih), max(self.mih) * (start + 1))
        )
        parts = [self._knn_part(q[a:b], k, start, a) for a, b in _chunks(len(q), work)]
        return _truncate(self._collect(len(q), *_concat(parts), rerank), k)

    def _scan_knn(self, q, k) -> Results:
        """FAISS's exact scan, ties put in id order within each query's row (cheap: rows of k)."""
        dist, pos = self.faiss_index.search(q, k)
        key = dist.astype(np.int64) << 40 | self.ids[pos]  # ids < 2^40
        key.sort(axis=1)
        key = key.ravel()
        return Results(np.arange(len(q) + 1, dtype=np.int64) * k, key & ((1 << 40) - 1), key >> 40)

    def _knn_part(self, q, k, sub_radius, offset):
        """Sure neighbours by MIH rounds of growing substring radius, FAISS's scan for the rest."""
        out_q, out_pos, out_d = [], [], []
        todo = np.arange(len(q))
        m = max(self.mih)  # the finest split grows the ball most gently
        while len(todo) and sub_radius is not None:
            full_radius = min(m * (sub_radius + 1) - 1, self.bits)  # every item this close is a candidate
            qi, pos = self.mih[m].candidates(q[todo], sub_radius)
            dist = hamming_rows(self.codes[pos], q[todo][qi]).astype(np.int64)
            sure = dist <= full_radius
            qi, pos, dist = qi[sure], pos[sure], dist[sure]
            done = (np.bincount(qi, minlength=len(todo)) >= k) | (full_radius >= self.bits)
            take = done[qi]
            out_q.append(todo[qi[take]])
            out_pos.append(pos[take])
            out_d.append(dist[take])
            todo = todo[~done]
            sub_radius = sub_radius + 1 if self._knn_cost(sub_radius + 1) is not None else None
        if len(todo):
            dist, pos = self.faiss_index.search(q[todo], k)
            out_q.append(np.repeat(todo, k))
            out_pos.append(pos.ravel().astype(np.int64))
            out_d.append(dist.ravel().astype(np.int64))
        return np.concatenate(out_q) + offset, np.concatenate(out_pos), np.concatenate(out_d)

    def _work(self, m: int, radius: int) -> float:
        """Array elements one query touches in an MIH search (probes and candidates), for chunking."""
        mih = self.mih[m]
        return mih.probes(radius) + self.candidates_per_query(m, radius // m)

    def _knn_cost(self, sub_radius: int) -> float | None:
        """Cost of one MIH round at this substring radius, or None when a scan is cheaper."""
        m = max(self.mih)
        probes, n = self.mih[m].probes(m * sub_radius), len(self)
        cost = KNN_ROUND_COST * (probes + VERIFY_COST * self.candidates_per_query(m, sub_radius))
        return None if probes > MAX_PROBES or cost > SCAN_COST_PER_ITEM * n else cost

    def _scan_is_faster(self, k: int, start: int, nq: int) -> bool:
        """Whether FAISS's scan answers nq k-NN queries sooner than MIH rounds, by the clock (timed
        once per k where the model picks MIH), so that small batches (a server's single query) scan."""
        if k not in self._knn_clock:
            self._knn_clock[k] = self._clock(
                {"mih": lambda q: self._mih_knn(q, k, start, None), "scan": lambda q: self._scan_knn(q, k)}
            )
        clock = self._knn_clock[k]
        scan, mih = (clock[p][0] + nq * clock[p][1] for p in ("scan", "mih"))
        return scan <= SCAN_MARGIN * mih

    def _knn_start(self, k: int) -> int | None:
        """The first substring radius at which a typical query has k neighbours among its sure
        candidates (from the database's own neighbour profile), or None when scanning is cheaper."""
        if k not in self._knn_starts:
            self._knn_starts[k] = self._first_sure_radius(k)
        return self._knn_starts[k]

    def _first_sure_radius(self, k: int) -> int | None:
        m = max(self.mih)
        for sub_radius in range(self.bits // m + 1):
            if self._knn_cost(sub_radius) is None:
                return None
            if self._within[min(m * (sub_radius + 1) - 1, self.bits)] >= k:
                return sub_radius
        return None

    def candidates_per_query(self, m: int, sub_radius: int) -> float:
        """Candidates an MIH query meets at this substring radius: measured on a sample of the
        database's own codes (real codes crowd into few buckets, so the uniform estimate can be far
        too low), or the uniform estimate when even that is too many to measure."""
        key = (m, sub_radius)
        if key not in self._candidates:
            mih, n = self.mih[m], len(self)
            uniform = mih.expected_candidates(m * sub_radius, n)
            if n == 0 or uniform * ESTIMATE_SAMPLE > 2_000_000 or mih.probes(m * sub_radius) > MAX_PROBES:
                self._candidates[key] = uniform
            else:
                sample = np.random.default_rng(1).choice(n, min(n, ESTIMATE_SAMPLE), replace=False)
                qi, _ = mih.candidates(self.codes[np.sort(sample)], sub_radius)
                self._candidates[key] = max(uniform, len(qi) / len(sample))
        return self._candidates[key]

    # --- helpers ---
    def _check_queries(self, query_codes) -> np.ndarray:
        q = np.ascontiguousarray(np.asarray(query_codes), dtype=None)
        if q.ndim == 1:
            q = q[None]
        if q.dtype != np.uint8 or q.shape[1] * 8 != self.bits:
            raise ParameterError(
                f"queries must be {self.bits}-bit packed codes (n, {self.bits // 8}) uint8, got {q.dtype} {q.shape}"
            )
        return q

    def _scan_radius(self, q, radius):
        lims, dist, pos = self.faiss_index.range_search(q, radius + 1)  # FAISS keeps distances < radius
        qi = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(lims.astype(np.int64)))
        return qi, pos.astype(np.int64), dist.astype(np.int64)

    def _collect(self, nq, qi, pos, dist, rerank) -> Results:
        ids = self.ids[pos]
        if rerank is not None:
            order = np.lexsort((ids, rerank(qi, pos), dist, qi))
        else:
            order = _order(qi, dist, ids, nq, self.bits)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(qi, minlength=nq))]).astype(np.int64)
        return Results(offsets, ids[order], dist[order])


def _order(qi, dist, ids, nq: int, bits: int) -> np.ndarray:
    """Positions sorted by (query, distance, id): one argsort of a packed int64 key where the three
    fit in 63 bits (3x faster than lexsort on k-NN's candidate lists), else lexsort."""
    widths = (int(nq).bit_length(), bits.bit_length(), int(ids.max(initial=0)).bit_length())
    if sum(widths) > 63 or len(ids) == 0 or ids.min() < 0:
        return np.lexsort((ids, dist, qi))
    key = (qi.astype(np.int64) << (widths[1] + widths[2])) | (dist.astype(np.int64) << widths[2]) | ids
    return np.argsort(key)


def _fastest(clock: dict, nq: int):
    """The plan of a clock ({plan: (fixed s, per-query s)}) that answers nq queries soonest."""
    return min(clock, key=lambda p: clock[p][0] + nq * clock[p][1])


def _seconds(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


CHUNK_WORK = 4_000_000  # array elements per chunk of queries: bounds memory at a few hundred MB


def _chunks(nq: int, work_per_query: float):
    """Split nq queries into chunks whose total work stays under CHUNK_WORK."""
    size = max(1, int(CHUNK_WORK // max(work_per_query, 1.0)))
    return [(a, min(a + size, nq)) for a in range(0, nq, size)] or [(0, 0)]


def _concat(parts):
    return tuple(np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(3))


def _truncate(res: Results, k: int) -> Results:
    counts = np.minimum(res.counts(), k)
    keep = np.arange(len(res.ids)) - np.repeat(res.offsets[:-1], res.counts()) < np.repeat(counts, res.counts())
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Results(offsets, res.ids[keep], res.distances[keep])


def vector_rerank(query_vectors: np.ndarray, item_vectors: np.ndarray):
    """A tie key for Searcher: squared Euclidean distance between the query's and the item's float
    vectors (item_vectors in position order), so items at equal Hamming distance come nearest first."""

    def key(qi, pos):
        diff = item_vectors[pos] - query_vectors[qi]
        return np.einsum("ij,ij->i", diff, diff)

    return key


def neighbour_profile(codes: np.ndarray, samples: int = 256, reference: int = 20_000, seed: int = 0) -> np.ndarray:
    """within[d]: the median number of other database items within Hamming distance d of a database
    item, estimated from a sample. It tells k-NN how far a typical query must look: real codes are
    clustered, so a uniform model would badly underestimate their neighbours."""
    n, bits = len(codes), codes.shape[1] * 8
    if n == 0:
        return np.zeros(bits + 1)
    rng = np.random.default_rng(seed)
    ref = rng.choice(n, min(n, reference), replace=False)
    probe = rng.choice(n, min(n, samples), replace=False)
    d = hamming(codes[probe], codes[ref])
    hist = np.stack([np.bincount(row, minlength=bits + 1) for row in d])
    within = np.cumsum(hist, axis=1) * (n / len(ref))
    return np.maximum(np.median(within, axis=0) - 1, 0)  # minus the item itself


def searcher_arrays(s: Searcher) -> dict[str, np.ndarray]:
    """Everything a Searcher holds, as named arrays (for the on-disk cache)."""
    out = {"ids": s.ids, "codes": s.codes, "within": s._within}
    for m, mih in s.mih.items():
        out[f"mih{m}.subkeys"] = mih.subkeys
        for j, t in enumerate(mih.tables):
            out.update({f"mih{m}.{j}.{k}": v for k, v in t.arrays().items()})
    return out


def searcher_from_arrays(a: dict[str, np.ndarray]) -> Searcher:
    """Inverse of searcher_arrays, without recomputing anything."""
    from ..hashing.codes import substring_bounds
    from .hashtable import HashTable

    s = Searcher.__new__(Searcher)
    s.ids, s.codes, s._within = a["ids"], a["codes"], a["within"]
    s.bits, s.mih = s.codes.shape[1] * 8, {}
    s._forget()
    if len(s.ids) != len(s.codes):
        raise ValueError("ids and codes differ in length")
    for name in a:
        if name.endswith(".subkeys"):
            m = int(name[3 : -len(".subkeys")])
            tables = [
                HashTable.from_arrays({k.split(".")[-1]: v for k, v in a.items() if k.startswith(f"mih{m}.{j}.")})
                for j in range(m)
            ]
            s.mih[m] = MultiIndexHash(s.bits, substring_bounds(s.bits, m), a[name], tables)
    return s
