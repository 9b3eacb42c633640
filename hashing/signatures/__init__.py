"""Verification signatures: what decides whether two items are near-duplicates, once their codes
have proposed them as candidates.

    images.IMAGES.make(x)           # (n, 1, 28, 28) model inputs -> (n, 784) int8: a darkest-channel thumbnail
    images.IMAGES.similarity(a, b)  # (m,) its Pearson correlation at the best shift, zoom and fine warp
    FEATURES.make(x)                # (n, d) vectors -> (n, d) float16, unit length: cosine = dot product
    vectors.window_pairs(sig)       # candidate pairs of vectors from random hyperplane keys
    texts.minhash(["a text", ...])  # (n, 128) uint16: a one-permutation MinHash of word 3-shingles (texts.TEXTS)

One module a kind's signature (images.py, with its fine alignment in registration.py; texts.py;
the vectors' candidate pairs in vectors.py); the vectors' cosine and the contract here.

A code is semantic: similar items get near codes, which is what retrieval wants and exactly what a
near-duplicate decision must not trust alone (ITQ 32-bit MNIST at radius 0: 238 different digits
share one code). A signature is kept with each item (index_store/storage: semhash_signatures) and
compared in the item's own units against a threshold the user sets in those units.

Each `Verifier` states its units, its default threshold, its stored dtype and width, and the two
functions. An input kind declares its verifier (`InputKind.verifier()`, hashing/inputs/base.py);
no code outside the kind names one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .vectors import window_pairs

GATHER_BYTES = 64 << 20  # signatures gathered at once to score a chunk of pairs


@dataclass(frozen=True)
class Verifier:
    """name: what an index records as its signatures' signer (one signed another way is never compared);
    units: the similarity's name in words; threshold: the default (pairs at or above it are
    duplicates); lowest/highest: the similarity's range; dtype: the stored element type;
    make(x) -> (n, s) dtype: signatures of a batch of items (the model's inputs, or a kind's raw
    items); similarity(a, b) -> (m,) float64 of rows a[i], b[i] (both (m, s));
    propose(sig_a, sig_b, floor) -> iterator of (qi, pos) int64 arrays, or None: pairs the
    signatures themselves propose beside the code ball (what the codes miss: a shifted digit, a
    text with a third of its words replaced; the items of a code too crowded to tell them apart),
    a bounded number an item; pos indexes sig_a, qi indexes sig_b, or sig_a when sig_b is None
    (then each pair once, never an item with itself), in batches of bounded size; floor: the
    threshold the run holds them to (a proposal may leave out pairs below it);
    covers(a, b) -> (m,) bool, or None: whether propose hands on the pair of rows a[i], b[i]
    whatever else the set holds (a predicate on the pair alone; None where it depends on the set)."""

    name: str
    units: str
    threshold: float
    lowest: float
    highest: float
    dtype: str
    make: Callable[[np.ndarray], np.ndarray]
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray]
    propose: Callable[..., Iterator[tuple[np.ndarray, np.ndarray]]] | None = None
    covers: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def score_pairs(self, sig_a: np.ndarray, ia: np.ndarray, sig_b: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """(m,) similarity of rows sig_a[ia[k]] and sig_b[ib[k]], the rows gathered a chunk of at
        most GATHER_BYTES at a time: a batch of candidate pairs of 768-d vectors gathered whole
        would hold ~3 KB a pair (30M pairs: 44 GB, measured on 1M clustered embeddings)."""
        row = max(1, sig_a[:1].nbytes + sig_b[:1].nbytes)
        step = max(1, GATHER_BYTES // row)
        parts = [self.similarity(sig_a[ia[i : i + step]], sig_b[ib[i : i + step]]) for i in range(0, len(ia), step)]
        return np.concatenate(parts) if parts else np.zeros(0)


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


FEATURES = Verifier(
    name="cosine/float16",
    units="cosine",
    threshold=0.95,
    lowest=-1.0,
    highest=1.0,
    dtype="float16",
    make=unit_rows,
    similarity=dot_rows,
    propose=window_pairs,
)
