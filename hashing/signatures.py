"""Verification signatures: what decides whether two items are near-duplicates, once their codes
have proposed them as candidates.

    IMAGES.make(x)            # (n, 1, 28, 28) model inputs -> (n, 784) int8: a 32x32 grey thumbnail's centre
    IMAGES.similarity(a, b)   # (m,) its Pearson correlation at the best shift of up to 4 pixels
    FEATURES.make(x)          # (n, d) vectors -> (n, d) float16, unit length: cosine = dot product
    minhash(["a text", ...])  # (n, 128) uint32: a MinHash sketch of word 3-shingles (TEXTS)

A code is semantic: similar items get near codes, which is what retrieval wants and exactly what a
near-duplicate decision must not trust alone (ITQ 32-bit MNIST at radius 0: 238 different digits
share one code). A signature is kept with each item (index_store/storage: semhash_signatures) and
compared in the item's own units against a threshold the user sets in those units.

Each `Verifier` states its units, its default threshold, its stored dtype and width, and the two
functions. An input kind declares its verifier (`InputKind.verifier()`, hashing/inputs/base.py);
no code outside the kind names one.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Verifier:
    """name: what a store records next to the signatures (a signature made another way is refused);
    units: the similarity's name in words; threshold: the default (pairs at or above it are
    duplicates); lowest/highest: the similarity's range; dtype: the stored element type;
    make(x) -> (n, s) dtype: signatures of a batch of items (the model's inputs, or a kind's raw
    items); similarity(a, b) -> (m,) float64 of rows a[i], b[i] (both (m, s))."""

    name: str
    units: str
    threshold: float
    lowest: float
    highest: float
    dtype: str
    make: Callable[[np.ndarray], np.ndarray]
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d) float16 rows of length 1 (a zero row stays zero): cosine is then the dot
    product. float16 keeps 3 significant digits, enough for a threshold stated to 0.01; at 1M x 768
    it is 1.5 GB stored and read (float32: 3 GB)."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1)).astype(np.float16)


def _batched(similarity, rows: int = 4096):
    """similarity(a, b) run on at most `rows` pairs at a time (its temporaries stay small)."""

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        parts = [similarity(a[i : i + rows], b[i : i + rows]) for i in range(0, len(a), rows)]
        return np.concatenate(parts) if parts else np.zeros(0)

    return run


def dot_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) dot product of a[i] and b[i] ((m, s) each), accumulated in float32."""
    return np.einsum("ij,ij->i", a.astype(np.float32), b.astype(np.float32)).astype(np.float64)


# --- images: a grey thumbnail, compared at the best small shift -----------------------------------
# Measured on MNIST (500 digits, their copies against the 2,000 originals' nearest distinct digit):
# at correlation 0.9, a low-frequency DCT signature (pHash's, real-valued, 12x12 coefficients) kept
# 22-30% of 10%-crops and 1-pixel shifts and no 3-pixel shift, with 54% of digits having a distinct
# digit above 0.9; this thumbnail, compared at its best shift within SHIFT pixels, kept 100% of
# 1-pixel and 99% of 3-pixel shifts, 90% of 5-degree rotations, 15% of crops, at 41%. (MNIST's
# distinct digits are that alike; on generated photos distinct pictures stay below 0.41 and a
# 2-pixel shift of 96 px, which fills a strip with black, scores 0.94 once the border is left out,
# 0.90 with it: tests/test_duplicates.py.)
# thumbnail side; its border left out (the strip a shifted copy fills with black); the largest shift
# (thumbnail pixels) tried each way
THUMB, BORDER, SHIFT = 32, 2, 4
SIDE = THUMB - 2 * BORDER


@lru_cache(maxsize=8)
def _resize_matrix(size: int, to: int) -> np.ndarray:
    """(to, size) linear interpolation (pixel centres aligned): rows of a resize by matrix product."""
    centres = (np.arange(to) + 0.5) * size / to - 0.5
    lo = np.clip(np.floor(centres).astype(int), 0, size - 1)
    hi = np.clip(lo + 1, 0, size - 1)
    w = np.clip(centres - lo, 0, 1)
    m = np.zeros((to, size), dtype=np.float32)
    np.add.at(m, (np.arange(to), lo), 1 - w)
    np.add.at(m, (np.arange(to), hi), w)
    return m


def image_signature(x: np.ndarray) -> np.ndarray:
    """Model inputs (n, C, H, W) or (n, H, W), any scale -> (n, SIDE*SIDE) int8: a grey
    THUMB x THUMB thumbnail less its border, centred (brightening moves the mean) and scaled to +-127 (the scale
    cancels in the correlation; 1 KB an item, 1 GB at 1M)."""
    x = np.asarray(x, dtype=np.float32)
    grey = x.mean(axis=1) if x.ndim == 4 else x.reshape(len(x), *x.shape[-2:])
    ry, rx = _resize_matrix(grey.shape[1], THUMB), _resize_matrix(grey.shape[2], THUMB)
    t = np.einsum("ah,nhw,bw->nab", ry, grey, rx)[:, BORDER:-BORDER, BORDER:-BORDER].reshape(len(x), -1)
    t -= t.mean(axis=1, keepdims=True)
    peak = np.abs(t).max(axis=1, keepdims=True)
    return np.round(t * (127 / np.where(peak > 0, peak, 1))).astype(np.int8)


def shifted_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) the largest Pearson correlation of thumbnails a[i] and b[i] ((m, SIDE*SIDE) int8)
    over shifts of up to SHIFT pixels each way (zero outside the picture), by FFT: a 1-4 pixel
    shift of a copy is a shift, not a new picture. A zero thumbnail correlates 0."""
    m, side = len(a), SIDE
    fa, fb = (np.asarray(v, np.float32).reshape(m, side, side) for v in (a, b))
    norms = np.linalg.norm(fa.reshape(m, -1), axis=1) * np.linalg.norm(fb.reshape(m, -1), axis=1)
    size = side + SHIFT  # padding of SHIFT: no wrapped-around overlap at the shifts kept
    cc = np.fft.irfft2(np.fft.rfft2(fa, (size, size)) * np.conj(np.fft.rfft2(fb, (size, size))), (size, size))
    near = np.r_[0 : SHIFT + 1, size - SHIFT : size]
    best = cc[:, near][:, :, near].reshape(m, -1).max(axis=1)
    return np.where(norms > 0, best / np.where(norms > 0, norms, 1), 0.0).astype(np.float64)


IMAGES = Verifier(
    name=f"thumb{THUMB}/shift{SHIFT}",
    units="correlation",
    threshold=0.9,
    lowest=-1.0,
    highest=1.0,
    dtype="int8",
    make=image_signature,
    similarity=_batched(shifted_correlation),
)

FEATURES = Verifier(
    name="cosine/float16",
    units="cosine",
    threshold=0.95,
    lowest=-1.0,
    highest=1.0,
    dtype="float16",
    make=unit_rows,
    similarity=dot_rows,
)


# --- texts: MinHash of word shingles ----------------------------------------------------------------
HASHES, SHINGLE = 128, 3  # permutations (Jaccard's standard error ~ 1/sqrt(128) = 0.09 at J=0.5); words a shingle
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """(a, b) (HASHES,) uint64 of the multiply-shift hashes ((a*x + b) mod 2^64) >> 32 (a odd),
    fixed by a seed: two sketches made anywhere compare. No modulo by a prime: numpy's 64-bit
    remainder made hashing 3x slower than the words' own reading (measured on 20 Newsgroups)."""
    rng = np.random.default_rng(0x5E3A5)
    a = rng.integers(0, 1 << 63, HASHES, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return a, rng.integers(0, 1 << 63, HASHES, dtype=np.uint64)


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def shingles(text: str, size: int = SHINGLE) -> np.ndarray:
    """The distinct word `size`-shingles of a text (lower-cased words) as (k,) uint64 hashes below
    2^32: each word hashed once (CRC32), a shingle's hash mixed from its words' (odd multipliers,
    wrapping); a text shorter than one shingle is its words together. (A CRC32 of each shingle's
    joined string read 20 Newsgroups at 4,600 documents/s; this, at more than twice that.)"""
    words = np.array([zlib.crc32(w.encode()) for w in _WORD.findall(text.lower())], dtype=np.uint64)
    if len(words) < size:
        words = np.concatenate([words, np.zeros(size - len(words), np.uint64)])
    mixed = np.zeros(len(words) - size + 1, dtype=np.uint64)
    for i in range(size):
        mixed += words[i : len(words) - size + 1 + i] * _MIX[i % len(_MIX)]
    return np.unique(mixed >> np.uint64(32))


def minhash(texts, batch_shingles: int = 2_048) -> np.ndarray:
    """Texts (n,) -> (n, HASHES) uint32: per permutation, the least hash of the text's shingles.
    The share of equal entries of two sketches estimates their shingle sets' Jaccard similarity.
    Hashed many texts at a time (at most batch_shingles shingles: 2 MB of temporaries, in cache), the
    least per text by np.minimum.reduceat."""
    a, b = _permutations()
    out = np.empty((len(texts), HASHES), dtype=np.uint32)
    start = 0
    while start < len(texts):
        sets, size = [], 0
        while start + len(sets) < len(texts) and (not sets or size < batch_shingles):
            sets.append(shingles(str(texts[start + len(sets)])))
            size += len(sets[-1])
        flat = np.concatenate(sets)
        hashed = (flat[:, None] * a[None, :] + b) >> np.uint64(32)  # wraps mod 2^64, as meant
        firsts = np.cumsum([0] + [len(x) for x in sets[:-1]])
        out[start : start + len(sets)] = np.minimum.reduceat(hashed, firsts, axis=0)
        start += len(sets)
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) estimated Jaccard similarity of sketches a[i] and b[i] ((m, HASHES) each)."""
    return (a == b).mean(axis=1, dtype=np.float64)


TEXTS = Verifier(
    name=f"minhash{HASHES}/{SHINGLE}-shingles",
    units="Jaccard",
    threshold=0.5,
    lowest=0.0,
    highest=1.0,
    dtype="uint32",
    make=minhash,
    similarity=jaccard,
)
