"""PCA: the mean and the top principal directions of a data matrix.

Small inputs use the exact eigendecomposition of the d x d covariance (deterministic, and what the
MNIST reference figures were measured with). Its cost grows with d^2 in memory and d^3 in time
(a 224x224 RGB input would need a 180 GB covariance), so wider inputs use scikit-learn's randomized
SVD (Halko et al.), whose cost grows linearly in d.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

# d x d float64 covariance of 4,096 dimensions is 128 MiB and its eigh takes seconds: the exact
# method stays below that, the randomized one takes over above it.
EXACT_MAX_DIM = 4096


def principal_directions(X: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X: (n, d) float32 -> mean (d,) float32, top-k principal directions (d, k) float32 (columns)."""
    n, d = X.shape
    if k > d:
        raise DataError(f"PCA codes of {k} bits need inputs of at least {k} dimensions, got {d}")
    if d <= EXACT_MAX_DIM:
        return _exact(X, k)
    return _randomized(X, k, seed)


def _exact(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0, dtype=np.float64)
    Xc = X - mean.astype(np.float32)
    cov = (Xc.T @ Xc).astype(np.float64) / max(len(X) - 1, 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:k]
    return mean.astype(np.float32), vecs[:, order].astype(np.float32)


def _randomized(X: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    if k > len(X):
        raise DataError(f"PCA codes of {k} bits of {X.shape[1]}-dimensional inputs need at least {k} items")
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(X)
    return pca.mean_.astype(np.float32), np.ascontiguousarray(pca.components_.T, dtype=np.float32)
