"""Hostile requests against a running `semhash serve`, while well-behaved clients keep searching.

Each hostile request (a PNG that declares 13,000 x 13,000 pixels; a 40 MB JSON body; four of
those PNGs at once) is timed to its answer, the server's resident memory (RSS, from /proc) is read
before and after, and the other clients' k-NN latencies over the same seconds give their p99.
The same server serves a folder of images (index "photos", built with a small model, so items have
source files): thumbnails of that PNG, of a 24 MP photo (a 6000 x 4000 JPEG), of it again (cached)
and of four other 24 MP photos at once are timed the same way. Then `semhash search --show` draws
a grid of every photo item, its peak memory read from /proc. Writes hostile.json and hostile.png.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
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
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written


def declared_png(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height: a few hundred KB on disk, width x height bytes decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * ((width + 1) * height), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def run(items: int = 100_000, clients: int = 4, out=DEFAULT_OUT, log=print) -> dict:
    """Serve `items` random 32-bit codes and a folder of photos, search with `clients` threads,
    send the hostile requests, then draw a `search --show` grid of the photos."""
    folder = Path(tempfile.mkdtemp(prefix="semhash-hostile-"))
    try:
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 256, (items, 4), dtype=np.uint8)
        db = folder / "h.db"
        Index.create(db, "default", 32).add([f"item-{i}" for i in range(items)], codes)
        photos = photo_index(folder, db)
        log(f"served: {items:,} random codes, and {len(photos)} pictures in a folder (index photos)")
        port = free_port()
        server = spawn_server(str(db), port)
        try:
            hexes = [q.tobytes().hex() for q in one_bit_away(codes, 1000, rng)]
            result = _attack(port, server.pid, hexes, clients, log)
        finally:
            server.kill()
            server.wait()
        result["show"] = _show(db, photos, folder / "grid.png", log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log(written(write_result(out, "hostile", result, lambda path: _plot(result, path))))
    return result


PHOTO = (6000, 4000)  # a 24 MP camera photo
SMALL = 16  # ordinary small pictures beside it


def photo_index(folder: Path, db: Path) -> list[Path]:
    """Index "photos" of db: a folder of SMALL pictures, `big.png` and five 24 MP JPEGs
    (`photo-0.jpg` and four hard links to it, each a thumbnail of its own), encoded by a small
    model (28 x 28 grey ITQ). big.png is an ordinary picture while the index is built, then
    replaced by a PNG declaring 13,000 x 13,000 pixels, as a served folder's files change.
    Returns the folder's files."""
    from ..index_store.build import build_index
    from .pictures import model_for, picture

    photos, rng = folder / "photos", np.random.default_rng(1)
    photos.mkdir()
    for i in range(SMALL):
        picture(rng, 160, 120).save(photos / f"small-{i:02d}.jpg", quality=90)
    picture(rng, 160, 120).save(photos / "big.png")
    picture(rng, *PHOTO).save(photos / "photo-0.jpg", quality=90)
    for i in range(1, 5):
        os.link(photos / "photo-0.jpg", photos / f"photo-{i}.jpg")
    build_index(str(db), model_for(folder, (1, 28, 28)), str(photos), name="photos")
    (photos / "big.png").write_bytes(declared_png(13_000, 13_000))
    return sorted(photos.iterdir())


def _attack(port: int, pid: int, hexes: list[str], clients: int, log) -> dict:
    import httpx

    base = f"http://127.0.0.1:{port}/indexes"
    latencies, stop = [], threading.Event()
    threads = [threading.Thread(target=_search_loop, args=(base, hexes, latencies, stop)) for _ in range(clients)]
    for t in threads:
        t.start()
    with httpx.Client(timeout=60) as client:
        client.get(f"{base}/photos/thumbnail", params={"key": "photos/small-00.jpg"}).raise_for_status()
        time.sleep(2)  # the clients' steady state first (and PIL's PNG writer loaded, above)
        rss_before, peak_before = _rss_mb(pid), _rss_mb(pid, "VmHWM")
        rows = [_timed(name, expect, lambda send=send: send(client), pid) for name, expect, send in _cases(base)]
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    lat = np.array(latencies) * 1e3
    result = {
        "rows": rows,
        "rss_before_mb": rss_before,
        "rss_after_mb": _rss_mb(pid),
        "peak_rss_before_mb": peak_before,
        "peak_rss_after_mb": _rss_mb(pid, "VmHWM"),
        "clients": clients,
        "client_requests": len(lat),
        "client_p50_ms": float(np.percentile(lat, 50)),
        "client_p99_ms": float(np.percentile(lat, 99)),
    }
    for r in rows:
        log(f"{r['case']:<46} {r['statuses']} in {r['seconds']:.2f} s, server RSS {r['rss_after_mb']:.0f} MB")
    log(
        f"server RSS {rss_before:.0f} -> {result['rss_after_mb']:.0f} MB (peak {peak_before:.0f} -> "
        f"{result['peak_rss_after_mb']:.0f} MB); other clients: {len(lat):,} k-NN searches, "
        f"p50 {result['client_p50_ms']:.1f} ms, p99 {result['client_p99_ms']:.1f} ms"
    )
    return result


def _cases(base: str) -> list[tuple]:
    """The requests as (name, "refused" or "answered", send): send(client) -> its responses."""
    bomb = declared_png(13_000, 13_000)
    big_json = b'{"vectors": [[' + b"0," * (20 << 20) + b"0]]}"

    def upload(c):  # to the index with a model: the random codes' index would refuse any image for having none
        return c.post(f"{base}/photos/search/image", files={"image": ("b.png", bomb)})

    def thumbnails(*names):
        get = [lambda c, n=n: c.get(f"{base}/photos/thumbnail", params={"key": f"photos/{n}"}) for n in names]
        return lambda c: _at_once(c, get)

    json_body = {"content": big_json, "headers": {"content-type": "application/json"}}
    others = [f"photo-{i}.jpg" for i in range(1, 5)]
    return [
        ("png declaring 13,000 x 13,000 pixels", "refused", lambda c: [upload(c)]),
        ("40 MB JSON body", "refused", lambda c: [c.post(f"{base}/default/search/vectors", **json_body)]),
        ("4 such PNGs at once", "refused", lambda c: _at_once(c, [upload] * 4)),
        ("thumbnail of that PNG (an indexed file)", "refused", thumbnails("big.png")),
        ("thumbnail of a 24 MP photo (6000 x 4000 JPEG)", "answered", thumbnails("photo-0.jpg")),
        ("the same thumbnail again (cached)", "answered", thumbnails("photo-0.jpg")),
        ("thumbnails of 4 other 24 MP photos at once", "answered", thumbnails(*others)),
    ]


def _at_once(client, sends: list) -> list:
    """Each send(client) on a thread of its own, all at once; their responses in order."""
    with ThreadPoolExecutor(len(sends)) as pool:
        return list(pool.map(lambda send: send(client), sends))


def _search_loop(base: str, hexes: list[str], latencies: list, stop: threading.Event) -> None:
    import httpx

    with httpx.Client(timeout=30) as client:
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            client.post(f"{base}/default/search", json={"codes": [hexes[i % len(hexes)]], "k": 10}).raise_for_status()
            latencies.append(time.perf_counter() - t)
            i += 1


def _timed(name: str, expect: str, send, pid: int) -> dict:
    t = time.perf_counter()
    responses = send()
    return {
        "case": name,
        "expect": expect,
        "seconds": time.perf_counter() - t,
        "statuses": sorted({r.status_code for r in responses}),
        "detail": _what(responses[0]),
        "rss_after_mb": _rss_mb(pid),
    }


def _what(response) -> str:
    """A refusal's one-line detail, or what a PNG answer is: its size in pixels and bytes."""
    if response.headers.get("content-type") == "image/png":
        width, height = struct.unpack(">II", response.content[16:24])  # the IHDR chunk's first fields
        return f"image/png {width} x {height}, {len(response.content):,} bytes"
    return response.json().get("detail", "")


def _show(db: Path, photos: list[Path], grid: Path, log) -> dict:
    """`semhash search --show grid.png` of a small picture, every photo item a hit: seconds and peak
    memory, against the same search without --show."""
    from .processes import peak_rss

    command = [sys.executable, "-c", "from semhash.cli.main import main; main()", "search", str(db)]
    command += ["--name", "photos", "--image", str(photos[-1]), "-k", str(len(photos)), "--format", "json"]
    seconds, peak, _ = peak_rss([*command, "--show", str(grid)])
    _, plain, _ = peak_rss(command)
    from PIL import Image

    with Image.open(grid) as im:
        size = im.size
    show = {"hits": len(photos), "seconds": seconds, "peak_rss_mb": peak / 2**20, "grid": list(size)}
    show["without_show_peak_rss_mb"] = plain / 2**20
    log(
        f"search --show, {len(photos)} hits (the 13,000 x 13,000 PNG and five 24 MP photos among them): "
        f"{seconds:.2f} s, peak RSS {show['peak_rss_mb']:.0f} MB ({show['without_show_peak_rss_mb']:.0f} MB "
        f"without --show), a {size[0]} x {size[1]} grid"
    )
    return show


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory (VmRSS) or its peak so far (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _plot(result: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    rows = result["rows"][::-1]  # the first case on top
    colours = ["tab:red" if r["expect"] == "refused" else "tab:blue" for r in rows]
    ax.barh(
        [f"{r['case']} ({'/'.join(map(str, r['statuses']))})" for r in rows],
        [r["seconds"] for r in rows],
        color=colours,
    )
    show = result["show"]
    ax.set_xlabel("seconds to the answer (red: refused, blue: answered)")
    ax.set_title(
        f"server RSS {result['rss_before_mb']:.0f} -> {result['rss_after_mb']:.0f} MB; others' k-NN p99 "
        f"{result['client_p99_ms']:.0f} ms\nsearch --show over these images: peak RSS {show['peak_rss_mb']:.0f} MB",
        fontsize=10,
    )
    save_figure(fig, path)
