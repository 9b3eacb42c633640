"""Hamming search over an in-memory set of codes: radius (Hamming ball) and k-NN, in batches.

Three ways to answer, picked per call from what the Planner (planner.py) measured once per radius and k:
  bit-flip  probe the whole-code table with every code of the ball (codes of at most 64 bits);
  MIH       multi-index hashing: m substring tables probed at radius floor(r/m), then verified
            (k-NN over codes of at most 64 bits: compiled, knn_tables.py);
  scan      FAISS's exact scan (range_search / k-NN on IndexBinaryFlat), when probing costs more;
            numpy's for a few queries while FAISS is not imported (numpy_scans).
All three return exactly the same set; results are ordered by (distance, tie key, item id).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ...hashing.codes import hamming, hamming_rows, substring_bounds
from ...hashing.errors import ParameterError
from . import knn_tables
from .hashtable import HashTable
from .knn_tables import KnnTables
from .multi_index import MultiIndexHash, choose_m
from .planner import SCAN_MARGIN, KnnPlan, Planner, Plans


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
    """Search structures over codes; ids[i] is the item id of codes[i]. Immutable: rebuild to change.

    Public state: ids, codes, bits, mih ({m: MultiIndexHash}; m = 1 is the bit-flip table), within
    (the neighbour profile); knn_plan(k) and plan(radius) say how a call is answered."""

    def __init__(self, ids: np.ndarray, codes: np.ndarray, m: int | None = None):
        ids = np.asarray(ids, dtype=np.int64)
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or len(codes) != len(ids):
            raise ParameterError(f"{len(ids)} ids for codes of shape {codes.shape}")
        bits = codes.shape[1] * 8
        mih = {}
        if bits <= 64:
            mih[1] = MultiIndexHash.build(codes, 1)  # the bit-flip table
        m = m or max(2, choose_m(bits, len(ids)))  # k-NN needs a split to grow its radius gently
        if m not in mih:
            mih[m] = MultiIndexHash.build(codes, m)
        self._adopt(ids, codes, mih, neighbour_profile(codes))

    def _adopt(self, ids, codes, mih, within) -> None:
        """Take the structures as they are; the FAISS index and the planner's memos come on first use."""
        self.ids, self.codes, self.mih, self.within = ids, codes, mih, within
        self.bits = codes.shape[1] * 8
        self._faiss = None  # FAISS's flat index over the codes, made on first use
        self._knn_tables = None  # the compiled k-NN's tables, made on first use
        self._build_lock = threading.Lock()
        # the cost model over these structures: it holds their arrays, not this searcher (a replaced
        # searcher, hundreds of MB at 10^7 codes, is freed at once, not by the garbage collector)
        self._planner = Planner(codes, mih, within)
        # what the planner decided, as plain data, consulted on every call: radius -> clock
        # {plan: (fixed s, per-query s)}; k -> KnnPlan; (plan, radius) -> work per query
        self._radius_clocks: dict[int, dict] = {}
        self._knn_plans: dict[int, KnnPlan] = {}
        self._rerank_plans: dict[int, KnnPlan] = {}  # k-NN with re-ranking where k-NN runs compiled
        self._work: dict[tuple, float] = {}
        self.new_plans = False  # measured since the last plans() export: worth keeping

    def plans(self) -> Plans:
        """What the planner measured (radius clocks, k-NN plans): the disk cache keeps it beside the
        structures (cache.save_plans), so that the next process (a CLI call) skips the timing."""
        self.new_plans = False
        radius, knn = list(self._radius_clocks.items()), list(self._knn_plans.items())  # other threads add
        return Plans(dict(radius), dict(knn))

    def adopt_plans(self, plans: Plans) -> None:
        """Take plans() of a searcher over the same structures; none of them if a clock names a plan
        these structures lack (a plan only decides speed: each is measured again when missing)."""
        allowed = {("scan", 0), *(("mih", m) for m in self.mih)}
        if any(not clock or not set(clock) <= allowed for clock in plans.radius.values()):
            return
        self._radius_clocks.update(plans.radius)
        self._knn_plans.update(plans.knn)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything the searcher holds but its FAISS index, as named arrays (for the on-disk cache)."""
        out = {"ids": self.ids, "codes": self.codes, "within": self.within}
        for m, mih in self.mih.items():
            out[f"mih{m}.subkeys"] = mih.subkeys
            for j, t in enumerate(mih.tables):
                out.update({f"mih{m}.{j}.{k}": v for k, v in t.arrays().items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Searcher:
        """Inverse of to_arrays, without recomputing anything (FAISS's flat index is made on first
        use). ValueError or KeyError when inconsistent."""
        ids, codes = arrays["ids"], arrays["codes"]
        if codes.ndim != 2 or len(ids) != len(codes):
            raise ValueError("ids and codes differ in length")
        bits, mih = codes.shape[1] * 8, {}
        for name in arrays:
            if name.endswith(".subkeys"):
                m = int(name[3 : -len(".subkeys")])
                tables = [
                    HashTable.from_arrays(
                        {k.split(".")[-1]: v for k, v in arrays.items() if k.startswith(f"mih{m}.{j}.")}
                    )
                    for j in range(m)
                ]
                mih[m] = MultiIndexHash(bits, substring_bounds(bits, m), arrays[name], tables)
        s = cls.__new__(cls)
        s._adopt(ids, codes, mih, arrays["within"])
        return s

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def faiss_index(self):
        """IndexBinaryFlat over the codes in position order (built on first use)."""
        index = self._faiss
        if index is None:
            import faiss

            index = faiss.IndexBinaryFlat(self.bits)
            if len(self.codes):
                index.add(self.codes)
            self._faiss = index  # published only once filled: another thread may be searching
        return index

    @property
    def knn_tables(self) -> KnnTables:
        """The compiled k-NN's substring tables with their copies of the codes (built on first use,
        once: threads of a server that ask together wait for the one build, 480 MB at 10M codes)."""
        if self._knn_tables is None:
            with self._build_lock:
                if self._knn_tables is None:
                    self._knn_tables = KnnTables.build(self.codes, self.mih.get(knn_tables.split(self.bits)))
        return self._knn_tables

    def compiled_knn(self, k: int) -> bool:
        """Whether k-NN for this k may run compiled (knn_tables.py): codes of at most 64 bits, k up to
        knn_tables.MAX_K, numba importable, and enough items that a scan is worth beating (below
        COMPILED_KNN_FROM a scan takes under 0.1 ms a query, and the tables would cost numba's
        import and their memory for nothing)."""
        return self.bits <= 64 and k <= knn_tables.MAX_K and len(self) >= COMPILED_KNN_FROM and knn_tables.available()

    def nbytes(self) -> int:
        """Memory of the in-memory structures (FAISS's copy of the codes and k-NN's tables included)."""
        extra = 0 if self._knn_tables is None else self._knn_tables.nbytes()
        return self.ids.nbytes + self.codes.nbytes * 2 + sum(t.nbytes() for t in self.mih.values()) + extra

    def plan(self, radius: int, nq: int = 1000) -> tuple[str, int]:
        """The plan radius() uses for nq queries: ("mih", m) (m = 1 is bit-flip) or ("scan", 0),
        whichever the planner's clock (taken once per radius) says answers nq queries soonest."""
        clock = self._radius_clocks.get(radius)
        if clock is None:
            clock = self._radius_clocks[radius] = self._planner.radius_clock(radius, self.run_radius_plan)
            self.new_plans = True
        return min(clock, key=lambda p: clock[p][0] + nq * clock[p][1])

    # --- radius search ---
    def radius(self, query_codes: np.ndarray, radius: int, rerank=None) -> Results:
        """Every item within Hamming distance `radius` of each query. query_codes: (nq, bits/8) uint8."""
        q = self._check_queries(query_codes)
        if radius < 0 or radius > self.bits:
            raise ParameterError(f"radius must be between 0 and the code length {self.bits}, got {radius}")
        return self._collect(len(q), *self.run_radius_plan(q, radius, *self.plan(radius, len(q))), rerank)

    def run_radius_plan(self, q, radius, how, m):
        """(query index, position, distance) of every item within radius, by one plan, in chunks."""
        work = self._work.get((how, m, radius))
        if work is None:
            work = self._work[how, m, radius] = self._planner.work(how, m, radius)
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

    def _scan_radius(self, q, radius):
        if numpy_scans(len(q), len(self)):
            d = hamming(q, self.codes)
            qi, pos = np.nonzero(d <= radius)
            return qi.astype(np.int64), pos.astype(np.int64), d[qi, pos].astype(np.int64)
        lims, dist, pos = self.faiss_index.range_search(q, radius + 1)  # FAISS keeps distances < radius
        qi = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(lims.astype(np.int64)))
        return qi, pos.astype(np.int64), dist.astype(np.int64)

    # --- k-NN ---
    def knn(self, query_codes: np.ndarray, k: int, rerank=None) -> Results:
        """The k nearest items by Hamming distance (all of them if fewer than k)."""
        q = self._check_queries(query_codes)
        if k <= 0:
            raise ParameterError(f"k must be positive, got {k}")
        k = min(k, len(self))
        if k == 0:
            return Results(np.zeros(len(q) + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if rerank is not None and self.compiled_knn(k):  # numpy's rounds, planned for themselves
            plan = self._rerank_plans.get(k) or self._rerank_plans.setdefault(k, self.knn_plan(k, False))
            return self.mih_knn(q, k, plan, rerank)
        plan = self._knn_plans.get(k)
        if plan is None:
            plan = self._knn_plans[k] = self.knn_plan(k)
            self.new_plans = True
        if rerank is None and (plan.start is None or _scan_first(plan.clock, len(q))):
            return self.scan_knn(q, k)
        return self.mih_knn(q, k, plan, rerank)

    def knn_plan(self, k: int, compiled: bool = True) -> KnnPlan:
        """How knn() answers for this k: where compiled_knn(k) allows, the compiled rounds from
        substring radius 0 to their last; else numpy's rounds the planner picks. Rounds are timed
        against FAISS's scan (so that small batches, a server's one query, scan when that is faster),
        except numpy's rounds where k-NN runs compiled (compiled False: for re-ranking, which always
        runs them)."""
        if compiled and self.compiled_knn(k):
            plan = self._planner.compiled_rounds(self.knn_tables.max_radius)
        else:
            plan = self._planner.knn_rounds(k)
            if plan.start is None or self.compiled_knn(k):
                return plan  # the scan alone, or re-ranking's rounds: nothing to time
        return self._planner.timed(plan, lambda q: self.mih_knn(q, k, plan), lambda q: self.scan_knn(q, k))

    @property
    def planner(self) -> SimpleNamespace:
        """planner.knn_plan(k, compiled): the searcher's own planning, as older callers ask for it.
        Made per use, so that nothing the searcher keeps refers back to it."""
        return SimpleNamespace(knn_plan=self.knn_plan)

    def mih_knn(self, q, k, plan: KnnPlan, rerank=None) -> Results:
        """k-NN by MIH rounds over the plan's substring radii (none: FAISS's scan for every query):
        compiled where compiled_knn() allows and no re-ranking asks for every tied candidate."""
        if rerank is None and self.compiled_knn(k):
            return self._compiled_knn(q, k, plan.stop)
        parts = [self._knn_part(q[a:b], k, plan, a) for a, b in _chunks(len(q), plan.work)]
        return truncate(self._collect(len(q), *_concat(parts), rerank), k)

    def scan_knn(self, q, k) -> Results:
        """The exact scan (_scan: FAISS's, or numpy's), ties put in id order within each query's row
        (cheap: rows of k)."""
        return self._rows(*self._scan(q, k))

    def _scan(self, q, k) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest positions of each query and their distances, both (nq, k): FAISS's flat
        index, or numpy where numpy_scans() says so, which returns what FAISS does (FAISS keeps the
        lowest positions among the k-th distance's ties, and so does the packed key here)."""
        if not numpy_scans(len(q), len(self)):
            return self.faiss_index.search(q, k)
        key = hamming(q, self.codes).astype(np.int64) << 40 | np.arange(len(self), dtype=np.int64)
        key = np.partition(key, k - 1, axis=1)[:, :k] if k < len(self) else key
        return key >> 40, key & ((1 << 40) - 1)

    def _compiled_knn(self, q, k, stop) -> Results:
        """knn_tables' rounds up to substring radius stop, FAISS's scan for the queries they leave;
        ties put in id order within each query's row, as scan_knn does."""
        dist, pos = np.zeros((len(q), k), np.int64), np.zeros((len(q), k), np.int64)
        for a in range(0, len(q), COMPILED_BATCH):
            b = min(a + COMPILED_BATCH, len(q))
            d, p, done = self.knn_tables.search(q[a:b], k, stop)
            if not done.all():
                rest = np.flatnonzero(~done)
                d[rest], p[rest] = self._scan(q[a:b][rest], k)
            dist[a:b], pos[a:b] = d, p
        return self._rows(dist, pos)

    def _rows(self, dist: np.ndarray, pos: np.ndarray) -> Results:
        """Results of k per query from (nq, k) distances and positions, ties put in id order within
        each row: one sort of a packed (distance, id) key (ids < 2^40)."""
        nq, k = dist.shape
        key = dist.astype(np.int64) << 40 | self.ids[pos]
        key.sort(axis=1)
        key = key.ravel()
        return Results(np.arange(nq + 1, dtype=np.int64) * k, key & ((1 << 40) - 1), key >> 40)

    def _knn_part(self, q, k, plan: KnnPlan, offset):
        """Sure neighbours by MIH rounds of growing substring radius, FAISS's scan for the rest."""
        out_q, out_pos, out_d = [], [], []
        todo, sub_radius = np.arange(len(q)), plan.start
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
            sub_radius = sub_radius + 1 if sub_radius < plan.stop else None  # beyond stop, the scan is cheaper
        if len(todo):
            dist, pos = self._scan(q[todo], k)
            out_q.append(np.repeat(todo, k))
            out_pos.append(pos.ravel().astype(np.int64))
            out_d.append(dist.ravel().astype(np.int64))
        return np.concatenate(out_q) + offset, np.concatenate(out_pos), np.concatenate(out_d)

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

    def _collect(self, nq, qi, pos, dist, rerank) -> Results:
        ids = self.ids[pos]
        if rerank is not None:
            order = np.lexsort((ids, rerank(qi, pos), dist, qi))
        else:
            order = _order(qi, dist, ids, nq, self.bits)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(qi, minlength=nq))]).astype(np.int64)
        return Results(offsets, ids[order], dist[order])


def numpy_scans(nq: int, n: int) -> bool:
    """Whether an exact scan of n codes for nq queries runs in numpy rather than FAISS: only while
    FAISS is not imported in this process (a command's one query: its import, ~0.1-0.2 s, costs more
    than the scan) and the scan is small (NUMPY_SCAN_PAIRS: numpy takes ~20-40 ns a pair, FAISS ~1).
    Both return the same items, so the choice decides speed only."""
    return nq * n <= NUMPY_SCAN_PAIRS and "faiss" not in sys.modules


def _scan_first(clock: dict, nq: int) -> bool:
    """Whether FAISS's scan answers nq k-NN queries no later than MIH rounds would, by the clock
    (within SCAN_MARGIN: the scan's cost is the steadier)."""
    scan, mih = (clock[p][0] + nq * clock[p][1] for p in ("scan", "mih"))
    return scan <= SCAN_MARGIN * mih


def _order(qi, dist, ids, nq: int, bits: int) -> np.ndarray:
    """Positions sorted by (query, distance, id): one argsort of a packed int64 key where the three
    fit in 63 bits (3x faster than lexsort on k-NN's candidate lists), else lexsort."""
    widths = (int(nq).bit_length(), bits.bit_length(), int(ids.max(initial=0)).bit_length())
    if sum(widths) > 63 or len(ids) == 0 or ids.min() < 0:
        return np.lexsort((ids, dist, qi))
    key = (qi.astype(np.int64) << (widths[1] + widths[2])) | (dist.astype(np.int64) << widths[2]) | ids
    return np.argsort(key)


NUMPY_SCAN_PAIRS = 2_000_000  # query-item pairs: ~40-80 ms in numpy, under FAISS's import
COMPILED_KNN_FROM = 100_000  # items; 64-bit random codes, k = 10, 1,000 queries: 0.75x a scan at 100k, 2.5x at 300k
COMPILED_BATCH = 4096  # queries per compiled call: a round's sorted probes stay under ~60 MB
CHUNK_WORK = 4_000_000  # array elements per chunk of queries: bounds memory at a few hundred MB


def _chunks(nq: int, work_per_query: float):
    """Split nq queries into chunks whose total work stays under CHUNK_WORK."""
    size = max(1, int(CHUNK_WORK // max(work_per_query, 1.0)))
    return [(a, min(a + size, nq)) for a in range(0, nq, size)] or [(0, 0)]


def _concat(parts):
    return tuple(np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(3))


def truncate(res: Results, k: int) -> Results:
    """The first k results of each query (all of a query's when it has fewer)."""
    if k <= 0:
        raise ParameterError(f"k must be positive, got {k}")
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
