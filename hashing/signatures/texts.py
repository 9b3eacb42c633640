"""Text signatures: one-permutation MinHash sketches of word shingles, compared by estimated
Jaccard similarity (hashing/signatures).

    sketches = minhash(["a text", ...])     # (n, BINS) uint16
    jaccard(sketches[i], sketches[j])       # (m,) estimated Jaccard of the texts' shingle sets

A text's words (runs of ASCII letters, digits, '_' and any non-ASCII character, lower-cased) are
hashed in numpy over a whole batch of texts at once, their 3-word shingles mixed from the words'
hashes, and each shingle hashed once: its top bits pick one of BINS bins, the rest is its value,
and the sketch keeps each bin's least value (one-permutation hashing, Li, Owen and Zhang 2012),
in 16 bits (b-bit MinHash: two different least values agree by chance 1 in 65,535 times).
That is one hash a shingle where classic MinHash computes BINS: measured on the 100,000 documents
of `semhash bench dedup`, ~40,000 documents/s against ~2,400 for 128 multiply-shift permutations.
Two texts agree in a bin with probability their Jaccard similarity; bins empty in both (short
texts) are left out of the estimate. Standard error sqrt(J(1-J)/BINS): 0.044 at J=0.5, 0.035 at
J=0.2 (no larger than classic MinHash's with as many permutations). Every constant is fixed, so
sketches made anywhere compare.
"""

from __future__ import annotations

import numpy as np

from . import Verifier, _batched
from .pair_ids import handed_on, pair_ids

BINS, SHINGLE = 128, 3  # sketch entries (a power of two); words a shingle
EMPTY = np.uint16(0xFFFF)  # a bin no shingle fell in
# text characters hashed at a time: ~10 uint64 temporaries a byte (~80 MB); faster than 4 MB batches
BATCH_BYTES = 1 << 20
_SHIFT = np.uint64(64 - int(np.log2(BINS)))
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)
_BASE = np.uint64(0x100000001B3)  # the polynomial's base (odd: its powers are invertible mod 2^64)
_WORD_BYTE = np.zeros(256, bool)
_WORD_BYTE[[*b"0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", *range(128, 256)]] = True


def _finalize(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every input bit moves every output bit (wrapping, as meant)."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


_POWERS: list[np.ndarray] = []  # [BASE^k, BASE^-k] for k below their length, grown on demand


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(BASE^k, BASE^-k) (n,) uint64 for k < n, mod 2^64: computed once (a cumulative product of
    4M entries took a third of the sketching time when made for every batch)."""
    if not _POWERS or len(_POWERS[0]) < n:
        size = max(n, 2 * BATCH_BYTES)
        both = []
        for base in (int(_BASE), pow(int(_BASE), -1, 1 << 64)):
            p = np.full(size, np.uint64(base), np.uint64)
            p[0] = 1
            both.append(np.cumprod(p, dtype=np.uint64))
        _POWERS[:] = both
    return _POWERS[0][:n], _POWERS[1][:n]


def _words(texts) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (w,) uint64, counts (n,) int64): the texts' words in order, hashed, and how many each
    text has. A word's hash is the polynomial sum of its bytes b_k * BASE^k (prefix sums over the
    batch, divided by BASE^start: exact mod 2^64), finalized."""
    encoded = [str(t).lower().encode("utf-8", "surrogatepass") for t in texts]
    raw = np.frombuffer(b" ".join(encoded) + b" ", dtype=np.uint8)  # a space ends every text's last word
    inside = _WORD_BYTE[raw]
    edge = np.diff(inside.astype(np.int8), prepend=np.int8(0))
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    power, inverse = _powers(len(raw))
    prefix = np.concatenate([[np.uint64(0)], np.cumsum(raw * power, dtype=np.uint64)])
    hashes = _finalize((prefix[ends] - prefix[starts]) * inverse[starts])
    text_start = np.cumsum([0] + [len(e) + 1 for e in encoded[:-1]])
    counts = np.bincount(np.searchsorted(text_start, starts, side="right") - 1, minlength=len(encoded))
    return hashes, counts.astype(np.int64)


def _shingle_hashes(words: np.ndarray, counts: np.ndarray, size: int = SHINGLE) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (s,) uint64, owner (s,) int64): every word `size`-shingle of each text (its words'
    hashes mixed by odd multipliers, finalized) and the text it belongs to. A text shorter than one
    shingle has one: its words together."""
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    per = np.maximum(counts - size + 1, 1)
    owner = np.repeat(np.arange(len(counts)), per)
    at = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per) + first[owner]
    mixed = np.zeros(len(at), np.uint64)
    padded = np.concatenate([words, np.zeros(size, np.uint64)])
    for i in range(size):
        there = i < counts[owner]  # a short text's missing words count as 0
        mixed += np.where(there, padded[np.minimum(at + i, len(words))], np.uint64(0)) * _MIX[i % len(_MIX)]
    return _finalize(mixed), owner


def _sketch(texts) -> np.ndarray:
    """Texts (n,) -> (n, BINS) uint16 sketches of one batch."""
    hashes, owner = _shingle_hashes(*_words(texts))
    value = np.minimum(hashes & np.uint64(0xFFFF), np.uint64(EMPTY) - np.uint64(1)).astype(np.uint16)
    slot = owner * BINS + (hashes >> _SHIFT).astype(np.int64)
    out = np.full(len(texts) * BINS, EMPTY, np.uint16)
    np.minimum.at(out, slot, value)
    return out.reshape(len(texts), BINS)


def minhash(texts) -> np.ndarray:
    """Texts (n,) -> (n, BINS) uint16: in each bin, the least value of the text's shingles that
    fall in it (EMPTY where none does). Batches of about BATCH_BYTES of text; a sketch depends on
    its text alone."""
    texts = list(texts)
    out = np.empty((len(texts), BINS), np.uint16)
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size < BATCH_BYTES):
            size += len(texts[end]) + 1
            end += 1
        out[start:end] = _sketch(texts[start:end])
        start = end
    return out


def shingles(text: str, size: int = SHINGLE) -> np.ndarray:
    """The distinct shingle hashes (k,) uint64 of one text, as the sketch sees them (for checks)."""
    return np.unique(_shingle_hashes(*_words([text]), size)[0])


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) estimated Jaccard similarity of sketches a[i] and b[i] ((m, BINS) each): the share of
    bins where they agree, among the bins not empty in both. (16-bit values: 0.5 s a million pairs
    on a busy core in blocks of 4,096, against 2.3 s for 32-bit ones compared as a mean.)"""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    same = a == b
    both_empty = np.count_nonzero(same & (a == EMPTY), axis=1)
    agree = np.count_nonzero(same, axis=1) - both_empty
    return agree / np.maximum(a.shape[1] - both_empty, 1).astype(np.float64)


# --- candidates from the sketches themselves: LSH bands -------------------------------------------
# ITQ codes of TF-IDF put only 82% of the bench's planted text pairs within radius 9 (30M
# candidates); bands of BAND_ROWS entries hold 99.8% of those at J >= 0.15 from 1.1M (bands of 3:
# 95%, from 0.26M). Two texts of Jaccard similarity J share a band with probability
# 1 - (1 - J^rows)^bands: rows 2, 64 bands of 128: 0.47 at J = 0.1, 0.93 at 0.2.
BAND_ROWS = 2
CROWD = 256  # items sharing one band's values beyond which each is paired with the first alone
PAIRS_OUT = 1 << 20  # pairs a batch hands on


def band_pairs(sig_a: np.ndarray, sig_b: np.ndarray | None = None, floor: float | None = None):
    """Yield (qi, pos) int64 arrays: every two items whose sketches agree on all BAND_ROWS entries
    of some band (a band all EMPTY proposes nothing); sig_b None: pairs within sig_a, each once
    (qi < pos); else pairs of an item of sig_b (qi) and one of sig_a (pos). A band value more than
    CROWD items share pairs them with its first item only (a thousand copies of one text: 999
    pairs, not 499,500). floor: unused (the bands are tuned to the default threshold)."""
    sig = sig_a if sig_b is None else np.concatenate([sig_a, sig_b])
    n, ids = len(sig), []
    for start in range(0, sig.shape[1] - BAND_ROWS + 1, BAND_ROWS):
        band = sig[:, start : start + BAND_ROWS].astype(np.uint64)
        key = band[:, 0].copy()
        for c in range(1, BAND_ROWS):
            key = key * np.uint64(0x100000001B3) + band[:, c]  # wrapping, as meant
        live = np.flatnonzero(~(band == EMPTY).all(axis=1))
        ids.append(_same_key_pairs(live[np.argsort(key[live], kind="stable")], key, n))
    yield from handed_on(ids, n, None if sig_b is None else len(sig_a), PAIRS_OUT)


def share_a_band(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) bool: sketches a[i] and b[i] ((m, BINS) each) agree on all BAND_ROWS entries of some
    band not all EMPTY, so band_pairs proposes them (short of a band CROWD items share)."""
    m, bands = len(a), a.shape[1] // BAND_ROWS
    same = (a[:, : bands * BAND_ROWS] == b[:, : bands * BAND_ROWS]).reshape(m, bands, BAND_ROWS).all(axis=2)
    empty = (a[:, : bands * BAND_ROWS] == EMPTY).reshape(m, bands, BAND_ROWS).all(axis=2)
    return (same & ~empty).any(axis=1)


def _same_key_pairs(order: np.ndarray, key: np.ndarray, n: int) -> np.ndarray:
    """Pair ids (i * n + j, i < j) of the items in `order` (sorted by key) that share a key."""
    if len(order) < 2:
        return np.zeros(0, np.int64)
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    out = []
    for size in np.unique(sizes[sizes > 1]):
        first = starts[sizes == size]
        if size > CROWD:  # star: each member with the group's first
            a = np.repeat(order[first], size - 1)
            b = order[(first[:, None] + np.arange(1, size)).ravel()]
        else:  # every two members: (x, y) offsets in a group of this size
            x, y = np.triu_indices(int(size), 1)
            a, b = order[(first[:, None] + x).ravel()], order[(first[:, None] + y).ravel()]
        out.append(pair_ids(a, b, n))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


TEXTS = Verifier(
    name=f"oph-minhash{BINS}x16/{SHINGLE}-shingles",
    units="Jaccard",
    # 0.15: a copy with 30% of its words replaced keeps ~0.7^3 of its 3-shingles (Jaccard ~0.2);
    # unrelated texts share almost none (100,000 bench documents: 99.9% of random pairs below 0.01).
    # Measured there (bench dedup's planted copies): F1 0.962 at 0.15 (precision 1.0), 0.947 at 0.2
    threshold=0.15,
    lowest=0.0,
    highest=1.0,
    dtype="uint16",
    make=minhash,
    similarity=_batched(jaccard),
    propose=band_pairs,
    covers=share_a_band,
)
