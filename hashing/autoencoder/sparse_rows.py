"""Training on sparse items (bags of words: a scipy.sparse csr_matrix (n, vocabulary)) without
ever densifying the corpus: SparseRows stands where the training loop holds a float tensor of
items, and hands out dense float32 tensors of the rows a batch or a validation chunk asks for
(batch 512 x 10,000 words: 20 MB).
"""

from __future__ import annotations

import numpy as np
import torch


class SparseRows:
    """csr: (n, d) float32 -> rows[idx] (len(idx), d) float32 tensor; rows.take(ids) another SparseRows."""

    ndim = 2
    device = torch.device("cpu")

    def __init__(self, csr):
        self.csr = csr.tocsr().astype(np.float32, copy=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    def __len__(self) -> int:
        return self.csr.shape[0]

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        return torch.from_numpy(self.csr[idx].toarray())

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
