"""A user's own embeddings into an index: N x D float32 vectors in 10 .npy shards, with a keys file
and a metadata .jsonl, through `semhash index build --features FOLDER` (PCA-ITQ at 64 bits, trained
beforehand on a sample), end to end in a process of its own, against the floor of reading the
same shards with numpy alone. Peak memory: the process's proportional set size, read from /proc.
Writes embeddings.json and embeddings.png.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .processes import peak_rss
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

SHARDS = 10


def make_folder(folder: Path, n: int, d: int, seed: int = 0) -> None:
    """SHARDS .npy shards of clustered vectors, keys.txt and meta.jsonl, written a shard at a time."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (64, d)).astype(np.float32)
    with open(folder / "keys.txt", "w") as keys, open(folder / "meta.jsonl", "w") as meta:
        for s, part in enumerate(np.array_split(np.arange(n), SHARDS)):
            x = centres[rng.integers(0, 64, len(part))] + rng.normal(0, 0.5, (len(part), d)).astype(np.float32)
            np.save(folder / f"part-{s:02d}.npy", x.astype(np.float32))
            keys.writelines(f"doc-{i:08d}\n" for i in part)
            meta.writelines(json.dumps({"source": "web", "n": int(i)}) + "\n" for i in part)


def run(n: int = 1_000_000, d: int = 768, bits: int = 64, out=DEFAULT_OUT, log=print) -> dict:
    from ..hashing.baselines import ITQ

    folder = Path(tempfile.mkdtemp(prefix="semhash-embeddings-"))
    try:
        data = folder / "embeddings"
        data.mkdir()
        make_folder(data, n, d)
        log(f"{n:,} x {d} float32 in {SHARDS} shards ({n * d * 4 / 2**30:.1f} GiB), keys.txt, meta.jsonl")
        sample = np.load(data / "part-00.npy")[:50_000]
        ITQ(bits=bits).fit(sample).save(folder / "m.semhash")
        start = time.perf_counter()
        for shard in sorted(data.glob("part-*.npy")):
            float(np.load(shard).sum())
        floor = time.perf_counter() - start
        cmd = [sys.executable, "-c", "from semhash.cli.main import main; main()", "index", "build"]
        cmd += [str(folder / "e.db"), "--model", str(folder / "m.semhash"), "--features", str(data), "--json"]
        seconds, peak, _ = peak_rss(cmd)
        result = {
            "items": n,
            "dims": d,
            "bits": bits,
            "seconds": seconds,
            "items_per_s": n / seconds,
            "peak_rss_mb": peak / 2**20,
            "numpy_read_seconds": floor,
            "ratio_to_numpy_read": floor / seconds,
            "db_mb": (folder / "e.db").stat().st_size / 2**20,
        }
        log(
            f"index build: {seconds:.1f} s ({result['items_per_s']:,.0f} items/s), "
            f"peak {result['peak_rss_mb']:,.0f} MB, "
            f"database {result['db_mb']:,.0f} MB; reading the shards with numpy alone: {floor:.1f} s "
            f"(semhash / it {result['ratio_to_numpy_read']:.2f}x)"
        )
        log(written(write_result(out, "embeddings", result, lambda path: _plot(result, path))))
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _plot(result: dict, path: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.bar(["numpy read", "semhash build"], [result["numpy_read_seconds"], result["seconds"]])
    a.axhline(60, color="red", linestyle="--", label="60 s")
    a.set_ylabel("seconds")
    a.legend()
    b.bar(["semhash build"], [result["peak_rss_mb"]])
    b.axhline(4096, color="red", linestyle="--", label="4 GB")
    b.set_ylabel("peak memory, MB")
    b.legend()
    save_figure(fig, path)
