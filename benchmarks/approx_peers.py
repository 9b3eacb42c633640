"""Approximate k-NN peers of `semhash bench search`: USearch's HNSW, FAISS's HNSW and IVF over
binary codes, each swept from its cheapest setting up and compared at the fastest setting whose
recall@10 (tie-aware, against the exact answer) is at least TARGET_RECALL."""

from __future__ import annotations

import time
from contextlib import contextmanager

import faiss
import numpy as np

from ..hashing.codes import hamming_rows
from ..hashing.timing import best_seconds

K = 10  # k of every k-NN figure
SINGLE = 200  # queries timed one per call
# The approximate peers' standard parameters: HNSW graphs of M = 16 links per node built with
# efConstruction = 128 (USearch's defaults; FAISS's are M = 32, efConstruction = 40: the same graph
# in both libraries, and half the build time of M = 32, measured at 50,000 codes); efSearch and
# IVF's nprobe swept from the cheapest setting up.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
EF_SEARCH = (16, 32, 64, 128, 256, 512, 1024)
NPROBE = (1, 4, 16, 64, 256, 1024)
TARGET_RECALL = 0.9  # a peer is compared at its fastest setting with at least this recall@10
STOP_RECALL = 0.99  # a sweep stops once a setting reaches this recall@10


def best_qps(fn, nq: int, repeats: int = 3) -> float:
    """Queries per second of fn(), which answers nq queries: the best of `repeats` runs."""
    return nq / best_seconds(fn, repeats)


def recall_at_k(codes: np.ndarray, q: np.ndarray, exact_dist: np.ndarray, ids: np.ndarray, k: int = K) -> float:
    """Tie-aware recall@k: the fraction of the nq * k exact neighbours a method found, where any
    returned item whose true Hamming distance is at most the exact k-th distance counts as correct
    (an item tied with the k-th neighbour is as good an answer; faiss/contrib/evaluation.py compares
    k-NN results the same way). ids: (nq, >= k) item rows, -1 for none; only the first k count,
    and an id returned twice counts once. exact_dist: (nq, >= k) the exact distances, ascending."""
    ids = np.asarray(ids, dtype=np.int64)[:, :k]
    nq, width = ids.shape
    valid = (ids >= 0) & (ids < len(codes))
    rows = codes[np.where(valid, ids, 0).ravel()]
    dist = hamming_rows(rows, np.repeat(q, width, axis=0)).reshape(nq, width)
    good = valid & (dist <= np.asarray(exact_dist)[:, k - 1 : k])
    order = np.argsort(np.where(valid, ids, -1), axis=1, kind="stable")
    sorted_ids = np.take_along_axis(ids, order, axis=1)
    first = np.ones_like(good)
    first[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    return float((np.take_along_axis(good, order, axis=1) & first).sum() / (nq * k))


def results_matrix(res, k: int) -> np.ndarray:
    """Our ragged Results as an (nq, k) matrix of ids, -1 where a query has fewer than k."""
    out = np.full((len(res), k), -1, dtype=np.int64)
    counts = np.minimum(res.counts(), k)
    for i in range(len(res)):
        out[i, : counts[i]] = res[i][0][:k]
    return out


def _usearch_peer(codes: np.ndarray, threads: int, rng):
    """USearch's HNSW over packed bits with its Hamming metric; its knob: expansion_search (ef)."""
    from usearch.index import Index as USearchIndex

    u = USearchIndex(
        ndim=codes.shape[1] * 8, metric="hamming", dtype="b1", connectivity=HNSW_M, expansion_add=HNSW_EF_CONSTRUCTION
    )
    u.add(np.arange(len(codes)), codes, threads=threads)

    def set_ef(ef: int) -> None:
        u.expansion_search = ef

    def search(x: np.ndarray) -> np.ndarray:
        m = u.search(x, K, threads=1)
        ids = np.atleast_2d(m.keys).astype(np.int64)
        counts = np.atleast_1d(getattr(m, "counts", ids.shape[1]))  # (one query: Matches, no counts)
        ids[np.arange(ids.shape[1])[None, :] >= counts[:, None]] = -1
        return ids

    params = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "metric": "hamming", "dtype": "b1"}
    return params, "ef_search", EF_SEARCH, set_ef, search


def _faiss_hnsw_peer(codes: np.ndarray, threads: int, rng):
    """FAISS's IndexBinaryHNSW; its knob: efSearch."""
    index = faiss.IndexBinaryHNSW(codes.shape[1] * 8, HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    with _faiss_threads(threads):
        index.add(codes)

    def set_ef(ef: int) -> None:
        index.hnsw.efSearch = ef

    params = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    return params, "ef_search", EF_SEARCH, set_ef, lambda x: index.search(x, K)[1]


def _faiss_ivf_peer(codes: np.ndarray, threads: int, rng):
    """FAISS's IndexBinaryIVF, nlist = 4 sqrt(N) (at most N / 39: FAISS's least points per
    centroid), trained on at most 64 points per list; its knob: nprobe."""
    n, bits = codes.shape[0], codes.shape[1] * 8
    nlist = max(1, min(int(round(4 * np.sqrt(n))), n // 39))
    index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)  # (FAISS keeps the quantizer alive)
    index.cp.verbose = False
    sample = codes[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
    with _faiss_threads(threads):
        index.train(sample)
        index.add(codes)

    def set_nprobe(nprobe: int) -> None:
        index.nprobe = nprobe

    params = {"nlist": nlist, "train_points": len(sample), "quantizer": "IndexBinaryFlat"}
    values = tuple(p for p in NPROBE if p <= nlist)
    return params, "nprobe", values, set_nprobe, lambda x: index.search(x, K)[1]


@contextmanager
def _faiss_threads(threads: int):
    """FAISS's OpenMP threads set to `threads` inside the block (builds), back to the last setting after."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


APPROX_PEERS = {"usearch-hnsw": _usearch_peer, "faiss-hnsw": _faiss_hnsw_peer, "faiss-ivf": _faiss_ivf_peer}


def approx_peers(codes, q, exact_dist, qps: dict, recall: dict, threads: int = 1, log=print) -> dict:
    """Each approximate peer built (on `threads`), then its knob swept from the cheapest setting up:
    q/s (batch of queries, one thread, best of 3) and tie-aware recall@10 at each setting, until the
    recall reaches STOP_RECALL or the peer gets slower than FAISS's exact scan. The setting it is
    compared at ("chosen"): the fastest whose recall@10 is at least TARGET_RECALL, else the most
    accurate. Its q/s and recall join qps and recall as "<peer> knn10" (and "... single": one query
    per call). A peer whose library is not installed is skipped, with a line saying so."""
    out = {}
    for name, make in APPROX_PEERS.items():
        try:
            out[name] = sweep(name, make, codes, q, exact_dist, qps["faiss-flat knn10"], threads, log)
        except ImportError as exc:
            log(f"  {codes.shape[1] * 8} bits  {name}: skipped, its library is not installed ({exc})")
            out[name] = {"skipped": f"not installed: {exc}"}
            continue
        chosen = out[name]["chosen"]
        qps[f"{name} knn10"], recall[f"{name} knn10"] = chosen["qps"], chosen["recall10"]
        qps[f"{name} knn10 single"] = out[name]["single_qps"]
        recall[f"{name} knn10 single"] = chosen["recall10"]
    return out


def sweep(name: str, make, codes, q, exact_dist, flat_qps: float, threads: int, log=print) -> dict:
    """One approximate peer: built, its knob swept (see approx_peers), the chosen setting also timed
    one query per call."""
    bits = codes.shape[1] * 8
    t = time.perf_counter()
    params, knob, values, set_knob, search = make(codes, threads, np.random.default_rng(1))
    entry = {"params": params, "knob": knob, "build_s": time.perf_counter() - t, "points": []}
    log(f"  {bits} bits  {name} ({_params_text(params)}) built in {entry['build_s']:.1f} s")
    for value in values:
        set_knob(value)
        point = {knob: value, "recall10": recall_at_k(codes, q, exact_dist, search(q))}
        point["qps"] = best_qps(lambda: search(q), len(q))
        entry["points"].append(point)
        log(f"  {bits} bits  {name} {knob}={value:<5} recall@10 {point['recall10']:.3f} {point['qps']:>12,.0f} q/s")
        if point["recall10"] >= STOP_RECALL or point["qps"] < flat_qps:
            break
    good = [p for p in entry["points"] if p["recall10"] >= TARGET_RECALL]
    chosen = max(good, key=lambda p: p["qps"]) if good else max(entry["points"], key=lambda p: p["recall10"])
    entry["chosen"] = chosen
    entry["target_met"] = bool(good)
    set_knob(chosen[knob])
    single = [q[i : i + 1] for i in range(SINGLE)]
    entry["single_qps"] = best_qps(lambda: [search(x) for x in single], SINGLE)
    return entry


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
