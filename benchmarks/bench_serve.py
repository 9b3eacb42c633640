"""The HTTP service under load: 32 concurrent clients for 30 s against a 1M-item index.

    semhash bench serve [--items 1000000] [--clients 32] [--seconds 30] [--workers 1 --workers 2] [--out DIR]

The index holds N random 32-bit codes in SQLite; every request is a k-NN (k = 10) search by raw
code (a database code with one bit flipped), so the figures are the service's own cost: HTTP,
JSON, the SQL read of the generation and of the hits' metadata, and the search. The same queries
are answered in-process (Index.search, one query per call, one thread) for comparison. Reports
queries/s, p50/p99 latency and errors (must be 0) for each worker count; writes serve.json and
serve.png into the output folder.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..hashing.codes import one_bit_away
from ..hashing.errors import ParameterError
from ..index_store.index import Index
from ..index_store.launcher import free_port, spawn_server
from .results import DEFAULT_OUT, pyplot, save_figure, write_result

NAME = "bench"


def run(
    items: int = 1_000_000,
    clients: int = 32,
    seconds: float = 30.0,
    workers: tuple[int, ...] = (1, 2),
    out: str | Path = DEFAULT_OUT,
    log=print,
) -> dict:
    """Load `semhash serve` (each worker count in turn) with k-NN searches from concurrent clients
    and answer the same searches in-process; write serve.json and serve.png into out and return the
    JSON's content."""
    if items < 1000 or clients < 1 or seconds <= 0 or not workers or min(workers) < 1:
        raise ParameterError("need at least 1,000 items, 1 client, a positive duration and positive worker counts")
    folder = Path(tempfile.mkdtemp(prefix="semhash-serve-"))
    try:
        queries = _random_index(folder / "serve.db", items, log)
        hexes = [q.tobytes().hex() for q in queries]
        inproc = _in_process(Index.open(folder / "serve.db", NAME), queries, seconds)
        log(
            f"in-process Index.search, one query per call: {inproc['qps']:,.0f} q/s, "
            f"p50 {inproc['p50_ms']:.2f} ms, p99 {inproc['p99_ms']:.2f} ms"
        )
        rows = []
        for w in workers:
            row = _over_http(folder / "serve.db", hexes, clients, seconds, w)
            row["ratio_to_in_process"] = row["qps"] / inproc["qps"]
            rows.append(row)
            log(
                f"HTTP, {w} worker(s), {clients} clients, {seconds:.0f} s: {row['qps']:,.0f} q/s, "
                f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                f"{row['errors']} errors of {row['requests']:,} requests; {row['ratio_to_in_process']:.2f}x in-process"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"items": items, "clients": clients, "seconds": seconds, "in_process": inproc, "http": rows}
    paths = write_result(out, "serve", result, lambda path: plot(result, path))
    log(f"wrote {paths[0]} and {paths[1]}")
    return result


def _random_index(db: Path, items: int, log) -> np.ndarray:
    """An index of `items` random 32-bit codes at db; returns 20,000 queries one bit away from them."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (items, 4), dtype=np.uint8)
    t = time.perf_counter()
    idx = Index.create(db, NAME, 32)
    idx.add([f"item-{i}" for i in range(items)], codes, labels=rng.integers(0, 10, items))
    log(f"index of {items:,} random 32-bit codes built in {time.perf_counter() - t:.1f} s")
    return one_bit_away(codes, 20_000, rng)


def _in_process(index: Index, queries: np.ndarray, seconds: float) -> dict:
    index.search(queries[:1], k=10)  # load and plan outside the clock
    lat, end, i = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        t = time.perf_counter()
        index.search(queries[i % len(queries)][None], k=10)
        lat.append(time.perf_counter() - t)
        i += 1
    return _summary(np.array(lat), sum(lat), 0, len(lat))


def _over_http(db: Path, hexes: list[str], clients: int, seconds: float, workers: int) -> dict:
    import httpx

    port = free_port()
    server = spawn_server(str(db), port, workers=workers)
    try:
        for _ in range(8 * workers):  # a few searches first: time for every worker to be up and primed
            httpx.post(
                f"http://127.0.0.1:{port}/indexes/{NAME}/search", json={"codes": ["00000000"], "k": 10}, timeout=60
            )
        lat, errors, wall = asyncio.run(_load(port, hexes, clients, seconds))
    finally:
        server.terminate()
        server.wait(timeout=60)
    row = _summary(np.array(lat), wall, errors, len(lat) + errors)
    row["workers"] = workers
    return row


async def _load(port: int, hexes: list[str], clients: int, seconds: float):
    """clients concurrent keep-alive connections, each sending its next request when the last is
    answered (aiohttp: the lightest well-kept client, so the server gets most of the shared cores)."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/indexes/{NAME}/search"
    lat, errors = [], 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def client(c: int):
            nonlocal errors
            i = c
            while time.perf_counter() < end:
                t = time.perf_counter()
                try:
                    async with http.post(url, json={"codes": [hexes[i % len(hexes)]], "k": 10}) as r:
                        ok = r.status == 200 and len((await r.json())["queries"][0]["hits"]) == 10
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                if ok:
                    lat.append(time.perf_counter() - t)
                else:
                    errors += 1
                i += clients

        start = time.perf_counter()
        end = start + seconds
        await asyncio.gather(*(client(c) for c in range(clients)))
        return lat, errors, time.perf_counter() - start


def _summary(lat: np.ndarray, wall: float, errors: int, requests: int) -> dict:
    return {
        "requests": requests,
        "errors": errors,
        "qps": len(lat) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "mean_ms": float(lat.mean() * 1e3),
    }


def plot(result: dict, path: Path) -> None:
    """Queries/s and p50/p99 latency, in-process and over HTTP per worker count."""
    plt = pyplot()
    rows = [("in-process", result["in_process"])] + [(f"HTTP, {r['workers']} worker(s)", r) for r in result["http"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(rows))
    left.bar(x, [r["qps"] for _, r in rows], color="tab:blue")
    left.set(ylabel="queries / s", title=f"k-NN 10 over {result['items']:,} items, {result['clients']} clients")
    right.bar(x - 0.2, [r["p50_ms"] for _, r in rows], 0.4, label="p50")
    right.bar(x + 0.2, [r["p99_ms"] for _, r in rows], 0.4, label="p99")
    right.set(yscale="log", ylabel="latency (ms)", title="latency")
    right.legend()
    for ax in (left, right):
        ax.set_xticks(x, [n for n, _ in rows], fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
