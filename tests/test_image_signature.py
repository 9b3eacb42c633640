"""The image signature's correlation and keys against their definitions, computed the slow way:
Pearson's correlation over each shift's overlap, and numpy's FFT."""

import numpy as np
import pytest

from semhash.hashing.signatures import images
from semhash.hashing.signatures.images import SHIFT, SIDE


def best_overlap_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The largest Pearson correlation of a[x + d] and b[x] over the overlap, |d| <= SHIFT each way
    (a flat overlap: 0)."""
    a, b = (v.reshape(SIDE, SIDE).astype(np.float64) for v in (a, b))
    best = -np.inf
    for dy in range(-SHIFT, SHIFT + 1):
        for dx in range(-SHIFT, SHIFT + 1):
            ra, rb = slice(max(dy, 0), SIDE + min(dy, 0)), slice(max(-dy, 0), SIDE + min(-dy, 0))
            ca, cb = slice(max(dx, 0), SIDE + min(dx, 0)), slice(max(-dx, 0), SIDE + min(-dx, 0))
            x, y = a[ra, ca].ravel(), b[rb, cb].ravel()
            x, y = x - x.mean(), y - y.mean()
            norm = np.sqrt((x @ x) * (y @ y))
            best = max(best, x @ y / norm if norm > 0 else 0.0)
    return best


@pytest.mark.parametrize("m", [1, 2, 9])
def test_the_shift_score_is_the_best_correlation_over_each_overlap(monkeypatch, m):
    monkeypatch.setattr(images, "SCALES", (1.0,))  # shifts alone: the zooms are tried on top
    rng = np.random.default_rng(m)
    a = rng.integers(-127, 128, (m, SIDE * SIDE)).astype(np.int8)
    b = rng.integers(-127, 128, (m, SIDE * SIDE)).astype(np.int8)
    b[0] = np.roll(a[0].reshape(SIDE, SIDE), (2, -3), axis=(0, 1)).ravel()  # a shift: 1 on the overlap
    if m > 2:  # a flat row, and a row repeated in a batch (prepared once)
        b[-1, :SIDE] = 5
        a[-1] = a[0]
    got = images.shifted_correlation(a, b)
    assert np.allclose(got, [best_overlap_correlation(x, y) for x, y in zip(a, b)], atol=1e-5)
    assert got[0] == pytest.approx(1.0, abs=1e-5)


def test_a_flat_thumbnail_correlates_zero_and_no_pairs_give_no_scores():
    flat = np.zeros((1, SIDE * SIDE), np.int8)
    assert images.shifted_correlation(flat, flat).tolist() == [0.0]
    assert images.shifted_correlation(flat[:0], flat[:0]).shape == (0,)


def test_the_candidate_key_is_the_log_magnitude_of_numpys_low_frequencies():
    rng = np.random.default_rng(0)
    sig = rng.integers(-127, 128, (5, SIDE * SIDE)).astype(np.int8)
    size, k = SIDE + SHIFT, images.KEY_FREQ
    mag = np.abs(np.fft.rfft2(sig.reshape(5, SIDE, SIDE).astype(np.float64), (size, size)))
    want = np.log1p(mag[:, np.r_[1 : k + 1, size - k : size], : k + 1].reshape(5, -1))
    want -= want.mean(axis=1, keepdims=True)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.allclose(images.candidate_key(sig), want, atol=1e-5)
