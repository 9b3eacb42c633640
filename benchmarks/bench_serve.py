"""The HTTP service under load: 32 concurrent clients for 30 s against a 1M-item index.

    semhash bench serve [--items 1000000] [--clients 32] [--seconds 30] [--workers 1 --workers 2]
                        [--postgres URL [--replicas 1 --replicas 2]] [--out DIR]

The index holds N random 32-bit codes in SQLite; every request is a k-NN (k = 10) search by raw
code (a database code with one bit flipped), so the figures are the service's own cost: HTTP,
JSON, the SQL read of the generation and of the hits' metadata, and the search. The same queries
are answered in-process (Index.search, one query per call, one thread) for comparison. Reports
queries/s, p50/p99 latency and errors for each worker count of one `semhash serve`.

With --postgres URL, the same index (the same codes, keys and labels) is also built in PostgreSQL,
in a fresh schema of that database (dropped afterwards), and loaded through 1 and 2 (--replicas)
separate `semhash serve` processes sharing that one store, one worker each, the clients spread
over them (client c talks to replica c mod R); beside it, the same searches in-process on that
store. Every run must end with zero errors (a non-200 answer, or one without 10 hits, or a
connection error): the results are written either way, then the command fails if any run had one.
Writes serve.json and serve.png into the output folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..hashing.codes import one_bit_away
from ..hashing.errors import ParameterError, SemhashError
from ..index_store.http.launcher import free_port, spawn_server
from ..index_store.index import Index
from ..index_store.storage.store import safe_url
from .postgres import in_schema, pg_schemas, postgres_url
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

NAME = "bench"


def run(
    items: int = 1_000_000,
    clients: int = 32,
    seconds: float = 30.0,
    workers: tuple[int, ...] = (1, 2),
    out: str | Path = DEFAULT_OUT,
    log=print,
    postgres: str | None = None,
    replicas: tuple[int, ...] = (1, 2),
) -> dict:
    """Load `semhash serve` (each worker count in turn) with k-NN searches from concurrent clients
    and answer the same searches in-process; with postgres (a URL), also 1 and 2 (replicas) server
    processes sharing one PostgreSQL store. Writes serve.json and serve.png into out and returns
    the JSON's content; fails (after writing) if any run had an error."""
    if items < 1000 or clients < 1 or seconds <= 0 or min(workers, default=1) < 1 or min(replicas, default=1) < 1:
        raise ParameterError("need at least 1,000 items, 1 client, a positive duration and positive worker counts")
    if not workers and not (postgres and replicas):
        raise ParameterError("nothing to measure: give a worker count, or --postgres URL with a replica count")
    postgres = postgres_url(postgres) if postgres else None
    folder = Path(tempfile.mkdtemp(prefix="semhash-serve-"))
    inproc, rows, pg = None, [], None
    try:
        if workers:
            queries = _random_index(folder / "serve.db", items, log)
            inproc, rows = _sqlite_runs(folder / "serve.db", queries, clients, seconds, workers, log)
        if postgres:
            pg = _postgres_runs(postgres, items, clients, seconds, replicas, folder, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"items": items, "clients": clients, "seconds": seconds, "in_process": inproc, "http": rows}
    result["postgres"] = pg
    paths = write_result(out, "serve", result, lambda path: plot(result, path))
    log(written(paths))
    errors = sum(r["errors"] for r in rows + (pg["replicas"] if pg else []))
    if errors:
        raise SemhashError(f"{errors} request(s) failed under load (see {paths[0]}): every run must have none")
    return result


def _sqlite_runs(db: Path, queries: np.ndarray, clients: int, seconds: float, workers, log):
    """In-process searches, then one `semhash serve` per worker count, over the SQLite index."""
    hexes = [q.tobytes().hex() for q in queries]
    inproc = _in_process(Index.open(db, NAME), queries, seconds)
    log(
        f"in-process Index.search, one query per call: {inproc['qps']:,.0f} q/s, "
        f"p50 {inproc['p50_ms']:.2f} ms, p99 {inproc['p99_ms']:.2f} ms"
    )
    rows = []
    for w in workers:
        row = _over_http(str(db), hexes, clients, seconds, w)
        row["ratio_to_in_process"] = row["qps"] / inproc["qps"]
        rows.append(row)
        log(
            f"HTTP, {w} worker(s), {clients} clients, {seconds:.0f} s: {row['qps']:,.0f} q/s, "
            f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
            f"{row['errors']} errors of {row['requests']:,} requests; {row['ratio_to_in_process']:.2f}x in-process"
        )
    return inproc, rows


def _postgres_runs(url: str, items: int, clients: int, seconds: float, replicas, folder: Path, log) -> dict:
    """The same index (the same codes and queries as SQLite's) in a fresh PostgreSQL schema;
    in-process searches on it, then R = 1, 2, ... `semhash serve` processes (one worker each)
    sharing it, the clients spread over them."""
    schema = f"semhash_serve_{os.getpid()}"
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "xdg")}  # the servers' derived structures: ours to delete
    with pg_schemas(url, schema):
        target = in_schema(url, schema)
        t = time.perf_counter()
        queries = _random_index(target, items, log, cache_folder=folder / "pg-cache")
        build_s = time.perf_counter() - t
        hexes = [q.tobytes().hex() for q in queries]
        inproc = _in_process(Index.open(target, NAME, cache_folder=folder / "pg-cache"), queries, seconds)
        log(
            f"PostgreSQL store: in-process Index.search, one query per call: {inproc['qps']:,.0f} q/s, "
            f"p50 {inproc['p50_ms']:.2f} ms, p99 {inproc['p99_ms']:.2f} ms"
        )
        rows = []
        for r in replicas:
            row = _over_http(target, hexes, clients, seconds, 1, replicas=r, env=env)
            row["ratio_to_in_process"] = row["qps"] / inproc["qps"]
            rows.append(row)
            log(
                f"PostgreSQL store, {r} replica(s) of one worker, {clients} clients, {seconds:.0f} s: "
                f"{row['qps']:,.0f} q/s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                f"{row['errors']} errors of {row['requests']:,} requests; {row['ratio_to_in_process']:.2f}x in-process"
            )
    return {"store": safe_url(url), "build_s": build_s, "in_process": inproc, "replicas": rows}


def _random_index(target, items: int, log, **kw) -> np.ndarray:
    """An index of `items` random 32-bit codes at target (a SQLite path or a URL; the same codes,
    keys and labels every time); returns 20,000 queries one bit away from them."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (items, 4), dtype=np.uint8)
    t = time.perf_counter()
    idx = Index.create(target, NAME, 32, **kw)
    idx.add([f"item-{i}" for i in range(items)], codes, labels=rng.integers(0, 10, items))
    idx.store.engine.dispose()
    where = "SQLite" if isinstance(target, Path) else safe_url(str(target))
    log(f"index of {items:,} random 32-bit codes built in {where} in {time.perf_counter() - t:.1f} s")
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


def _over_http(
    target: str, hexes: list[str], clients: int, seconds: float, workers: int, replicas: int = 1, env=None
) -> dict:
    """`replicas` servers of `workers` workers each on target, loaded by the clients together."""
    import httpx

    servers, urls = [], []
    try:
        for _ in range(replicas):
            port = free_port()
            servers.append(spawn_server(target, port, env=env, workers=workers))
            urls.append(f"http://127.0.0.1:{port}/indexes/{NAME}/search")
        for url in urls:
            for _ in range(8 * workers):  # a few searches first: time for every worker to be up and primed
                httpx.post(url, json={"codes": ["00000000"], "k": 10}, timeout=60)
        lat, errors, wall = asyncio.run(_load(urls, hexes, clients, seconds))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=60)
    row = _summary(np.array(lat), wall, errors, len(lat) + errors)
    row["workers"] = workers
    row["replicas"] = replicas
    return row


async def _load(urls: list[str], hexes: list[str], clients: int, seconds: float):
    """clients concurrent keep-alive connections, client c to urls[c % len(urls)], each sending its
    next request when the last is answered (aiohttp: the lightest well-kept client, so the servers
    get most of the shared cores)."""
    import aiohttp

    lat, errors = [], 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def client(c: int):
            nonlocal errors
            i, url = c, urls[c % len(urls)]
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
    ok = len(lat) > 0  # latencies are None when no request succeeded
    return {
        "requests": requests,
        "errors": errors,
        "qps": len(lat) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3) if ok else None,
        "p99_ms": float(np.percentile(lat, 99) * 1e3) if ok else None,
        "mean_ms": float(lat.mean() * 1e3) if ok else None,
    }


def plot(result: dict, path: Path) -> None:
    """Queries/s and p50/p99 latency: in-process and over HTTP per worker count (SQLite), and on
    the PostgreSQL store in-process and per replica count."""
    plt = pyplot()
    rows = [("in-process", result["in_process"])] if result["in_process"] else []
    rows += [(f"HTTP, {r['workers']} worker(s)", r) for r in result["http"]]
    pg = result.get("postgres")
    if pg:
        rows += [("PostgreSQL\nin-process", pg["in_process"])]
        rows += [(f"PostgreSQL\n{r['replicas']} replica(s)", r) for r in pg["replicas"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(5 + 1.6 * len(rows), 4))
    x = np.arange(len(rows))
    left.bar(x, [r["qps"] for _, r in rows], color="tab:blue")
    left.set(ylabel="queries / s", title=f"k-NN 10 over {result['items']:,} items, {result['clients']} clients")
    right.bar(x - 0.2, [r["p50_ms"] or 0 for _, r in rows], 0.4, label="p50")
    right.bar(x + 0.2, [r["p99_ms"] or 0 for _, r in rows], 0.4, label="p99")
    right.set(yscale="log", ylabel="latency (ms)", title="latency")
    right.legend()
    for ax in (left, right):
        ax.set_xticks(x, [n for n, _ in rows], fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
