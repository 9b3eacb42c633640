"""Hostile requests against a running `semhash serve`, while well-behaved clients keep searching.

Each hostile request (a PNG that declares 13,000 x 13,000 pixels; a 40 MB JSON body; four of
those PNGs at once) is timed to its answer, the server's resident memory (RSS, from /proc) is read
before and after, and the other clients' k-NN latencies over the same seconds give their p99.
Writes hostile.json and hostile.png.
"""

from __future__ import annotations

import struct
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..hashing.codes import one_bit_away
from ..index_store.http.launcher import free_port, spawn_server
from ..index_store.index import Index
from .results import DEFAULT_OUT, pyplot, save_figure, write_result


def declared_png(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height: a few hundred KB on disk, width x height bytes decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * ((width + 1) * height), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def run(items: int = 100_000, clients: int = 4, out=DEFAULT_OUT, log=print) -> dict:
    """Serve `items` random 32-bit codes, search with `clients` threads, send the hostile requests."""
    folder = Path(tempfile.mkdtemp(prefix="semhash-hostile-"))
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (items, 4), dtype=np.uint8)
    Index.create(folder / "h.db", "default", 32).add([f"item-{i}" for i in range(items)], codes)
    port = free_port()
    server = spawn_server(str(folder / "h.db"), port)
    try:
        hexes = [q.tobytes().hex() for q in one_bit_away(codes, 1000, rng)]
        result = _attack(port, server.pid, hexes, clients, log)
    finally:
        server.kill()
        server.wait()
    write_result(out, "hostile", result, lambda path: _plot(result, path))
    return result


def _attack(port: int, pid: int, hexes: list[str], clients: int, log) -> dict:
    import httpx

    base = f"http://127.0.0.1:{port}/indexes/default"
    cases = _cases(base)
    latencies, stop = [], threading.Event()
    threads = [threading.Thread(target=_search_loop, args=(base, hexes, latencies, stop)) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)  # the clients' steady state first
    rss_before, rows = _rss_mb(pid), []
    with httpx.Client(timeout=60) as client:
        for name, send in cases.items():
            rows.append(_timed(name, lambda send=send: [send(client)]))
        with ThreadPoolExecutor(4) as pool:
            rows.append(
                _timed(
                    "4 such PNGs at once", lambda: list(pool.map(lambda _: cases[next(iter(cases))](client), range(4)))
                )
            )
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    lat = np.array(latencies) * 1e3
    result = {
        "rows": rows,
        "rss_before_mb": rss_before,
        "rss_after_mb": _rss_mb(pid),
        "clients": clients,
        "client_requests": len(lat),
        "client_p50_ms": float(np.percentile(lat, 50)),
        "client_p99_ms": float(np.percentile(lat, 99)),
    }
    for r in rows:
        log(f"{r['case']:<40} answered {r['statuses']} in {r['seconds']:.2f} s")
    log(
        f"server RSS {result['rss_before_mb']:.0f} -> {result['rss_after_mb']:.0f} MB; other clients: "
        f"{len(lat):,} k-NN searches, p50 {result['client_p50_ms']:.1f} ms, p99 {result['client_p99_ms']:.1f} ms"
    )
    return result


def _cases(base: str) -> dict:
    """The hostile requests by name: each sends itself with an httpx client."""
    bomb = declared_png(13_000, 13_000)
    big_json = b'{"vectors": [[' + b"0," * (20 << 20) + b"0]]}"
    return {
        "png declaring 13,000 x 13,000 pixels": lambda c: c.post(
            f"{base}/search/image", files={"image": ("b.png", bomb)}
        ),
        "40 MB JSON body": lambda c: c.post(
            f"{base}/search/vectors", content=big_json, headers={"content-type": "application/json"}
        ),
    }


def _search_loop(base: str, hexes: list[str], latencies: list, stop: threading.Event) -> None:
    import httpx

    with httpx.Client(timeout=30) as client:
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            client.post(f"{base}/search", json={"codes": [hexes[i % len(hexes)]], "k": 10}).raise_for_status()
            latencies.append(time.perf_counter() - t)
            i += 1


def _timed(name: str, send) -> dict:
    t = time.perf_counter()
    responses = send()
    return {
        "case": name,
        "seconds": time.perf_counter() - t,
        "statuses": sorted({r.status_code for r in responses}),
        "detail": responses[0].json().get("detail", ""),
    }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _plot(result: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    names = [r["case"] for r in result["rows"]]
    ax.barh(names, [r["seconds"] for r in result["rows"]])
    ax.set(
        xlabel="seconds to the answer",
        title=f"server RSS {result['rss_before_mb']:.0f} -> "
        f"{result['rss_after_mb']:.0f} MB; others' p99 {result['client_p99_ms']:.0f} ms",
    )
    save_figure(fig, path)
