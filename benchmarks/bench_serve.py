"""The HTTP service under load: 32 concurrent clients for 30 s against a 1M-item index.

    python benchmarks/bench_serve.py [--items 1000000] [--clients 32] [--seconds 30] [--workers 1 2]
    semhash bench serve ...                       # the same, from the CLI

The index holds N random 32-bit codes in SQLite; every request is a k-NN (k = 10) search by raw
code (a database code with one bit flipped), so the figures are the service's own cost: HTTP,
JSON, the SQL read of the generation and of the hits' metadata, and the search. The same queries
are answered in-process (Index.search, one query per call, one thread) for comparison. Reports
queries/s, p50/p99 latency and errors (must be 0) for each worker count; writes serve.json and
serve.png into --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..hashing import __version__
from ..hashing.codes import one_bit_away
from ..hashing.errors import ParameterError
from ..hashing.files import atomic_write, atomic_write_text
from ..index_store.index import Index

NAME = "bench"


def run(
    items: int = 1_000_000,
    clients: int = 32,
    seconds: float = 30.0,
    workers: tuple[int, ...] = (1, 2),
    out: str | Path = "benchmarks/results",
    log=print,
) -> dict:
    if items < 1000 or clients < 1 or seconds <= 0 or not workers or min(workers) < 1:
        raise ParameterError("need at least 1,000 items, 1 client, a positive duration and positive worker counts")
    folder = Path(tempfile.mkdtemp(prefix="semhash-serve-"))
    try:
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 256, (items, 4), dtype=np.uint8)
        t = time.perf_counter()
        idx = Index.create(folder / "serve.db", NAME, 32)
        idx.add([f"item-{i}" for i in range(items)], codes, labels=rng.integers(0, 10, items))
        log(f"index of {items:,} random 32-bit codes built in {time.perf_counter() - t:.1f} s")
        queries = one_bit_away(codes, 20_000, rng)
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
                f"HTTP, {w} worker(s), {clients} clients, {seconds:.0f} s: {row['qps']:,.0f} q/s, p50 {row['p50_ms']:.2f} ms, "
                f"p99 {row['p99_ms']:.2f} ms, {row['errors']} errors of {row['requests']:,} requests; "
                f"{row['ratio_to_in_process']:.2f}x in-process"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "serve",
        "semhash": __version__,
        "items": items,
        "clients": clients,
        "seconds": seconds,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "in_process": inproc,
        "http": rows,
    }
    atomic_write_text(out / "serve.json", json.dumps(result, indent=1))
    plot(result, out / "serve.png")
    log(f"wrote {out / 'serve.json'} and {out / 'serve.png'}")
    return result


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
    server = start_server(str(db), port, workers=workers)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    target: str, port: int, env: dict | None = None, workers: int = 1, timeout: float = 120
) -> subprocess.Popen:
    """`semhash serve target` in a subprocess, returned once /health answers (also for tests)."""
    import httpx

    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from semhash.cli.main import main; main()",
            "serve",
            target,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().strip()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    run(args.items, args.clients, args.seconds, tuple(args.workers), args.out, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
