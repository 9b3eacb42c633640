"""Choosing how a Searcher answers: a cost model in "probe units" (one hash-table probe), checked by
the clock where it cannot tell plans apart.

Plans: ("mih", m) probes m substring tables (m = 1 is bit-flip probing of the whole-code table);
("scan", 0) is FAISS's exact scan. A Planner is made over one set of search structures (the codes,
their substring tables, their neighbour profile), never over the searcher: it models costs, and
where the model cannot tell plans apart it times the callables it is handed. It hands back plain
data (a clock per radius, a KnnPlan per k), which the searcher keeps and decides from on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
# Probes a measurement holds at once: all 64 sampled queries of 64-bit codes at radius 4 (679,121
# probes each) held 1.9 GB in one go
PROBE_CHUNK = 1 << 21

Plan = tuple[str, int]
Clock = dict  # {plan name: (fixed seconds per call, seconds per query)}
Run = Callable[[np.ndarray], object]  # a plan to time: query codes (nq, bits/8) uint8 -> anything


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


@dataclass
class Plans:
    """What was measured for one set of structures, as plain data: radius -> Clock {("mih" | "scan",
    m): (fixed s, per-query s)}, k -> KnnPlan. The disk cache keeps it (cache.py)."""

    radius: dict[int, Clock] = field(default_factory=dict)
    knn: dict[int, KnnPlan] = field(default_factory=dict)


class Planner:
    """The cost model of one set of search structures, and its memos (measured on first use).

    codes: (n, bits/8) uint8 in position order; mih: {m: MultiIndexHash} (m = 1, bit-flip, only for
    codes of at most 64 bits); within: the neighbour profile, within[d] the median number of items
    within distance d. The planner keeps these arrays, never the searcher that owns them."""

    def __init__(self, codes: np.ndarray, mih: dict[int, MultiIndexHash], within: np.ndarray):
        self.codes, self.mih, self.within = codes, mih, within
        self.bits, self.n = codes.shape[1] * 8, len(codes)
        self.candidates: dict[tuple[int, int], float] = {}  # (m, substring radius) -> per query

    # --- radius search ---
    def radius_clock(self, radius: int, run: Callable[[np.ndarray, int, str, int], object]) -> Clock:
        """{plan: (fixed s, per-query s)} of the plans worth considering at this radius: the
        probe-unit model ranks every feasible plan; those within CLOCK_WITHIN of the best are timed
        (run(query codes, radius, how, m) runs one) and the clock decides (the searcher picks the
        fastest for each batch size)."""
        ranked = sorted(self.radius_costs(radius))
        close = [p for c, p in ranked if c <= CLOCK_WITHIN * ranked[0][0]]
        if len(close) == 1 or not self.n:
            return {close[0]: (0.0, 0.0)}
        return self.clock({p: (lambda q, p=p: run(q, radius, *p)) for p in close})

    def radius_costs(self, radius: int) -> list[tuple[float, Plan]]:
        """(model cost in probe units, plan) of every feasible plan."""
        # Every method pays for the results it returns; a scan pays for them on top of the scan.
        results = self.candidates_per_query(1, radius) if 1 in self.mih else self.within[min(radius, self.bits)]
        costs = [(SCAN_COST_PER_ITEM * self.n + VERIFY_COST * results, ("scan", 0))]
        for m, mih in self.mih.items():
            if mih.probes(radius) <= MAX_PROBES:
                costs.append((mih.probes(radius) + VERIFY_COST * self.candidates_per_query(m, radius // m), ("mih", m)))
        return costs

    def work(self, how: str, m: int, radius: int) -> float:
        """Array elements one query touches (probes and candidates, or a scan), for chunking batches."""
        if how == "scan":
            return self.n * SCAN_COST_PER_ITEM
        return self.mih[m].probes(radius) + self.candidates_per_query(m, radius // m)

    # --- k-NN ---
    def knn_rounds(self, k: int) -> KnnPlan:
        """How to find k neighbours by numpy's MIH rounds (finest split), untimed: from the first
        substring radius at which a typical query has k sure neighbours (the database's own
        neighbour profile) up to the last one cheaper than a scan, then FAISS's scan for the queries
        left; or the scan alone (start None) where no round is cheaper."""
        m = max(self.mih)
        start = self._first_sure_radius(k)
        if start is None:
            return KnnPlan(None, None, None, self.n * SCAN_COST_PER_ITEM)
        stop = start
        while stop < self.bits // m and self.knn_round_cost(stop + 1) is not None:
            stop += 1
        return KnnPlan(start, stop, None, self.work("mih", m, m * (start + 1)))

    def compiled_rounds(self, stop: int) -> KnnPlan:
        """The compiled rounds (knn_tables.py) from substring radius 0 up to stop, untimed."""
        return KnnPlan(0, stop, None, self.n * SCAN_COST_PER_ITEM)

    def timed(self, plan: KnnPlan, mih: Run, scan: Run) -> KnnPlan:
        """The plan with its clock: mih runs its rounds, scan FAISS's scan, on the same queries."""
        return KnnPlan(plan.start, plan.stop, self.clock({"mih": mih, "scan": scan}), plan.work)

    def _first_sure_radius(self, k: int) -> int | None:
        m = max(self.mih)
        for sub_radius in range(self.bits // m + 1):
            if self.knn_round_cost(sub_radius) is None:
                return None
            if self.within[min(m * (sub_radius + 1) - 1, self.bits)] >= k:
                return sub_radius
        return None

    def knn_round_cost(self, sub_radius: int) -> float | None:
        """Cost of one MIH round (finest split) at this substring radius, or None when a scan is cheaper."""
        m = max(self.mih)
        probes = self.mih[m].probes(m * sub_radius)
        cost = KNN_ROUND_COST * (probes + VERIFY_COST * self.candidates_per_query(m, sub_radius))
        return None if probes > MAX_PROBES or cost > SCAN_COST_PER_ITEM * self.n else cost

    # --- measurements ---
    def candidates_per_query(self, m: int, sub_radius: int) -> float:
        """Candidates an MIH query meets at this substring radius: measured on a sample of the
        database's own codes (real codes crowd into few buckets, so the uniform estimate can be far
        too low), or the uniform estimate when even that is too many to measure."""
        key = (m, sub_radius)
        if key not in self.candidates:
            mih, n = self.mih[m], self.n
            uniform = mih.expected_candidates(m * sub_radius, n)
            if n == 0 or uniform * ESTIMATE_SAMPLE > 2_000_000 or mih.probes(m * sub_radius) > MAX_PROBES:
                self.candidates[key] = uniform
            else:
                sample = np.sort(np.random.default_rng(1).choice(n, min(n, ESTIMATE_SAMPLE), replace=False))
                step = max(1, PROBE_CHUNK // max(mih.probes(m * sub_radius), 1))  # the probes held at once
                met = sum(
                    len(mih.candidates(self.codes[sample[i : i + step]], sub_radius)[0])
                    for i in range(0, len(sample), step)
                )
                self.candidates[key] = max(uniform, met / len(sample))
        return self.candidates[key]

    def clock(self, plans: dict[object, Run]) -> Clock:
        """Seconds per call of each plan as (fixed, per query), from timing it on 1 and on a batch of
        database codes with one bit flipped (the batch bounded so that a scan takes ~0.1 s)."""
        batch = int(np.clip(4e7 / max(self.n, 1), 8, 256))
        q = one_bit_away(self.codes, batch, np.random.default_rng(2))
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
