"""Search speed: semhash's Hamming-ball and k-NN search against FAISS's binary indexes, one thread.

    semhash bench search                  # full run (about 10 minutes on 2 cores)
    semhash bench search --quick          # smaller sizes, for a look

Database: N random codes; queries: database codes with one bit flipped. Every method answers the
same queries in batches of 2,000 on one thread (and k-NN one query per call too, as a server
would); each figure is the best of 3 runs. Peers:
  faiss-flat        IndexBinaryFlat, exact k-NN by scanning;
  faiss-hash        IndexBinaryHash(b bits, nflip=2): exact radius-2 at 32 bits (range_search);
  faiss-multihash   IndexBinaryMultiHash(2 x 32 bits, nflip=1): exact radius-2 at 64 bits;
  numpy-sorted      every code of the radius-2 ball looked up by binary search in a sorted array.
Also: cost per query as N grows (random codes and real PCA-ITQ codes of MNIST, whose buckets are
skewed), bulk add of N items into SQLite plus derived structures, opening that index, memory/item.
Writes search.json and search.png into the output folder.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from ..hashing.codes import flip_masks, one_bit_away, to_int
from ..hashing.errors import ParameterError
from ..hashing.timing import best_seconds
from ..index_store.index import Index
from ..index_store.searcher import Searcher
from .results import DEFAULT_OUT, pyplot, save_figure, write_result

BATCH = 2000
SINGLE = 200  # queries timed one per call


def best_qps(fn, nq: int, repeats: int = 3) -> float:
    """Queries per second of fn(), which answers nq queries: the best of `repeats` runs."""
    return nq / best_seconds(fn, repeats)


def numpy_sorted_radius(keys_sorted: np.ndarray, q: np.ndarray, r: int) -> int:
    """Reference peer: probe every code of the ball by binary search in a sorted key array."""
    probes = (to_int(q)[:, None] ^ flip_masks(q.shape[1] * 8, r)[None, :]).ravel()
    pos = np.searchsorted(keys_sorted, probes)
    pos[pos == len(keys_sorted)] = 0
    return int((keys_sorted[pos] == probes).sum())


def speed(n: int, bits: int, rng) -> dict:
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
    qps["semhash knn10"] = best_qps(lambda: ours.knn(q, 10), len(q))
    flat = faiss.IndexBinaryFlat(bits)
    flat.add(codes)
    qps["faiss-flat knn10"] = best_qps(lambda: flat.search(q, 10), len(q))
    single = [q[i : i + 1] for i in range(SINGLE)]
    qps["semhash knn10 single"] = best_qps(lambda: [ours.knn(x, 10) for x in single], SINGLE)
    qps["faiss-flat knn10 single"] = best_qps(lambda: [flat.search(x, 10) for x in single], SINGLE)
    keys_sorted = np.sort(to_int(codes)) if bits <= 64 else None
    if bits == 32:
        h = faiss.IndexBinaryHash(bits, bits)
        h.add(codes)
        h.nflip = 2
        qps["faiss-hash radius2"] = best_qps(lambda: h.range_search(q, 3), len(q))  # FAISS: distance < 3
        qps["faiss-hash knn10"] = best_qps(lambda: h.search(q, 10), len(q))
    if bits == 64:
        mh = faiss.IndexBinaryMultiHash(bits, 2, 32)
        mh.add(codes)
        mh.nflip = 1
        qps["faiss-multihash radius2"] = best_qps(lambda: mh.range_search(q, 3), len(q))
    if keys_sorted is not None:
        qps["numpy-sorted radius2"] = best_qps(lambda: numpy_sorted_radius(keys_sorted, q, 2), len(q))
    check_exact(ours, codes, q)
    return row


def check_exact(ours: Searcher, codes: np.ndarray, q: np.ndarray) -> None:
    """The speed figures only count if the answers are right: radius 2 against FAISS's scan."""
    flat = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    flat.add(codes)
    lims, _, ids = flat.range_search(q[:200], 3)
    res = ours.radius(q[:200], 2)
    for i in range(200):
        assert set(ids[lims[i] : lims[i + 1]].tolist()) == set(res[i][0].tolist()), "radius search is not exact"


def scaling(sizes: list[int], bits: int, rng, real: dict[str, np.ndarray], log=print) -> list[dict]:
    """Cost per query as N grows, ours and FAISS's scan, on random codes and on real ones."""
    rows = []
    sets = [("random", None, sizes)] + [
        (label, codes, [n for n in (10_000, 30_000, len(codes)) if n <= len(codes)]) for label, codes in real.items()
    ]  # MNIST: 70,000 images
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


def mnist_codes(bits: int, ae_model: str | None, data_root: str | None = None, log=print) -> dict[str, np.ndarray]:
    """Real, clustered codes of all 70,000 MNIST images: PCA-ITQ's, and the autoencoder's when a
    trained model is given. Empty without MNIST."""
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
    if ae is not None and ae.bits != bits:
        raise ParameterError(f"{ae_model} makes {ae.bits}-bit codes; this benchmark scales {bits}-bit codes")
    for label, hasher in (("mnist-itq", ITQ(bits).fit(train)), ("mnist-ae", ae)):
        if hasher is not None:
            out[label] = np.concatenate([hasher.encode(train), hasher.encode(test)])
    return out


def bulk(n: int, bits: int, rng) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="semhash-bench-"))
    try:
        codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
        keys = [f"item-{i}" for i in range(n)]
        labels = rng.integers(0, 10, n)
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
            "sqlite_bytes": sum(f.stat().st_size for f in folder.glob("bench.db*") if f.is_file()),
        }  # WAL too
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(
    n: int = 1_000_000,
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000, 10_000_000),
    ae_model: str | None = None,
    mnist: bool = True,
    data_root: str | None = None,
    out: str | Path = DEFAULT_OUT,
    log=print,
) -> dict:
    """The whole benchmark: speed at n, scaling over sizes, bulk add of n; writes search.json and
    search.png into out and returns the JSON's content."""
    if n < 1000 or min(sizes) < 1000:
        raise ParameterError(f"database sizes must be at least 1,000 codes, got {n:,} and {min(sizes):,}")
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        speeds = speed_table(n, rng, log)
        ratios = speed_ratios(speeds)
        log("ratios:")
        for k, v in ratios.items():
            log(f"  {k:<48} {v:6.2f}x")
        log("cost per query as N grows (32 bits):")
        real = mnist_codes(32, ae_model, data_root, log) if mnist else {}
        scale = scaling(list(sizes), 32, rng, real, log)
        log(f"bulk add of {n:,} items into SQLite + derived structures, then open:")
        b = bulk(n, 32, rng)
        log(
            f"  add {b['bulk_add_s']:.1f} s, open {b['open_s']:.2f} s, {b['memory_bytes_per_item']:.0f} bytes/item "
            f"in memory, {b['sqlite_bytes'] / n:.0f} bytes/item in SQLite"
        )
    finally:
        faiss.omp_set_num_threads(threads)
    result = {
        "n": n,
        "sizes": list(sizes),
        "ae_model": ae_model,
        "machine": {"threads": 1},
        "speed": speeds,
        "ratios": ratios,
        "scaling": scale,
        "bulk": b,
    }
    paths = write_result(out, "search", result, lambda path: plot(scale, speeds, path))
    log(f"wrote {paths[0]} and {paths[1]}")
    return result


def speed_table(n: int, rng, log=print) -> list[dict]:
    """speed() at 32 and 64 bits, each figure logged."""
    log(f"speed at N={n:,}, one thread, batches of {BATCH} queries and single queries (best of 3):")
    speeds = []
    for bits in (32, 64):
        speeds.append(speed(n, bits, rng))
        for name, v in speeds[-1]["qps"].items():
            log(f"  {bits} bits  {name:<26} {v:>12,.0f} q/s")
    return speeds


def speed_ratios(speeds: list[dict]) -> dict[str, float]:
    s32, s64 = speeds[0]["qps"], speeds[1]["qps"]
    return {
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


def plot(scale, speeds, path: Path) -> None:
    """Cost per query vs N (left); queries/s of every method at N (right)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
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
        right.bar(x + (i - 0.5) * 0.4, [s["qps"].get(k, 0) for k in names], 0.4, label=f"{s['bits']} bits")
    right.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    right.set(yscale="log", ylabel="queries / s (one thread)", title=f"N = {speeds[0]['n']:,} random codes")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
