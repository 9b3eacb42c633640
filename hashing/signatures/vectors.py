"""Candidate pairs of vectors from their signatures alone: sorted neighbourhoods of random
hyperplane keys, checked by their cosine as they are met.

    for qi, pos in window_pairs(sig, floor=0.95): ...        # pairs within one set, qi < pos
    for qi, pos in window_pairs(sig_a, sig_b, floor=0.95): ...  # qi in sig_b, pos in sig_a

Where the codes crowd (64-bit ITQ codes of 1M clustered embeddings: 15,845 items on one code)
they cannot say which of the items sharing one are duplicates. Each of TABLES tables sorts the
items by KEY_BITS random hyperplane signs (SimHash: two vectors at angle t agree on a sign with
probability 1 - t/pi), so items that agree on a long prefix lie side by side; each item is
compared with the WINDOW items after it. Work and pairs are bounded per item (TABLES * WINDOW
cosines), whatever the crowding; only pairs at cosine >= floor are handed on.
"""

from __future__ import annotations

import numpy as np

from .pair_ids import handed_on, pair_ids

TABLES, KEY_BITS, WINDOW = 8, 64, 16  # KEY_BITS: one uint64 a table
ROWS = 1 << 16  # signature rows gathered (as float32) at a time
SEED = 20_261_204  # the hyperplanes: the same for every run, so that a run repeats


def window_pairs(sig_a: np.ndarray, sig_b: np.ndarray | None = None, floor: float | None = None):
    """Yield (qi, pos) int64 arrays: pairs of unit rows (float16, (n, d)) that meet within WINDOW
    places in some table's order and whose dot product is at least floor (None: every such pair).
    sig_b None: within sig_a, each pair once (qi < pos); else an item of sig_b (qi) with one of
    sig_a (pos)."""
    n_a = len(sig_a)
    n = n_a + (0 if sig_b is None else len(sig_b))
    if n < 2:
        return
    keys = _keys(sig_a, sig_b)
    bar = -np.inf if floor is None else float(floor) - 1e-6
    found = []
    for t in range(TABLES):
        order = np.argsort(keys[:, t], kind="stable")
        found.append(_window_hits(order, sig_a, sig_b, bar))
    yield from handed_on(found, n, None if sig_b is None else n_a)


def _rows(sig_a: np.ndarray, sig_b: np.ndarray | None, at: np.ndarray) -> np.ndarray:
    """float32 rows at positions `at` of sig_a followed by sig_b."""
    if sig_b is None:
        return sig_a[at].astype(np.float32)
    out = np.empty((len(at), sig_a.shape[1]), np.float32)
    in_a = at < len(sig_a)
    out[in_a] = sig_a[at[in_a]]
    out[~in_a] = sig_b[at[~in_a] - len(sig_a)]
    return out


def _keys(sig_a: np.ndarray, sig_b: np.ndarray | None) -> np.ndarray:
    """(n, TABLES) uint64: each row's KEY_BITS hyperplane signs a table, the first plane highest."""
    d = sig_a.shape[1]
    planes = np.random.default_rng(SEED).standard_normal((d, TABLES * KEY_BITS)).astype(np.float32)
    n = len(sig_a) + (0 if sig_b is None else len(sig_b))
    keys = np.empty((n, TABLES), np.uint64)
    for start in range(0, n, ROWS):
        at = np.arange(start, min(n, start + ROWS))
        signs = np.packbits(_rows(sig_a, sig_b, at) @ planes > 0, axis=1)  # (rows, TABLES * KEY_BITS / 8)
        keys[at] = signs.view(">u8").astype(np.uint64)  # big-endian: the first plane the highest bit
    return keys


def _window_hits(order: np.ndarray, sig_a, sig_b, bar: float) -> np.ndarray:
    """Pair ids (low * n + high) of items within WINDOW places of each other in `order` whose dot
    product is at least bar, the rows gathered ROWS at a time."""
    n, out = len(order), []
    for start in range(0, n - 1, ROWS):
        at = order[start : start + ROWS + WINDOW]
        x = _rows(sig_a, sig_b, at)
        head = min(ROWS, len(at) - 1)
        for w in range(1, WINDOW + 1):
            m = min(head, len(at) - w)
            if m <= 0:
                break
            dots = np.einsum("ij,ij->i", x[:m], x[w : w + m])
            hit = np.flatnonzero(dots >= bar)
            a, b = at[hit], at[hit + w]
            out.append(pair_ids(a, b, n))
    return np.concatenate(out) if out else np.zeros(0, np.int64)
