"""Linear hashing baselines behind the Hasher interface: LSH, PCAH and PCA-ITQ.

All three centre the data and threshold a linear projection at zero: bit j of x is
[(x - mean) @ W[:, j] > 0]. They differ only in W:
  LSH   random Gaussian hyperplanes (Charikar 2002);
  PCAH  the top `bits` principal directions;
  ITQ   the principal directions rotated by R, learned by Iterative Quantization
        (Gong & Lazebnik, CVPR 2011) to minimise the quantization loss ||B - V R||_F.

Sparse inputs (scipy.sparse (n, d): TF-IDF rows of texts) stay sparse: (x - mean) @ W is computed
as x @ W - mean @ W, and PCA centres them implicitly (pca.py). LSH over TF-IDF is SimHash (Charikar's
sign of random projections), of the centred rows.
"""

from __future__ import annotations

import numpy as np

from .codes import pack
from .hasher import Hasher, is_sparse
from .pca import principal_directions


class LinearHasher(Hasher):
    """Learned state: mean_ (d,) and projection_ (d, bits), float32."""

    def _fit(self, X: np.ndarray, y=None) -> None:
        self._fit_flat(X if is_sparse(X) else X.reshape(len(X), -1))  # each item as one vector

    def _fit_flat(self, X: np.ndarray) -> None:
        """X: (n, d) float32 -> sets mean_ and projection_."""
        raise NotImplementedError

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return pack(project(X, self.mean_, self.projection_) > 0)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "projection": self.projection_}

    def _set_state(self, tensors: dict[str, np.ndarray], header: dict | None = None) -> None:
        mean, proj = tensors["mean"], tensors["projection"]
        d = int(np.prod(self.spec_.shape))
        if mean.shape != (d,) or proj.shape != (d, self.bits):
            raise ValueError(f"tensor shapes {mean.shape}, {proj.shape} do not match input {d} and {self.bits} bits")
        self.mean_, self.projection_ = mean.astype(np.float32), proj.astype(np.float32)


class LSH(LinearHasher):
    """Sign of random Gaussian projections of the centred data."""

    method = "lsh"

    def _fit_flat(self, X: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self.mean_ = np.asarray(X.mean(axis=0, dtype=np.float64)).reshape(-1).astype(np.float32)
        self.projection_ = rng.standard_normal((X.shape[1], self.bits)).astype(np.float32)


class PCAH(LinearHasher):
    """Sign of the top principal components."""

    method = "pcah"

    def _fit_flat(self, X: np.ndarray) -> None:
        self.mean_, self.projection_ = principal_directions(X, self.bits, self.seed)


class ITQ(LinearHasher):
    """PCA to `bits` dimensions, then an orthogonal rotation learned by Iterative Quantization."""

    method = "itq"

    def __init__(self, bits: int = 32, seed: int = 0, iterations: int = 50):
        super().__init__(bits, seed)
        self.iterations = iterations

    def config(self) -> dict:
        return {**super().config(), "iterations": self.iterations}

    def _fit_flat(self, X: np.ndarray) -> None:
        mean, pcs = principal_directions(X, self.bits, self.seed)
        V = project(X, mean, pcs).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        R, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        for _ in range(self.iterations):
            B = np.where(V @ R > 0, 1.0, -1.0)
            # Orthogonal Procrustes: the R minimising ||B - V R|| is U W^T for V^T B = U S W^T.
            U, _, Wt = np.linalg.svd(V.T @ B)
            R = U @ Wt
        self.mean_ = mean
        self.projection_ = (pcs.astype(np.float64) @ R).astype(np.float32)


def project(X, mean: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(X - mean) @ W -> (n, k) float32: X (n, *shape) dense, or (n, d) scipy.sparse (never
    densified: the mean's projection is subtracted after the product)."""
    if is_sparse(X):
        return np.asarray(X @ W, dtype=np.float32) - mean @ W
    return (X.reshape(len(X), -1) - mean) @ W


BASELINES = {cls.method: cls for cls in (LSH, PCAH, ITQ)}
