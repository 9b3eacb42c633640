"""The peers of `semhash bench dedup`, each run as a process of its own over the corpus on disk (so
its time and peak memory are measured as ours are):

    python -m semhash.benchmarks.dedup_peers minhash corpus.jsonl out.npz '{"num_perm": 128, ...}'
    python -m semhash.benchmarks.dedup_peers imagehash folder/ out.npz '{"hash": "phash", ...}'

minhash: datasketch's MinHash of each document's word n-gram set, then one MinHashLSH per
threshold over them (the sketches made once, each threshold's index built and queried on its
own); its pairs are the LSH's candidates, scored by the sketches' estimated Jaccard similarity.
imagededup (optional): its PHash, DHash or WHash with its own find_duplicates.
imagehash: imagehash's pHash, dHash or wHash (64 bits) of every image, then every pair within
max_distance bits by brute force (xor and popcount over all pairs, in blocks: what imagededup's
brute-force search does, vectorised), scored -distance.

Each writes out.npz: for every setting s, arrays `i_s`, `j_s`, `score_s`, and `meta` (JSON: the
seconds of each step).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np

NEEDS = {"minhash": "datasketch", "imagehash": "imagehash", "imagededup": "imagededup"}


def missing(method: str) -> str | None:
    """The package a peer needs and this environment lacks (None when it can run)."""
    package = NEEDS[method]
    return None if find_spec(package) else package


def shingles(text: str, ngram: int) -> set[bytes]:
    """The set of a document's word n-grams, as bytes (datasketch hashes bytes)."""
    w = text.split()
    if len(w) < ngram:
        return {" ".join(w).encode()}
    return {" ".join(w[k : k + ngram]).encode() for k in range(len(w) - ngram + 1)}


def run_minhash(corpus: Path, params: dict) -> tuple[dict, dict]:
    """MinHashLSH at each of params["thresholds"] over params["num_perm"]-permutation sketches of
    params["ngram"]-word shingles. Returns (arrays, meta)."""
    from datasketch import MinHash, MinHashLSH

    texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8")]
    start = time.perf_counter()
    sketches = MinHash.bulk([shingles(t, params["ngram"]) for t in texts], num_perm=params["num_perm"])
    hv = np.stack([m.hashvalues for m in sketches])  # (n, num_perm) uint64
    meta, arrays = {"minhash_s": time.perf_counter() - start, "lsh_s": {}}, {}
    for t in params["thresholds"]:
        start = time.perf_counter()
        lsh = MinHashLSH(threshold=t, num_perm=params["num_perm"])
        with lsh.insertion_session() as session:
            for k, m in enumerate(sketches):
                session.insert(k, m, check_duplication=False)
        found = [(k, o) for k, m in enumerate(sketches) for o in lsh.query(m) if o > k]
        meta["lsh_s"][str(t)] = time.perf_counter() - start
        i, j = (np.asarray(c, dtype=np.int64) for c in zip(*found)) if found else (np.zeros(0, np.int64),) * 2
        arrays.update({f"i_{t}": i, f"j_{t}": j, f"score_{t}": _estimated_jaccard(hv, i, j)})
        del lsh
    return arrays, meta


def _estimated_jaccard(hv: np.ndarray, i: np.ndarray, j: np.ndarray, block: int = 100_000) -> np.ndarray:
    """The share of equal sketch values of each pair (MinHash's Jaccard estimate), in blocks."""
    out = [(hv[i[k : k + block]] == hv[j[k : k + block]]).mean(axis=1) for k in range(0, len(i), block)]
    return np.concatenate(out) if out else np.zeros(0)


def image_files(folder: Path) -> list[Path]:
    """The corpus's images in item order (<item number>.png / .jpg)."""
    return sorted((p for p in folder.iterdir() if p.suffix in (".png", ".jpg")), key=lambda p: int(p.stem))


def run_imagehash(folder: Path, params: dict) -> tuple[dict, dict]:
    """params["hash"] (phash, dhash or whash) of every image, then every pair within
    params["max_distance"] bits. Returns (arrays, meta)."""
    import imagehash
    from PIL import Image

    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash, "whash": imagehash.whash}[params["hash"]]
    start = time.perf_counter()
    bits = []
    for f in image_files(folder):
        with Image.open(f) as im:
            bits.append(fn(im).hash.reshape(-1))
    codes = np.packbits(np.asarray(bits), axis=1).view(">u8").reshape(-1).astype(np.uint64)
    hashed = time.perf_counter()
    i, j, d = hamming_pairs(codes, params["max_distance"])
    meta = {"hash_s": hashed - start, "match_s": time.perf_counter() - hashed}
    return {"i_0": i, "j_0": j, "score_0": -d.astype(np.float64)}, meta


def hamming_pairs(codes: np.ndarray, max_distance: int, budget: int = 5_000_000, block: int = 1024):
    """(i, j, distance), i < j, of every two 64-bit codes within max_distance bits, by brute force;
    fewer bits when that many would hold more than `budget` pairs (the distances are counted in a
    first pass, so the cut is at a whole distance)."""
    counts = np.zeros(65, np.int64)
    for a, d in _distance_blocks(codes, block):
        counts += np.bincount(d[np.triu(np.ones(d.shape, bool), k=1 + a)], minlength=65)
    within = np.flatnonzero(np.cumsum(counts) <= budget)
    limit = min(max_distance, int(within.max()) if len(within) else 0)
    found = []
    for a, d in _distance_blocks(codes, block):
        qi, pos = np.nonzero(d <= limit)
        keep = pos > qi + a
        found.append((qi[keep] + a, pos[keep], d[qi[keep], pos[keep]]))
    return tuple(np.concatenate(c).astype(np.int64) for c in zip(*found))


def _distance_blocks(codes: np.ndarray, block: int):
    """(first row, (rows, n) Hamming distances) of each block of rows against every code."""
    for a in range(0, len(codes), block):
        yield a, np.bitwise_count(codes[a : a + block, None] ^ codes[None, :])


def run_imagededup(folder: Path, params: dict) -> tuple[dict, dict]:
    """imagededup's params["hash"] (PHash, DHash, WHash or AHash) of every image, then its own
    find_duplicates within params["max_distance"] bits (its default search). Returns (arrays, meta)."""
    import imagededup.methods

    method = getattr(imagededup.methods, params["hash"])(verbose=False)
    start = time.perf_counter()
    encodings = method.encode_images(image_dir=str(folder))
    hashed = time.perf_counter()
    found = method.find_duplicates(encoding_map=encodings, max_distance_threshold=params["max_distance"], scores=True)
    meta = {"hash_s": hashed - start, "match_s": time.perf_counter() - hashed}
    rows = [(int(Path(a).stem), int(Path(b).stem), d) for a, dups in found.items() for b, d in dups]
    i, j, d = (np.asarray(c, dtype=np.int64) for c in zip(*rows)) if rows else (np.zeros(0, np.int64),) * 3
    return {"i_0": i, "j_0": j, "score_0": -d.astype(np.float64)}, meta


RUNS = {"minhash": run_minhash, "imagehash": run_imagehash, "imagededup": run_imagededup}


def main(argv: list[str] | None = None) -> None:
    method, corpus, out, params = argv or sys.argv[1:]
    arrays, meta = RUNS[method](Path(corpus), json.loads(params))
    np.savez(out, meta=np.array(json.dumps(meta)), **arrays)


if __name__ == "__main__":
    main()
