"""Recall of the vectors' own candidates (hashing/signatures/vectors.py) where codes cannot help:
one collapsed cluster of 20,000 768-d vectors (members at cosine ~0.8 of each other) with 1,000
copies at each of cosine ~0.95, ~0.97 and ~0.99, and the time it takes.

    python -m semhash.benchmarks.crowd_recall
"""

from __future__ import annotations

import time

import numpy as np

from ..hashing.signatures import FEATURES
from ..hashing.signatures.vectors import window_pairs


def main(n: int = 20_000, d: int = 768, copies: int = 1000) -> dict:
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 1, d) + rng.normal(0, 0.5, (n, d))).astype(np.float32)
    parts, truth, start = [x], {}, n
    for level in (0.95, 0.97, 0.99):
        noise = np.sqrt(1.25 * (1 / level - 1))  # cosine ~ |x|^2 / (|x|^2 + d noise^2), |x|^2 ~ 1.25 d
        src = rng.choice(n, copies, replace=False)
        parts.append(x[src] + rng.normal(0, noise, (copies, d)).astype(np.float32))
        truth[level] = {(int(a), start + i) for i, a in enumerate(src)}
        start += copies
    sig = FEATURES.make(np.concatenate(parts))
    t = time.perf_counter()
    got = {(int(q), int(p)) for qi, pos in window_pairs(sig, floor=0.9) for q, p in zip(qi, pos)}
    seconds = time.perf_counter() - t
    recall = {level: len(want & got) / len(want) for level, want in truth.items()}
    print(f"{len(sig):,} items, {seconds:.1f} s, {len(got):,} pairs at cosine >= 0.9")
    for level, r in recall.items():
        print(f"copies at cosine ~{level}: recall {r:.3f}")
    return {"seconds": seconds, "recall": recall}


if __name__ == "__main__":
    main()
