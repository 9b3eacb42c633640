"""Binary codes: bit packing in FAISS order, Hamming distances, integer keys, Hamming-ball masks.

Bit order is FAISS's: bit i of a code lives in byte i // 8 at bit position i % 8 (least significant
first). Packed codes are `(n, bits/8) uint8` and go to `faiss.IndexBinary*` unchanged. Read as a
little-endian integer, bit i of a code is bit i of its integer key.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

from .errors import ParameterError

MIN_BITS, MAX_BITS = 8, 256


def check_bits(bits: int) -> int:
    """Validate a code length: 8 to 256 bits, a multiple of 8."""
    if not isinstance(bits, (int, np.integer)) or bits < MIN_BITS or bits > MAX_BITS or bits % 8:
        raise ParameterError(f"code length must be a multiple of 8 between {MIN_BITS} and {MAX_BITS} bits, got {bits}")
    return int(bits)


def pack(bits: np.ndarray) -> np.ndarray:
    """bits: (n, b) of 0/1 (or bool), b a multiple of 8 -> codes: (n, b/8) uint8, FAISS bit order."""
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] % 8:
        raise ParameterError(f"expected an (n, bits) array with bits a multiple of 8, got shape {bits.shape}")
    return np.packbits(bits.astype(bool), axis=1, bitorder="little")


def unpack(codes: np.ndarray) -> np.ndarray:
    """codes: (n, b/8) uint8 -> bits: (n, b) uint8 of 0/1."""
    return np.unpackbits(_as_codes(codes), axis=1, bitorder="little")


def _as_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise ParameterError(f"packed codes must be a 2-D uint8 array, got {codes.dtype} of shape {codes.shape}")
    return codes


def _words(codes: np.ndarray) -> np.ndarray:
    """(n, nbytes) uint8 -> (n, ceil(nbytes/8)) uint64; zero padding leaves distances unchanged."""
    codes = _as_codes(codes)
    pad = (-codes.shape[1]) % 8
    if pad:
        codes = np.pad(codes, ((0, 0), (0, pad)))
    return np.ascontiguousarray(codes).view("<u8")


def hamming(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Pairwise Hamming distances. a: (na, nbytes), b: (nb, nbytes) uint8 -> (na, nb) uint16."""
    wa, wb = _words(a), _words(b)
    if wa.shape[1] != wb.shape[1]:
        raise ParameterError(f"code lengths differ: {a.shape[1] * 8} vs {b.shape[1] * 8} bits")
    out = np.empty((len(wa), len(wb)), dtype=np.uint16)
    for start in range(0, len(wa), chunk):
        block = wa[start : start + chunk]
        acc = np.zeros((len(block), len(wb)), dtype=np.uint16)
        for w in range(wa.shape[1]):
            acc += np.bitwise_count(block[:, w, None] ^ wb[None, :, w])
        out[start : start + chunk] = acc
    return out


def hamming_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of two equally long code sets: (n, nbytes) x2 -> (n,) uint16."""
    wa, wb = _words(a), _words(b)
    if wa.shape != wb.shape:
        raise ParameterError(f"code sets differ in shape: {a.shape} vs {b.shape}")
    return np.bitwise_count(wa ^ wb).sum(axis=1, dtype=np.uint16)


def to_int(codes: np.ndarray) -> np.ndarray:
    """Whole codes of at most 64 bits as integer keys: (n, nbytes) uint8 -> (n,) uint64."""
    codes = _as_codes(codes)
    if codes.shape[1] > 8:
        raise ParameterError(f"integer keys need codes of at most 64 bits, got {codes.shape[1] * 8}; use substrings()")
    return _words(codes)[:, 0].copy()


def from_int(keys: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of to_int: (n,) uint64 -> (n, bits/8) uint8."""
    keys = np.ascontiguousarray(np.asarray(keys, dtype="<u8"))
    return keys.view(np.uint8).reshape(len(keys), 8)[:, : bits // 8].copy()


def substring_bounds(bits: int, m: int) -> list[tuple[int, int]]:
    """Split `bits` into m disjoint contiguous substrings, lengths differing by at most one."""
    if not 1 <= m <= bits:
        raise ParameterError(f"cannot split {bits} bits into {m} substrings")
    sizes = [bits // m + (1 if i < bits % m else 0) for i in range(m)]
    if max(sizes) > 64:
        raise ParameterError(f"substrings of {max(sizes)} bits do not fit a 64-bit key; use more substrings")
    edges = np.cumsum([0] + sizes)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(m)]


def substrings(codes: np.ndarray, m: int) -> np.ndarray:
    """Integer keys of m disjoint substrings: (n, nbytes) uint8 -> (n, m) uint64.

    Substring j holds code bits [start_j, stop_j) with code bit start_j as its bit 0.
    """
    codes = _as_codes(codes)
    nbits = codes.shape[1] * 8
    bounds = substring_bounds(nbits, m)
    keys = np.zeros((len(codes), m), dtype=np.uint64)
    if nbits <= 64:  # shift and mask the whole code's integer key
        whole = to_int(codes)
        for j, (start, stop) in enumerate(bounds):
            keys[:, j] = (whole >> np.uint64(start)) & np.uint64((1 << (stop - start)) - 1)
        return keys
    for rows in range(0, len(codes), 65536):  # unpacked bits are 8x the codes: bound the memory
        bits = unpack(codes[rows : rows + 65536])
        for j, (start, stop) in enumerate(bounds):
            weights = np.left_shift(np.uint64(1), np.arange(stop - start, dtype=np.uint64))
            keys[rows : rows + len(bits), j] = bits[:, start:stop].astype(np.uint64) @ weights
    return keys


def one_bit_away(codes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n codes drawn from `codes` (with replacement), each with one random bit flipped: queries that
    look like the database without being in it. codes: (N, bits/8) uint8 -> (n, bits/8) uint8."""
    q = codes[rng.integers(0, len(codes), n)].copy()
    bit = rng.integers(0, codes.shape[1] * 8, n)
    q[np.arange(n), bit // 8] ^= (1 << (bit % 8)).astype(np.uint8)
    return q


def ball_size(bits: int, r: int) -> int:
    """Number of codes within Hamming distance r of a `bits`-bit code."""
    return sum(comb(bits, i) for i in range(min(r, bits) + 1))


def flip_masks(bits: int, r: int, limit: int = 10_000_000) -> np.ndarray:
    """XOR masks of the Hamming ball of radius r, as (count,) uint64 (bits <= 64).

    Ordered by distance: the empty mask first, then all single flips, then pairs, ...
    Masks of exactly distance d are rows [ball_size(bits, d-1), ball_size(bits, d)).
    """
    if not 1 <= bits <= 64:
        raise ParameterError(f"flip masks as integers need 1..64 bits, got {bits}")
    if r < 0:
        raise ParameterError(f"radius must be >= 0, got {r}")
    size = ball_size(bits, r)
    if size > limit:
        raise ParameterError(
            f"a radius-{r} ball around a {bits}-bit code holds {size:,} codes (limit {limit:,}); "
            "use a smaller radius or k-NN search"
        )
    singles = np.left_shift(np.uint64(1), np.arange(bits, dtype=np.uint64))
    masks = [np.zeros(1, dtype=np.uint64)]
    for d in range(1, min(r, bits) + 1):
        idx = np.fromiter((i for c in combinations(range(bits), d) for i in c), dtype=np.int64).reshape(-1, d)
        masks.append(np.bitwise_or.reduce(singles[idx], axis=1))
    return np.concatenate(masks)


def flip_masks_packed(bits: int, r: int, limit: int = 10_000_000) -> np.ndarray:
    """Hamming-ball XOR masks as packed codes (count, bits/8) uint8, for any code length.

    Same order as flip_masks: by distance, then lexicographic in the flipped positions.
    """
    check_bits(bits)
    size = ball_size(bits, r)
    if r < 0 or size > limit:
        raise ParameterError(f"a radius-{r} ball around a {bits}-bit code holds {size:,} codes (limit {limit:,})")
    out = np.zeros((size, bits // 8), dtype=np.uint8)
    row = 1
    for d in range(1, min(r, bits) + 1):
        idx = np.fromiter((i for c in combinations(range(bits), d) for i in c), dtype=np.int64).reshape(-1, d)
        rows = np.arange(row, row + len(idx))[:, None]
        np.bitwise_or.at(out, (rows, idx // 8), (1 << (idx % 8)).astype(np.uint8))
        row += len(idx)
    return out
