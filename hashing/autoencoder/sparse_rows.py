"""Training on sparse items (bags of words: a scipy.sparse csr_matrix (n, vocabulary)) without
ever densifying the corpus: SparseRows stands where the training loop holds a float tensor of
items, and hands out dense float32 tensors of the rows a batch or a validation chunk asks for
(batch 512 x 10,000 words: 20 MB), or a sparse CSR tensor of them for a first layer that takes
one (model.Autoencoder: a sparse product, where the dense one multiplies the zeros too).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class SparseRows:
    """csr: (n, d) float32 -> rows[idx] (len(idx), d) float32 tensor; rows.take(ids) another SparseRows."""

    ndim = 2
    device = torch.device("cpu")

    def __init__(self, csr):
        csr = csr.tocsr().astype(np.float32, copy=False)
        if not csr.has_canonical_format:  # sorted, no repeats: what torch's CSR kernels assume (sparse())
            csr = csr.copy()
            csr.sum_duplicates()
        self.csr = csr

    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    def __len__(self) -> int:
        return self.csr.shape[0]

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        return torch.from_numpy(self.csr[idx].toarray())

    def sparse(self, idx) -> torch.Tensor:
        """The rows idx as a torch sparse CSR float32 tensor (len(idx), d)."""
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        rows = self.csr[idx]  # rows of a canonical matrix: canonical
        with warnings.catch_warnings():  # torch calls its CSR support "beta" on every first use
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.from_numpy(rows.indptr.astype(np.int64)),
                torch.from_numpy(rows.indices.astype(np.int64)),
                torch.from_numpy(rows.data),
                size=rows.shape,
                check_invariants=False,
            )

    def take(self, ids: np.ndarray) -> SparseRows:
        return SparseRows(self.csr[np.asarray(ids)])

    def to(self, device) -> SparseRows:  # batches are made dense on the CPU, then moved
        return self


def as_rows(x) -> torch.Tensor | SparseRows:
    """A Dataset's items as the training loop holds them: a tensor sharing a dense array's memory,
    or SparseRows of a sparse matrix."""
    return SparseRows(x) if hasattr(x, "tocsr") else torch.from_numpy(np.ascontiguousarray(x))


def take(x, ids: np.ndarray):
    """Rows ids (m,) of a tensor or of SparseRows, in that order."""
    return x.take(ids) if isinstance(x, SparseRows) else x[torch.from_numpy(np.asarray(ids, dtype=np.int64))]
