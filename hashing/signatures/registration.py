"""Fine registration of two thumbnails: the affine warp that best maps one onto the other, found by
Gauss-Newton from a starting warp (images.py's best shift and zoom), and their correlation there,
with either side blurred a little (a copy resized down and back up lost its finest detail) or
either side's tone curve fitted (a brightened copy's highlights are clipped).

A copy rotated by a few degrees, cropped and brought back to size, or shifted by a fraction of a
pixel is the same pixels resampled: once aligned exactly it correlates ~1, where two distinct
pictures stay apart by their shapes. Measured on issue 27's MNIST corpus (28,051 digits, 8,051
planted copies; each pair the shift-free keys propose or the truth holds, /tmp/m27): the best shift
and zoom on a grid (57 warps) reach recall 0.926 at precision 0.99; refined and blurred, 0.983.
From images.py's grid of 7 warps, as run: 0.872, then 0.978 (5,300 pairs/s on 2 cores).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ITERATIONS = 5  # Gauss-Newton steps from a start within a pixel or two: 8 gave the same figures
# a warp that strays this far from a copy's (zoom 0.7-1.4 on either axis, a shift of 7 pixels) is
# the optimiser folding one picture onto another's fragment: its score is not kept
SCALE_RANGE, MAX_SHIFT = (0.7, 1.4), 7.0
BLURS = (0.5, 0.8, 1.2)  # Gaussian widths (pixels) tried on either side once aligned


def aligned_correlation(a: np.ndarray, b: np.ndarray, m0: np.ndarray, t0: np.ndarray) -> np.ndarray:
    """a, b: (m, s, s) float32 thumbnails; m0 (m, 2, 2), t0 (m, 2): a starting warp, b's pixel at
    centred position x seen in a at centre + m0 @ x + t0 (pixels, (row, column)). Returns (m,) the
    Pearson correlation of b and a warped by the refined warp (a read at its edge beyond its frame),
    the best of it and of either side blurred by BLURS; -1 where the warp strayed (SCALE_RANGE,
    MAX_SHIFT)."""
    m, s = len(a), a.shape[1]
    grid = _grid(s)  # (s*s, 2) centred positions of b's pixels
    planes = [a, *np.gradient(a, axis=(1, 2))]  # a and its gradient (rows, columns)
    bv = b.reshape(m, -1)
    warp, shift = m0.astype(np.float32), t0.astype(np.float32)
    for _ in range(ITERATIONS):
        av, dy, dx = _sample(planes, _positions(warp, shift, grid, s))
        step = _gauss_newton_step(av, bv, dy, dx, grid)
        warp = warp + step[:, :4].reshape(m, 2, 2)
        shift = shift + step[:, 4:6]
    aligned = _sample([a], _positions(warp, shift, grid, s))[0].reshape(m, s, s)
    best = _correlation(aligned, b)
    for sigma in BLURS:
        g = _blur_matrix(s, sigma)
        best = np.maximum(best, np.maximum(_correlation(g @ aligned @ g.T, b), _correlation(aligned, g @ b @ g.T)))
    best = np.maximum(best, np.maximum(_tone_correlation(aligned, b), _tone_correlation(b, aligned)))
    sv = np.linalg.svd(warp, compute_uv=False)
    strayed = (sv.min(1) < SCALE_RANGE[0]) | (sv.max(1) > SCALE_RANGE[1]) | (np.abs(shift).max(1) > MAX_SHIFT)
    return np.where(strayed, -1.0, best)


def _gauss_newton_step(av, bv, dy, dx, grid) -> np.ndarray:
    """(m, 6) the step in (warp's 4 entries, shift's 2) that least-squares fits a(W(x)) to
    gain * b(x) + offset (the gain and offset solved with it: brightening is no difference);
    av, bv, dy, dx: (m, n) a, b and a's gradient at the n warped positions; grid (n, 2)."""
    ones = np.ones_like(bv)
    jac = np.stack([dy * grid[:, 0], dy * grid[:, 1], dx * grid[:, 0], dx * grid[:, 1], dy, dx, -bv, -ones], 2)
    jt = jac.transpose(0, 2, 1)
    hess = jt @ jac + 1e-3 * np.eye(8, dtype=np.float32)  # batched matrix products: BLAS, not einsum
    mb, ma = bv.mean(1, keepdims=True), av.mean(1, keepdims=True)
    gain = ((bv - mb) * (av - ma)).sum(1, keepdims=True) / np.maximum(((bv - mb) ** 2).sum(1, keepdims=True), 1e-9)
    residual = av - gain * bv - (ma - gain * mb)
    step = np.linalg.solve(hess, jt @ residual[..., None])[..., 0]
    return -step[:, :6]


def _positions(warp, shift, grid, s) -> np.ndarray:
    """(m, n, 2) where each of b's n pixels falls in a (absolute pixel coordinates)."""
    return (s - 1) / 2 + grid @ warp.transpose(0, 2, 1) + shift[:, None, :]


def _sample(planes: list[np.ndarray], pos: np.ndarray) -> list[np.ndarray]:
    """Each of planes (m, s, s), read at pos (m, n, 2) -> (m, n) bilinear samples; beyond the
    frame, its edge. The positions' indices and weights are shared by every plane."""
    m, s = planes[0].shape[:2]
    y = np.clip(pos[..., 0], 0, s - 1.001)
    x = np.clip(pos[..., 1], 0, s - 1.001)
    y0, x0 = y.astype(np.int32), x.astype(np.int32)
    wy, wx = y - y0, x - x0
    at = (np.arange(m, dtype=np.int64) * s * s)[:, None] + y0 * s + x0
    out = []
    for img in planes:
        flat = img.reshape(-1)
        top = flat[at] * (1 - wx) + flat[at + 1] * wx
        bottom = flat[at + s] * (1 - wx) + flat[at + s + 1] * wx
        out.append(top * (1 - wy) + bottom * wy)
    return out


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) Pearson correlation of a[i] and b[i] over all their values; a flat one correlates 0."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    norm = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(norm > 0, (a * b).sum(1) / np.where(norm > 0, norm, 1), 0.0)


def _tone_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(m,) the multiple correlation of y[i] on x[i] and x[i]**2: how well a tone curve of one
    (brightened, its highlights clipped) gives the other."""
    x = x.reshape(len(x), -1).astype(np.float64)
    x = x - x.mean(1, keepdims=True)
    r1, r2, r12 = _correlation(x, y), _correlation(x * x, y), _correlation(x, x * x)
    r_sq = (r1 * r1 + r2 * r2 - 2 * r1 * r2 * r12) / np.maximum(1 - r12 * r12, 1e-9)
    return np.sqrt(np.clip(r_sq, 0, 1)) * np.sign(r1)


@lru_cache(maxsize=4)
def _grid(s: int) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(s, dtype=np.float32), np.arange(s, dtype=np.float32), indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], 1) - (s - 1) / 2


@lru_cache(maxsize=8)
def _blur_matrix(s: int, sigma: float) -> np.ndarray:
    """(s, s) float32: a Gaussian blur of width sigma along one axis, each row summing to 1 (at
    the edges too), so g @ x @ g.T blurs an (s, s) picture."""
    d = np.arange(s)[:, None] - np.arange(s)[None, :]
    g = np.exp(-0.5 * (d / sigma) ** 2)
    return (g / g.sum(1, keepdims=True)).astype(np.float32)
