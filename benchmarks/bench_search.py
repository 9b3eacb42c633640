"""Search speed: semhash's Hamming-ball and k-NN search against FAISS's binary indexes, one thread.

    semhash bench search                  # full run (about 20 minutes on 2 cores)
    semhash bench search --quick          # smaller sizes, for a look
    semhash bench search --no-approx      # without the approximate peers (their builds are most of the time)
    semhash bench search --postgres URL   # bulk add into PostgreSQL too

Database: N random codes; queries: database codes with one bit flipped. Every method answers the
same queries in batches of 2,000 on one thread (and k-NN one query per call too, as a server
would); each figure is the best of 3 runs. Peers:
  faiss-flat        IndexBinaryFlat, exact k-NN by scanning;
  faiss-hash        IndexBinaryHash(b bits, nflip=2): exact radius-2 at 32 bits (range_search);
                    its k-NN looks only within 2 bits of the query's bucket (recall reported);
  faiss-multihash   IndexBinaryMultiHash(2 x 32 bits, nflip=1): exact radius-2 at 64 bits;
  numpy-sorted      every code of the radius-2 ball looked up by binary search in a sorted array.
Approximate k-NN peers (approx_peers), each at the fastest setting with recall@10 >= 0.9:
  usearch-hnsw      USearch's HNSW over packed bits, metric="hamming", dtype="b1" (skipped, with a
                    line saying so, when usearch is not installed);
  faiss-hnsw        IndexBinaryHNSW;
  faiss-ivf         IndexBinaryIVF over an IndexBinaryFlat quantizer.
Every k-NN figure comes with its recall@10 against the exact answer (tie-aware: recall_at_k);
ours must be 1.0. Also: cost per query as N grows (random codes and real PCA-ITQ codes of MNIST,
whose buckets are skewed), bulk add of N items into SQLite plus derived structures beside a raw
sqlite3 executemany of the same rows (and into PostgreSQL beside a raw COPY), opening that index,
memory/item. Writes search.json and search.png into the output folder.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy.engine import make_url

from ..hashing.codes import flip_masks, hamming_rows, one_bit_away, to_int
from ..hashing.errors import ParameterError
from ..hashing.timing import best_seconds
from ..index_store.engine.searcher import Searcher
from ..index_store.index import Index
from ..index_store.storage import schema as S
from ..index_store.storage.store import safe_url
from .postgres import in_schema, pg_schemas, postgres_url
from .results import DEFAULT_OUT, pyplot, save_figure, write_result

BATCH = 2000
SINGLE = 200  # queries timed one per call
K = 10  # k of every k-NN figure
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


def numpy_sorted_radius(keys_sorted: np.ndarray, q: np.ndarray, r: int) -> int:
    """Reference peer: probe every code of the ball by binary search in a sorted key array."""
    probes = (to_int(q)[:, None] ^ flip_masks(q.shape[1] * 8, r)[None, :]).ravel()
    pos = np.searchsorted(keys_sorted, probes)
    pos[pos == len(keys_sorted)] = 0
    return int((keys_sorted[pos] == probes).sum())


def speed(n: int, bits: int, rng, approx: bool = True, threads: int = 1, log=print) -> dict:
    """Every method's q/s over n random codes at `bits`; k-NN 10 also with its recall@10 against the
    exact answer, and the approximate peers' sweeps (built with `threads`, searched on one)."""
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    q = one_bit_away(codes, BATCH, rng)
    t = time.perf_counter()
    ours = Searcher(np.arange(n), codes)
    build_s = time.perf_counter() - t
    row = {
        "n": n,
        "bits": bits,
        "build_s": build_s,
        "memory_bytes_per_item": ours.nbytes() / n,
        "plan_radius2": list(ours.plan(2)),
        "qps": {},
    }
    qps = row["qps"]
    qps["semhash radius2"] = best_qps(lambda: ours.radius(q, 2), len(q))
    qps["semhash knn10"] = best_qps(lambda: ours.knn(q, K), len(q))
    flat = faiss.IndexBinaryFlat(bits)
    flat.add(codes)
    qps["faiss-flat knn10"] = best_qps(lambda: flat.search(q, K), len(q))
    single = [q[i : i + 1] for i in range(SINGLE)]
    qps["semhash knn10 single"] = best_qps(lambda: [ours.knn(x, K) for x in single], SINGLE)
    qps["faiss-flat knn10 single"] = best_qps(lambda: [flat.search(x, K) for x in single], SINGLE)
    answers = radius_peers(codes, q, qps)
    check_exact(ours, codes, q)
    exact, answers["faiss-flat knn10"] = flat.search(q, K)
    answers["semhash knn10"] = results_matrix(ours.knn(q, K), K)
    row["recall10"] = {name: recall_at_k(codes, q, exact, ids) for name, ids in sorted(answers.items())}
    assert row["recall10"]["semhash knn10"] == 1.0, "k-NN search is not exact"
    if approx:
        row["approx"] = approx_peers(codes, q, exact, qps, row["recall10"], threads, log)
    return row


def radius_peers(codes: np.ndarray, q: np.ndarray, qps: dict) -> dict[str, np.ndarray]:
    """FAISS's hash indexes (radius 2 exact at 32 and 64 bits) and the numpy reference, into qps;
    returns the k-NN answers of those that also answer k-NN (IndexBinaryHash's k-NN looks only
    within nflip bits of the query's bucket: not exact, so its recall is reported)."""
    bits, answers = codes.shape[1] * 8, {}
    if bits == 32:
        h = faiss.IndexBinaryHash(bits, bits)
        h.add(codes)
        h.nflip = 2
        qps["faiss-hash radius2"] = best_qps(lambda: h.range_search(q, 3), len(q))  # FAISS: distance < 3
        qps["faiss-hash knn10"] = best_qps(lambda: h.search(q, K), len(q))
        answers["faiss-hash knn10"] = h.search(q, K)[1]
    if bits == 64:
        mh = faiss.IndexBinaryMultiHash(bits, 2, 32)
        mh.add(codes)
        mh.nflip = 1
        qps["faiss-multihash radius2"] = best_qps(lambda: mh.range_search(q, 3), len(q))
    if bits <= 64:
        keys_sorted = np.sort(to_int(codes))
        qps["numpy-sorted radius2"] = best_qps(lambda: numpy_sorted_radius(keys_sorted, q, 2), len(q))
    return answers


# --- approximate peers: k-NN 10 at a recall below 1, side by side with the exact answers ---------
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


def check_exact(ours: Searcher, codes: np.ndarray, q: np.ndarray) -> None:
    """The speed figures only count if the answers are right: radius 2 against FAISS's scan."""
    flat = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    flat.add(codes)
    lims, _, ids = flat.range_search(q[:200], 3)
    res = ours.radius(q[:200], 2)
    for i in range(200):
        assert set(ids[lims[i] : lims[i + 1]].tolist()) == set(res[i][0].tolist()), "radius search is not exact"


def scaling(sizes: list[int], bits: int, rng, real: dict[str, np.ndarray], log=print) -> list[dict]:
    """Cost per query as N grows, ours and FAISS's scan, on random codes (`bits`) and on real ones
    (each at its own length)."""
    rows = []
    sets = [("random", None, sizes)] + [
        (
            label,
            codes,
            [n for n in (10_000, 30_000, len(codes)) if n <= len(codes)] if len(codes) <= 70_000 else [len(codes)],
        )
        for label, codes in real.items()
    ]  # MNIST: 70,000 images; augmented: one size
    for label, source, ns in sets:
        for n in ns:
            codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8) if source is None else source[:n]
            rows.append(scaling_row(label, codes, rng))
            r = rows[-1]
            log(
                f"  {label:<10} N={n:>10,}: radius-2 {r['us_per_query_radius2']:7.1f} us/query "
                f"(bit-flip plan alone {r['us_per_query_radius2_bitflip']:5.1f}) "
                f"({r['results_per_query_radius2']:8.1f} results), knn10 {r['us_per_query_knn10']:7.1f} us/query, "
                f"faiss-flat knn10 {r['faiss_flat_us_per_query_knn10']:9.1f} us/query"
            )
    return rows


def scaling_row(label: str, codes: np.ndarray, rng) -> dict:
    """Cost per query over these codes: our radius 2 (and the bit-flip plan alone), k-NN 10, FAISS's scan."""
    n, bits = len(codes), codes.shape[1] * 8
    s = Searcher(np.arange(n), codes)
    q = one_bit_away(codes, BATCH, rng)
    flat = faiss.IndexBinaryFlat(bits)
    flat.add(codes)
    nq_flat = len(q) if n <= 1_000_000 else 200
    return {
        "codes": label,
        "n": n,
        "bits": bits,
        "plan_radius2": list(s.plan(2)),
        "us_per_query_radius2": 1e6 / best_qps(lambda: s.radius(q, 2), len(q)),
        "us_per_query_radius2_bitflip": 1e6 / best_qps(lambda: bit_flip_only(s).radius(q, 2), len(q)),
        "results_per_query_radius2": float(s.radius(q, 2).counts().mean()),
        "us_per_query_knn10": 1e6 / best_qps(lambda: s.knn(q, 10), len(q)),
        # the same queries as ours, but a sample of them beyond 1M (a scan of 10M is 10 ms)
        "faiss_flat_us_per_query_knn10": 1e6 / best_qps(lambda: flat.search(q[:nq_flat], 10), nq_flat),
    }


def bit_flip_only(s: Searcher) -> Searcher:
    """A copy of the searcher (sharing its tables) whose plan is pinned to bit-flip probing of the
    whole-code table: the part of the cost that is constant in N by construction (the planner
    picks multi-index hashing where that is cheaper)."""
    pinned = copy.copy(s)
    pinned.plan = lambda radius, nq=0: ("mih", 1)
    return pinned


def mnist_codes(bits: int, ae_model: str | None, data_root: str | None = None, log=print, augmented: int = 0):
    """Real, clustered codes of all 70,000 MNIST images: PCA-ITQ's at `bits`, and the autoencoder's
    (at its own length) when a trained model is given, with `augmented` codes of MNIST under its
    standard augmentation too (augmented_mnist). Empty without MNIST."""
    from ..hashing.baselines import ITQ
    from ..hashing.data import load_dataset
    from ..hashing.errors import DataError
    from ..hashing.methods import load_hasher

    try:
        train = load_dataset("mnist", "train", root=data_root, download=False)
        test = load_dataset("mnist", "test", root=data_root, download=False)
    except DataError as exc:
        log(f"  (no MNIST: {exc})")
        return {}
    out = {}
    ae = load_hasher(ae_model) if ae_model else None
    if ae is not None and ae.bits > 64:
        raise ParameterError(f"{ae_model} makes {ae.bits}-bit codes; this benchmark takes codes of at most 64 bits")
    for label, hasher in ((f"mnist-itq{bits}", ITQ(bits).fit(train)), (f"mnist-ae{ae.bits if ae else ''}", ae)):
        if hasher is not None:
            out[label] = np.concatenate([hasher.encode(train), hasher.encode(test)])
    if ae is not None and augmented > len(out[f"mnist-ae{ae.bits}"]):
        out[f"mnist-ae{ae.bits}-augmented"] = augmented_mnist(ae, train, test, augmented)
    return out


def augmented_mnist(hasher, train, test, n: int, seed: int = 0) -> np.ndarray:
    """n codes of real images: MNIST's 70,000, then copies of them under MNIST's standard
    augmentation (each its own random rotation within 10 degrees, scale 0.9-1.1, shift within 2
    pixels), as a larger collection of the same kind would be; encoded by hasher, (n, bits/8) uint8."""
    import dataclasses
    import math

    import torch
    import torch.nn.functional as F

    images = torch.cat([train.x, test.x])
    out = [hasher.encode(dataclasses.replace(train, x=images, _fingerprint=None))]
    gen = torch.Generator().manual_seed(seed)
    done = len(images)
    while done < n:
        x = images[: min(len(images), n - done)]
        b = len(x)
        angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(10)
        scale = 0.9 + 0.2 * torch.rand(b, generator=gen)
        shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (2 / 14)  # 2 pixels of 28, in [-1, 1] units
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        moved = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
        out.append(hasher.encode(dataclasses.replace(train, x=moved, _fingerprint=None)))
        done += b
    return np.concatenate(out)[:n]


# --- bulk add: ours into SQLite (and PostgreSQL) beside the raw driver loading the same rows ------
def bulk(n: int, bits: int, rng, postgres: str | None = None, log=print) -> dict:
    """Bulk add of n items (keys, labels, codes) into SQLite plus the derived structures, then
    opening that index; beside it, in the same run, a raw sqlite3 executemany of the same rows into
    the same schema in one transaction; with postgres (a URL), the same pair into PostgreSQL (ours
    against a raw psycopg COPY)."""
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    keys = [f"item-{i}" for i in range(n)]
    labels = rng.integers(0, 10, n)
    folder = Path(tempfile.mkdtemp(prefix="semhash-bench-"))
    try:
        log(f"bulk add of {n:,} items into SQLite + derived structures, then open; a raw sqlite3 executemany beside:")
        row = bulk_sqlite(folder, keys, codes, labels)
        row["raw_sqlite_s"] = raw_sqlite(folder / "raw.db", keys, codes, labels)
        same_sqlite_rows(folder / "bench.db", folder / "raw.db", n)
        row["bulk_add_vs_raw_sqlite"] = row["bulk_add_s"] / row["raw_sqlite_s"]
        log(
            f"  add {row['bulk_add_s']:.1f} s (raw sqlite3 executemany of the same rows, one transaction: "
            f"{row['raw_sqlite_s']:.1f} s; ours / raw {row['bulk_add_vs_raw_sqlite']:.2f}x), "
            f"open {row['open_s']:.2f} s, {row['memory_bytes_per_item']:.0f} bytes/item in memory, "
            f"{row['sqlite_bytes'] / n:.0f} bytes/item in SQLite"
        )
        row["postgres"] = bulk_postgres(postgres, keys, codes, labels, folder, log) if postgres else None
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bulk_sqlite(folder: Path, keys: list[str], codes: np.ndarray, labels: np.ndarray) -> dict:
    """Our bulk add into a new SQLite file, then opening it from the checked cache."""
    n, bits = len(keys), codes.shape[1] * 8
    t = time.perf_counter()
    idx = Index.create(folder / "bench.db", "bench", bits)
    idx.add(keys, codes, labels=labels)
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    again = Index.open(folder / "bench.db", "bench")
    _ = again.searcher  # loads the derived structures from the checked cache
    open_s = time.perf_counter() - t
    assert again.last_load == "cache" and len(again.searcher) == n
    info = again.info()
    return {
        "n": n,
        "bits": bits,
        "bulk_add_s": add_s,
        "open_s": open_s,
        "memory_bytes_per_item": info["memory_bytes_per_item"],
        "sqlite_bytes": sum(f.stat().st_size for f in folder.glob("bench.db*") if f.is_file()),  # WAL too
    }


def raw_rows(keys: list[str], codes: np.ndarray, labels: np.ndarray):
    """The rows semhash's items table gets for these items (index 1, item ids from 1), as tuples in
    its column order, made from the arrays as a hand-written loader would."""
    n, width = len(keys), codes.shape[1]
    flat, none = codes.tobytes(), itertools.repeat(None)
    code_list = (flat[i * width : (i + 1) * width] for i in range(n))
    return zip(itertools.repeat(1), range(1, n + 1), keys, labels.tolist(), none, none, code_list)


def _insert_sql(table) -> str:
    columns = [c.name for c in table.columns]
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def raw_sqlite(path: Path, keys: list[str], codes: np.ndarray, labels: np.ndarray) -> float:
    """Seconds for a raw sqlite3 executemany of the same rows into the same schema (made untimed by
    SQLAlchemy from semhash's tables), with the store's settings (WAL, synchronous=NORMAL), in one
    transaction: from the arrays to the commit."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    S.metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute(
            "INSERT INTO semhash_indexes (id, name, bits, created, updated, generation, next_item, item_count) "
            "VALUES (1, 'bench', ?, ?, ?, 1, ?, ?)",
            (codes.shape[1] * 8, now, now, len(keys) + 1, len(keys)),
        )
        conn.executemany(_insert_sql(S.items), raw_rows(keys, codes, labels))
        conn.execute("COMMIT")
        return time.perf_counter() - t
    finally:
        conn.close()


SAMPLE_ROWS_SQL = (
    "SELECT index_id, id, key, label, source, meta, code FROM {schema}semhash_items"
    " WHERE id <= 100 OR id > {last} ORDER BY id"
)


def same_sqlite_rows(ours: Path, raw: Path, n: int) -> None:
    """The raw peer loaded the rows ours did: the same count, and the first and last 100 identical."""
    seen = []
    for path in (ours, raw):
        with closing(sqlite3.connect(path)) as conn:
            count = conn.execute("SELECT count(*) FROM semhash_items").fetchone()[0]
            seen.append((count, conn.execute(SAMPLE_ROWS_SQL.format(schema="", last=n - 100)).fetchall()))
    assert seen[0] == seen[1] and seen[0][0] == n, "the raw sqlite3 peer did not load the rows ours did"


def bulk_postgres(url: str, keys: list[str], codes: np.ndarray, labels: np.ndarray, folder: Path, log=print) -> dict:
    """Our bulk add into PostgreSQL (through the store: COPY) beside a raw psycopg COPY of the same
    rows into the same schema in one transaction, each into a fresh schema of the URL's database,
    both dropped afterwards."""
    n, bits = len(keys), codes.shape[1] * 8
    log(f"bulk add of {n:,} items into PostgreSQL + derived structures; a raw psycopg COPY beside:")
    ours_schema, raw_schema = f"semhash_bench_{os.getpid()}_ours", f"semhash_bench_{os.getpid()}_raw"
    with pg_schemas(url, ours_schema, raw_schema) as admin:
        t = time.perf_counter()
        idx = Index.create(in_schema(url, ours_schema), "bench", bits, cache_folder=folder / "pg-cache")
        idx.add(keys, codes, labels=labels)
        ours_s = time.perf_counter() - t
        idx.store.engine.dispose()
        raw_s = raw_copy(url, raw_schema, keys, codes, labels)
        with admin.connect() as conn:
            rows = [
                conn.exec_driver_sql(SAMPLE_ROWS_SQL.format(schema=f"{s}.", last=n - 100)).fetchall()
                for s in (ours_schema, raw_schema)
            ]
        assert rows[0] == rows[1] and len(rows[0]) == min(n, 200), "the raw COPY did not load the rows ours did"
    row = {"n": n, "bits": bits, "store": safe_url(url), "bulk_add_s": ours_s, "raw_copy_s": raw_s}
    row["bulk_add_vs_raw_copy"] = ours_s / raw_s
    log(
        f"  add {ours_s:.1f} s (raw psycopg COPY of the same rows, one transaction: {raw_s:.1f} s; "
        f"ours / raw {ours_s / raw_s:.2f}x)"
    )
    return row


def raw_copy(url: str, schema: str, keys: list[str], codes: np.ndarray, labels: np.ndarray) -> float:
    """Seconds for a raw psycopg COPY of the same rows into the same schema (made untimed by
    SQLAlchemy from semhash's tables) in one transaction: from the arrays to the commit."""
    import psycopg
    from sqlalchemy import create_engine

    engine = create_engine(in_schema(url, schema))
    S.metadata.create_all(engine)
    engine.dispose()
    u = make_url(url)
    conninfo = u.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as conn:
        t = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO semhash_indexes (id, name, bits, created, updated, generation, next_item, item_count) "
                "VALUES (1, 'bench', %s, now(), now(), 1, %s, %s)",
                (codes.shape[1] * 8, len(keys) + 1, len(keys)),
            )
            columns = ", ".join(c.name for c in S.items.columns)
            with cur.copy(f"COPY {S.items.name} ({columns}) FROM STDIN") as copy:
                for row in raw_rows(keys, codes, labels):
                    copy.write_row(row)
        return time.perf_counter() - t


def run(
    n: int = 1_000_000,
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000, 10_000_000),
    ae_model: str | None = None,
    mnist: bool = True,
    data_root: str | None = None,
    out: str | Path = DEFAULT_OUT,
    log=print,
    approx: bool = True,
    postgres: str | None = None,
) -> dict:
    """The whole benchmark: speed at n (the approximate peers too unless approx is False), scaling
    over sizes, bulk add of n (into PostgreSQL too when postgres, a URL, is given); writes
    search.json and search.png into out and returns the JSON's content."""
    if n < 1000 or min(sizes) < 1000:
        raise ParameterError(f"database sizes must be at least 1,000 codes, got {n:,} and {min(sizes):,}")
    postgres = postgres_url(postgres) if postgres else None
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        speeds = speed_table(n, rng, approx, threads, log)
        ratios = speed_ratios(speeds)
        log("ratios:")
        for k, v in ratios.items():
            log(f"  {k:<66} {v:7.2f}x")
        log("cost per query as N grows (32 bits):")
        real = mnist_codes(32, ae_model, data_root, log, augmented=n) if mnist else {}
        scale = scaling(list(sizes), 32, rng, real, log)
        b = bulk(n, 32, rng, postgres, log)
    finally:
        faiss.omp_set_num_threads(threads)
    result = {
        "n": n,
        "sizes": list(sizes),
        "ae_model": ae_model,
        "machine": {"threads": 1, "build_threads": threads},
        "speed": speeds,
        "ratios": ratios,
        "scaling": scale,
        "bulk": b,
    }
    paths = write_result(out, "search", result, lambda path: plot(scale, speeds, path))
    log(f"wrote {paths[0]} and {paths[1]}")
    return result


def speed_table(n: int, rng, approx: bool = True, threads: int = 1, log=print) -> list[dict]:
    """speed() at 32 and 64 bits, each figure logged; k-NN figures with their recall@10 and how many
    times faster ours is (batches against batches, single queries against single queries)."""
    log(f"speed at N={n:,}, one thread, batches of {BATCH} queries and single queries (best of 3):")
    speeds = []
    for bits in (32, 64):
        speeds.append(speed(n, bits, rng, approx, threads, log))
        s = speeds[-1]
        for name, v in s["qps"].items():
            line = f"  {bits} bits  {name:<28} {v:>12,.0f} q/s"
            if name in s["recall10"]:
                ours = s["qps"]["semhash knn10 single" if name.endswith("single") else "semhash knn10"]
                line += f"  recall@10 {s['recall10'][name]:.3f}  semhash / it {ours / v:6.2f}x"
            log(line)
    return speeds


def speed_ratios(speeds: list[dict]) -> dict[str, float]:
    s32, s64 = speeds[0]["qps"], speeds[1]["qps"]
    ratios = {
        "radius2 32 bits: semhash / faiss-hash": s32["semhash radius2"] / s32["faiss-hash radius2"],
        "radius2 32 bits: semhash / numpy-sorted": s32["semhash radius2"] / s32["numpy-sorted radius2"],
        "radius2 64 bits: semhash / faiss-multihash": s64["semhash radius2"] / s64["faiss-multihash radius2"],
        "knn10 32 bits: semhash / faiss-flat": s32["semhash knn10"] / s32["faiss-flat knn10"],
        "knn10 64 bits: semhash / faiss-flat": s64["semhash knn10"] / s64["faiss-flat knn10"],
        "knn10 single query 32 bits: semhash / faiss-flat": s32["semhash knn10 single"]
        / s32["faiss-flat knn10 single"],
        "knn10 single query 64 bits: semhash / faiss-flat": s64["semhash knn10 single"]
        / s64["faiss-flat knn10 single"],
    }
    for s in speeds:  # the approximate peers at their chosen setting (recall@10 in speed[...]["recall10"])
        qps = s["qps"]
        for peer in APPROX_PEERS:
            if f"{peer} knn10" in qps:
                ratios[f"knn10 {s['bits']} bits: semhash (exact) / {peer}"] = (
                    qps["semhash knn10"] / qps[f"{peer} knn10"]
                )
                ratios[f"knn10 single query {s['bits']} bits: semhash (exact) / {peer}"] = (
                    qps["semhash knn10 single"] / qps[f"{peer} knn10 single"]
                )
    return ratios


def plot(scale, speeds, path: Path) -> None:
    """Cost per query vs N (left); queries/s of every method at N (middle); k-NN 10: recall@10
    against q/s, ours and FAISS's scan (exact) and each approximate peer's sweep (right)."""
    plt = pyplot()
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(19, 5.5))
    for label in dict.fromkeys(r["codes"] for r in scale):
        rows = [r for r in scale if r["codes"] == label]
        for metric, style, what in (
            ("us_per_query_radius2", "o-", "radius 2"),
            ("us_per_query_radius2_bitflip", "^-.", "radius 2, bit-flip plan alone"),
            ("us_per_query_knn10", "s--", "k-NN 10"),
            ("faiss_flat_us_per_query_knn10", ":", "FAISS flat k-NN 10"),
        ):
            left.plot([r["n"] for r in rows], [r[metric] for r in rows], style, label=f"{label}, {what}")
    left.set(
        xscale="log",
        yscale="log",
        xlabel="database size N",
        ylabel="microseconds per query",
        title="32-bit codes: cost per query vs N (one thread)",
    )
    names = sorted({k for s in speeds for k in s["qps"]})
    x = np.arange(len(names))
    for i, s in enumerate(speeds):
        middle.bar(x + (i - 0.5) * 0.4, [s["qps"].get(k, 0) for k in names], 0.4, label=f"{s['bits']} bits")
    middle.set_xticks(x, names, rotation=40, ha="right", fontsize=7)
    middle.set(yscale="log", ylabel="queries / s (one thread)", title=f"N = {speeds[0]['n']:,} random codes")
    plot_recall(right, speeds)
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_recall(ax, speeds) -> None:
    """k-NN 10 in batches: recall@10 (tie-aware) against q/s, one colour per code length."""
    for s, colour in zip(speeds, ("tab:blue", "tab:orange")):
        bits = s["bits"]
        for name, marker in (("semhash knn10", "*"), ("faiss-flat knn10", "s")):
            ax.scatter(
                s["qps"][name], s["recall10"][name], marker=marker, s=90, color=colour, label=f"{bits} bits {name}"
            )
        for (peer, entry), style in zip(s.get("approx", {}).items(), ("o-", "^--", "d:")):
            points = entry.get("points", [])
            if points:
                ax.plot(
                    [p["qps"] for p in points],
                    [p["recall10"] for p in points],
                    style,
                    color=colour,
                    label=f"{bits} bits {peer}",
                )
    ax.axhline(TARGET_RECALL, color="grey", lw=0.8, ls="--")
    ax.set(xscale="log", xlabel="queries / s (one thread, batches)", ylabel="recall@10 (tie-aware)")
    ax.set_title(f"k-NN 10, N = {speeds[0]['n']:,}: exact (stars, squares) and approximate peers")
