"""Choosing how a Searcher answers: a cost model in "probe units" (one hash-table probe), checked by
the clock where it cannot tell plans apart.

Plans: ("mih", m) probes m substring tables (m = 1 is bit-flip probing of the whole-code table);
("scan", 0) is FAISS's exact scan. A Planner belongs to one searcher and is consulted once per
radius and per k: it measures (candidates per query on the database's own codes, the clock) and
hands back plain data (a clock per radius, a KnnPlan per k) that the searcher keeps and decides
from on every call. It reads the searcher's public arrays, runs its public plan methods, and never
imports searcher.py.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...hashing.codes import one_bit_away
from ...hashing.timing import best_seconds
from .multi_index import MultiIndexHash

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

Plan = tuple[str, int]
Clock = dict  # {plan name: (fixed seconds per call, seconds per query)}


@dataclass(frozen=True)
class KnnPlan:
    """How a searcher answers k-NN for one k. start/stop: the substring radii of the MIH rounds
    (start None: FAISS's scan for every query); clock: {"mih" | "scan": (fixed s, per-query s)},
    timed where the model picked rounds (None otherwise); work: array elements per query, for
    chunking batches."""

    start: int | None
    stop: int | None
    clock: Clock | None
    work: float


class Planned(Protocol):
    """What the planner needs of a searcher (Searcher in searcher.py)."""

    bits: int
    codes: np.ndarray  # (n, bits/8) uint8 in position order
    mih: dict[int, MultiIndexHash]  # m -> tables; m = 1 (bit-flip) only for codes of at most 64 bits
    within: np.ndarray  # neighbour profile: within[d], the median number of items within distance d

    def __len__(self) -> int: ...

    def run_radius_plan(self, q: np.ndarray, radius: int, how: str, m: int) -> tuple: ...

    def mih_knn(self, q: np.ndarray, k: int, plan: KnnPlan, rerank=None): ...

    def scan_knn(self, q: np.ndarray, k: int): ...

    def compiled_knn(self, k: int) -> bool: ...

    @property
    def knn_tables(self): ...  # knn_tables.KnnTables


class Planner:
    """The plans of one searcher, and the memos of planning (all measured on first use)."""

    def __init__(self, searcher: Planned):
        # a weak reference: searcher and planner would otherwise form a cycle, and a replaced
        # searcher (hundreds of MB at 10^7 codes) would wait for the garbage collector
        self._searcher = weakref.ref(searcher)
        self.candidates: dict[tuple[int, int], float] = {}  # (m, substring radius) -> per query

    @property
    def searcher(self) -> Planned:
        return self._searcher()

    # --- radius search ---
    def radius_clock(self, radius: int) -> Clock:
        """{plan: (fixed s, per-query s)} of the plans worth considering at this radius: the
        probe-unit model ranks every feasible plan; those within CLOCK_WITHIN of the best are timed
        and the clock decides (the searcher picks the fastest for each batch size)."""
        s = self.searcher
        ranked = sorted(self.radius_costs(radius))
        close = [p for c, p in ranked if c <= CLOCK_WITHIN * ranked[0][0]]
        if len(close) == 1 or not len(s):
            return {close[0]: (0.0, 0.0)}
        return self.clock({p: (lambda q, p=p: s.run_radius_plan(q, radius, *p)) for p in close})

    def radius_costs(self, radius: int) -> list[tuple[float, Plan]]:
        """(model cost in probe units, plan) of every feasible plan."""
        s = self.searcher
        # Every method pays for the results it returns; a scan pays for them on top of the scan.
        results = self.candidates_per_query(1, radius) if 1 in s.mih else s.within[min(radius, s.bits)]
        costs = [(SCAN_COST_PER_ITEM * len(s) + VERIFY_COST * results, ("scan", 0))]
        for m, mih in s.mih.items():
            if mih.probes(radius) <= MAX_PROBES:
                costs.append((mih.probes(radius) + VERIFY_COST * self.candidates_per_query(m, radius // m), ("mih", m)))
        return costs

    def work(self, how: str, m: int, radius: int) -> float:
        """Array elements one query touches (probes and candidates, or a scan), for chunking batches."""
        s = self.searcher
        if how == "scan":
            return len(s) * SCAN_COST_PER_ITEM
        return s.mih[m].probes(radius) + self.candidates_per_query(m, radius // m)

    # --- k-NN ---
    def knn_plan(self, k: int, compiled: bool = True) -> KnnPlan:
        """How to find k neighbours: MIH rounds (finest split) from the first substring radius at
        which a typical query has k sure neighbours (the database's own neighbour profile) up to the
        last one cheaper than a scan, then FAISS's scan for the queries left; or the scan alone. Where
        the model picks rounds, both are timed, so that small batches (a server's one query) scan
        when that is faster. compiled (where the searcher allows it): knn_tables' rounds from
        substring radius 0 to their last, timed against the scan."""
        s = self.searcher
        if compiled and s.compiled_knn(k):  # rounds from 0 up to the last one cheaper than a scan, then timed
            plan = KnnPlan(0, s.knn_tables.max_radius, None, len(s) * SCAN_COST_PER_ITEM)
            timed = self.clock({"mih": lambda q: s.mih_knn(q, k, plan), "scan": lambda q: s.scan_knn(q, k)})
            return KnnPlan(plan.start, plan.stop, timed, plan.work)
        m = max(s.mih)
        start = self._first_sure_radius(k)
        if start is None:
            return KnnPlan(None, None, None, len(s) * SCAN_COST_PER_ITEM)
        stop = start
        while stop < s.bits // m and self.knn_round_cost(stop + 1) is not None:
            stop += 1
        plan = KnnPlan(start, stop, None, self.work("mih", m, m * (start + 1)))
        if not compiled and s.compiled_knn(k):
            return plan  # for re-ranking, which always runs these rounds: nothing to time
        timed = self.clock({"mih": lambda q: s.mih_knn(q, k, plan), "scan": lambda q: s.scan_knn(q, k)})
        return KnnPlan(start, stop, timed, plan.work)

    def _first_sure_radius(self, k: int) -> int | None:
        s = self.searcher
        m = max(s.mih)
        for sub_radius in range(s.bits // m + 1):
            if self.knn_round_cost(sub_radius) is None:
                return None
            if s.within[min(m * (sub_radius + 1) - 1, s.bits)] >= k:
                return sub_radius
        return None

    def knn_round_cost(self, sub_radius: int) -> float | None:
        """Cost of one MIH round (finest split) at this substring radius, or None when a scan is cheaper."""
        s = self.searcher
        m = max(s.mih)
        probes, n = s.mih[m].probes(m * sub_radius), len(s)
        cost = KNN_ROUND_COST * (probes + VERIFY_COST * self.candidates_per_query(m, sub_radius))
        return None if probes > MAX_PROBES or cost > SCAN_COST_PER_ITEM * n else cost

    # --- measurements ---
    def candidates_per_query(self, m: int, sub_radius: int) -> float:
        """Candidates an MIH query meets at this substring radius: measured on a sample of the
        database's own codes (real codes crowd into few buckets, so the uniform estimate can be far
        too low), or the uniform estimate when even that is too many to measure."""
        key = (m, sub_radius)
        if key not in self.candidates:
            s = self.searcher
            mih, n = s.mih[m], len(s)
            uniform = mih.expected_candidates(m * sub_radius, n)
            if n == 0 or uniform * ESTIMATE_SAMPLE > 2_000_000 or mih.probes(m * sub_radius) > MAX_PROBES:
                self.candidates[key] = uniform
            else:
                sample = np.random.default_rng(1).choice(n, min(n, ESTIMATE_SAMPLE), replace=False)
                qi, _ = mih.candidates(s.codes[np.sort(sample)], sub_radius)
                self.candidates[key] = max(uniform, len(qi) / len(sample))
        return self.candidates[key]

    def clock(self, plans: dict[object, Callable[[np.ndarray], object]]) -> Clock:
        """Seconds per call of each plan as (fixed, per query), from timing it on 1 and on a batch of
        database codes with one bit flipped (the batch bounded so that a scan takes ~0.1 s)."""
        s = self.searcher
        batch = int(np.clip(4e7 / max(len(s), 1), 8, 256))
        q = one_bit_away(s.codes, batch, np.random.default_rng(2))
        # The plans take turns, so that a slow spell of the machine does not land on one plan only,
        # each warmed up first; one query: the median over 7 different ones; the batch: best of 3.
        ones: dict[object, list[float]] = {name: [] for name in plans}
        alls: dict[object, list[float]] = {name: [] for name in plans}
        for i in range(7):
            for name, run in plans.items():
                run(q[(i + 1) % batch : (i + 1) % batch + 1])  # warm this plan's tables up again
                ones[name].append(best_seconds(lambda run=run, i=i: run(q[i % batch : i % batch + 1]), 1))
                if i < 3:
                    alls[name].append(best_seconds(lambda run=run: run(q), 1))
        out = {}
        for name in plans:
            one, all_ = float(np.median(ones[name])), min(alls[name])
            per_q = max(all_ - one, 0.0) / (batch - 1)
            out[name] = (max(one - per_q, 0.0), per_q)
        return out
