"""Crowded codes: when one code holds more items than can be told apart by it (clusters whose
codes collapse), their pairs come from the signatures' own proposals, a bounded number an item.

    find_duplicates("vecs.db", pairs=True)   # a code of 300 items: no 45,000 candidate pairs

Checked against brute force: the pairs found are exactly those a full cosine matrix holds above
the threshold, with far fewer candidates than the crowded codes' pairs.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

import semhash
from semhash.hashing.signatures import FEATURES
from semhash.hashing.signatures.vectors import window_pairs
from semhash.index_store.duplicates import find_duplicates


def clusters_with_copies(rng, clusters=4, size=300, copies=40, d=32) -> np.ndarray:
    """clusters x size vectors around far-apart centres (members at cosine ~0.8 of each other),
    then near copies (cosine ~0.995) of the first `copies` items of each cluster."""
    centres = rng.normal(0, 1, (clusters, d)) * 4
    x = np.concatenate([c + rng.normal(0, 2, (size, d)) for c in centres]).astype(np.float32)
    picked = np.concatenate([np.arange(copies) + k * size for k in range(clusters)])
    near = x[picked] + rng.normal(0, 0.15, (len(picked), d)).astype(np.float32)
    return np.concatenate([x, near])


def brute_force(x: np.ndarray, threshold: float, y: np.ndarray | None = None) -> set:
    """{(i, j)} of rows at cosine >= threshold: within x (i < j), or y's i against x's j."""
    sig_x = FEATURES.make(x).astype(np.float32)
    if y is None:
        sim = sig_x @ sig_x.T
        return {(i, j) for i, j in combinations(range(len(x)), 2) if sim[i, j] >= threshold - 1e-6}
    sim = FEATURES.make(y).astype(np.float32) @ sig_x.T
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(sim >= threshold - 1e-6))}


def test_window_pairs_hand_on_the_near_copies_and_nothing_below_the_floor(rng):
    x = clusters_with_copies(rng)
    sig = FEATURES.make(x)
    got = {(int(q), int(p)) for qi, pos in window_pairs(sig, floor=0.95) for q, p in zip(qi, pos)}
    assert all(q < p for q, p in got)
    assert got == brute_force(x, 0.95) and len(got) >= 160  # every planted copy, no other pair


def test_window_pairs_across_two_sets_pair_only_across(rng):
    x = clusters_with_copies(rng)
    a, b = x[:1200], x[1200:]
    got = {
        (int(q), int(p)) for qi, pos in window_pairs(FEATURES.make(a), FEATURES.make(b), 0.95) for q, p in zip(qi, pos)
    }
    assert got == brute_force(a, 0.95, b)  # (b's item, a's item): each copy with its original


def test_a_crowded_code_proposes_no_pairs_and_its_copies_are_still_found(rng, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    x = clusters_with_copies(rng)
    np.save(tmp_path / "vecs.npy", x)
    semhash.train("itq", str(tmp_path / "vecs.npy"), tmp_path / "m.semhash", bits=16)
    db = tmp_path / "vecs.db"
    semhash.build_index(db, tmp_path / "m.semhash", str(tmp_path / "vecs.npy"))
    heard = []
    got = find_duplicates(db, threshold=0.95, radius=0, pairs=True, announce=heard.append)

    _, counts = np.unique(semhash.encode(tmp_path / "m.semhash", vectors=x)[1], axis=0, return_counts=True)
    crowded_pairs = int(sum(c * (c - 1) // 2 for c in counts if c > 64))
    assert crowded_pairs > 10_000  # the codes collapse: a code holds a whole cluster
    assert any("share their code with more than 64 others" in line for line in heard)
    assert got["candidates"] < crowded_pairs / 20

    keys = [f"vecs/{i}" for i in range(len(x))]
    found = {frozenset((p["a"], p["b"])) for p in got["pairs"]}
    assert found == {frozenset((keys[i], keys[j])) for i, j in brute_force(x, 0.95)}
