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
import time
from pathlib import Path

import faiss
import numpy as np

from ..hashing.codes import flip_masks, one_bit_away, to_int
from ..hashing.errors import ParameterError
from ..index_store.engine.searcher import Searcher
from .approx_peers import APPROX_PEERS, SINGLE, TARGET_RECALL, approx_peers, best_qps, recall_at_k, results_matrix
from .bulk_add import bulk
from .postgres import postgres_url
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

BATCH = 2000
K = 10  # k of every k-NN figure


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

    images = torch.from_numpy(np.concatenate([train.x, test.x]))
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
    log(written(paths))
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
