"""Near-duplicates among a million embeddings (issue 27's scale target: 1M items with 64-bit codes
deduplicated in under 5 minutes and 4 GB on 2 cores), ours against FAISS's IVF range search (the
way embedding dedup is usually done, as SemDeDup does), in one run, on two corpora of N x D
float32 vectors in .npy shards with a keys file:

- spread: a 96-d latent space of decaying scales around a shared mean (random pairs at cosine
  ~0.3): 64-bit codes that spread;
- clustered: 80 Gaussian centres, noise 0.5 a dimension (cosine ~0.8 within a centre): PCA-ITQ
  codes collapse to a few hundred, a centre each (the crowded codes' path).

Each holds N/10 planted copies (cosine ~0.99) of as many originals. Ours: `semhash index build
--features` (a 64-bit PCA-ITQ model fitted beforehand on other draws) and `semhash dedup --pairs
--format json` at its default (cosine >= 0.95), each a process of its own. The peer: a
faiss.IndexIVFScalarQuantizer (unit rows in float16, as ours keeps them; inner product; NLIST
lists trained on a sample, NPROBE probed) range-searched at the same cosine, in a process of its
own. Each is timed with its peak memory (the process's proportional set size). Scores: the share
of planted pairs found (recall) and of found pairs that were planted (precision: no other pair of
these corpora comes near 0.95). Writes dedup-scale.json and dedup-scale.png.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .processes import peak_rss
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

SHARDS, THRESHOLD, BITS = 10, 0.95, 64
NLIST, NPROBE, FAISS_TRAIN = 1024, 8, 60_000
SEMHASH = [sys.executable, "-c", "from semhash.cli.main import main; main()"]


def make_corpus(folder: Path, kind: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    """Write SHARDS .npy shards (the originals, then their copies in the last) and keys.txt into
    folder, and model.semhash (PCA-ITQ on other draws) beside it; return the copied originals'
    rows (n // 10,): the planted pairs are (v{i}, c{i})."""
    rng = np.random.default_rng(seed)
    draw = _spread(rng, d) if kind == "spread" else _clustered(rng, d)
    copies = n // 10
    base = n - copies
    picked = np.sort(rng.choice(base, copies, replace=False))
    from ..hashing.baselines import ITQ

    ITQ(bits=BITS).fit(draw(min(50_000, max(n // 2, 1000)))).save(folder.parent / "model.semhash")
    originals = []
    with open(folder / "keys.txt", "w") as keys:
        for s, part in enumerate(np.array_split(np.arange(base), SHARDS - 1)):
            x = draw(len(part))
            originals.append(x[np.isin(part, picked)])
            np.save(folder / f"part-{s:02d}.npy", x)
            keys.writelines(f"v{i:07d}\n" for i in part)
        orig = np.concatenate(originals)
        noise = 0.1 if kind == "spread" else 0.12  # copies at cosine ~0.99 in either corpus
        np.save(folder / f"part-{SHARDS - 1:02d}.npy", orig + rng.normal(0, noise, orig.shape).astype(np.float32))
        keys.writelines(f"c{i:07d}\n" for i in picked)
    return picked


def _spread(rng, d: int):
    latent = min(96, d // 2)
    w = np.linalg.qr(rng.normal(size=(d, latent)))[0].T * np.linspace(3, 0.5, latent)[:, None]
    mean = rng.normal(size=d)
    mean *= 12.2 / np.linalg.norm(mean)  # random pairs at cosine ~0.3
    return lambda m: (mean + rng.normal(size=(m, latent)) @ w + rng.normal(0, 0.06, (m, d))).astype(np.float32)


def _clustered(rng, d: int, centres: int = 80):
    c = rng.normal(0, 1, (centres, d)).astype(np.float32)
    return lambda m: c[rng.integers(0, centres, m)] + rng.normal(0, 0.5, (m, d)).astype(np.float32)


def ours(folder: Path, work: Path) -> dict:
    """`semhash index build` then `semhash dedup`, each timed; the pairs found as key pairs."""
    db, pairs = work / "e.db", work / "pairs.json"
    build = SEMHASH + ["index", "build", str(db), "--model", str(work / "model.semhash"), "--features", str(folder)]
    b_s, b_peak, _ = peak_rss(build)
    dedup = ["sh", "-c", 'exec "$@" > "$0"', str(pairs), *SEMHASH, "dedup", str(db), "--pairs", "--format", "json"]
    d_s, d_peak, err = peak_rss(dedup)
    found = json.loads(pairs.read_text())
    said = [line for line in err.splitlines() if line.strip()]
    got = {(p["a"], p["b"]) for p in found["pairs"]}
    return {"build_s": b_s, "build_peak_mb": b_peak / 2**20, "seconds": d_s, "peak_mb": d_peak / 2**20,
            "said": said, "candidates": found["candidates"], "pairs": got}  # fmt: skip


def faiss_peer(folder: str, out: str, threshold: float = THRESHOLD) -> None:
    """The peer, run in a process of its own: an IVF index of float16 unit rows, every row
    range-searched at cosine >= threshold; writes the pairs (i < j, row numbers) and the number of
    lists to out (.npz)."""
    import faiss

    shards = sorted(Path(folder).glob("part-*.npy"))
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
    first = unit(np.load(shards[0]))
    d, nlist = first.shape[1], min(NLIST, max(1, len(first) // 39))
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_fp16)
    index.metric_type = faiss.METRIC_INNER_PRODUCT
    index.train(first[:FAISS_TRAIN])
    for shard in shards:
        index.add(unit(np.load(shard)))
    index.nprobe = NPROBE
    found, start = [], 0
    for shard in shards:
        x = unit(np.load(shard))
        lims, _, ids = index.range_search(x, threshold - 1e-6)
        q = np.repeat(np.arange(start, start + len(x)), np.diff(lims.astype(np.int64)))
        keep = ids > q
        found.append(np.stack([q[keep], ids[keep]], axis=1))
        start += len(x)
    np.savez(out, pairs=np.concatenate(found), nlist=nlist)


def peer(folder: Path, work: Path) -> dict:
    call = f"faiss_peer({str(folder)!r}, {str(work / 'faiss.npz')!r})"
    code = f"from semhash.benchmarks.bench_dedup_scale import faiss_peer; {call}"
    seconds, peak, _ = peak_rss([sys.executable, "-c", code])
    keys = (folder / "keys.txt").read_text().split()
    saved = np.load(work / "faiss.npz")
    pairs = {(keys[i], keys[j]) for i, j in saved["pairs"].tolist()}
    return {"seconds": seconds, "peak_mb": peak / 2**20, "nlist": int(saved["nlist"]), "pairs": pairs}


def score(found: set, picked: np.ndarray) -> dict:
    truth = {frozenset((f"v{i:07d}", f"c{i:07d}")) for i in picked.tolist()}
    got = {frozenset(p) for p in found}
    hit = len(got & truth)
    return {"found": len(got), "precision": hit / max(len(got), 1), "recall": hit / max(len(truth), 1)}


def run(n: int = 1_000_000, d: int = 768, corpora=("spread", "clustered"), out=DEFAULT_OUT, log=print) -> dict:
    result = {"items": n, "dims": d, "bits": BITS, "threshold": THRESHOLD, "corpora": {}}
    for kind in corpora:
        work = Path(tempfile.mkdtemp(prefix="semhash-dedup-scale-"))
        try:
            folder = work / "vecs"
            folder.mkdir()
            picked = make_corpus(folder, kind, n, d)
            mine, theirs = ours(folder, work), peer(folder, work)
            part = {
                "ours": {k: v for k, v in mine.items() if k != "pairs"} | score(mine["pairs"], picked),
                "faiss_ivf": {k: v for k, v in theirs.items() if k != "pairs"}
                | {"nprobe": NPROBE}
                | score(theirs["pairs"], picked),
            }
            part["ratios"] = {
                "time ours / faiss": part["ours"]["seconds"] / part["faiss_ivf"]["seconds"],
                "memory ours / faiss": part["ours"]["peak_mb"] / part["faiss_ivf"]["peak_mb"],
            }
            result["corpora"][kind] = part
            _table(kind, part, n, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log(written(write_result(out, "dedup-scale", result, lambda path: _plot(result, path))))
    return result


def _table(kind: str, part: dict, n: int, log) -> None:
    o, f = part["ours"], part["faiss_ivf"]
    log(f"\n{kind}: {n:,} items ({n // 10:,} planted copies); dedup at cosine >= {THRESHOLD}")
    log(" | ".join(["method", "precision", "recall", "s", "peak MB"]))
    for name, r in (("semhash dedup", o), (f"faiss IVF{f['nlist']} nprobe {f['nprobe']}", f)):
        log(f"{name} | {r['precision']:.4f} | {r['recall']:.4f} | {r['seconds']:.1f} | {r['peak_mb']:,.0f}")
    log(f"(ours' index build before it: {o['build_s']:.1f} s, {o['build_peak_mb']:,.0f} MB)")
    for k, v in part["ratios"].items():
        log(f"{k}: {v:.3g}")


def _plot(result: dict, path: Path) -> None:
    plt = pyplot()
    kinds = list(result["corpora"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    x = np.arange(len(kinds))
    for k, (name, label) in enumerate([("ours", "semhash dedup"), ("faiss_ivf", "faiss IVF")]):
        a.bar(x + 0.4 * k, [result["corpora"][c][name]["seconds"] for c in kinds], 0.4, label=label)
        b.bar(x + 0.4 * k, [result["corpora"][c][name]["peak_mb"] for c in kinds], 0.4, label=label)
    for ax, limit, unit in ((a, 300, "seconds"), (b, 4096, "peak memory, MB")):
        ax.axhline(limit, color="red", linestyle="--", label="target")
        ax.set_xticks(x + 0.2, kinds)
        ax.set_ylabel(unit)
    a.legend()
    save_figure(fig, path)
