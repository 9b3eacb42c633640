"""A data set in memory: items as one float32 array, labels, and what a model checks later.

Every input kind (hashing/inputs/) reads its files into this one shape, so training, building
and benchmarks never ask what kind of item they hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Dataset:
    """x: (n, *shape) float32; labels: (n,) int64 or None; classes[label] names a label.

    kind: the registered input kind the items are (hashing/inputs/: "images", "features", ...);
    normalization: how raw items became x, in words (a model refuses other normalizations);
    files: the file each item came from, where items are files (image folders)."""

    name: str
    x: np.ndarray | None  # None: read in parts by `reader` (files too many to hold decoded at once)
    labels: np.ndarray | None
    normalization: str
    source: str
    classes: list[str] | None = None
    split: str | None = None
    files: list[str] | None = field(default=None, repr=False)
    extracted_from: str | None = None  # where gzip-only raw files were extracted from
    _fingerprint: str | None = field(default=None, repr=False)
    kind: str = "features"
    # a data set read in parts: reader(files, or row numbers where there are no files) -> (x (m_ok,
    # *shape) float32 of the items it could read, which it could read (m,) bool); item_shape: the
    # shape of one item
    reader: Callable[[list], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    item_shape: tuple[int, ...] | None = None
    keys: list[str] | None = field(default=None, repr=False)  # the items' own keys, where the input names them
    metas: list[dict | None] | None = field(default=None, repr=False)  # each item's metadata, kept with it
    # documents (hashing/inputs/texts.py): their text, and the featurizer that made x of them (x is
    # then a scipy.sparse csr_matrix (n, vocabulary) float32; None: not featurized yet)
    texts: list[str] | None = field(default=None, repr=False)
    featurizer: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # arrays as promised whatever was given (lists, another library's tensors): no copy when
        # they already are; nothing here imports torch
        if self.x is not None and not hasattr(self.x, "tocsr"):  # a sparse matrix stays sparse
            self.x = np.asarray(self.x, dtype=np.float32)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one item, e.g. (1, 28, 28) for MNIST or (d,) for features."""
        return tuple(self.item_shape) if self.x is None else tuple(self.x.shape[1:])

    def __len__(self) -> int:
        if self.x is not None:
            return self.x.shape[0]
        if self.texts is not None:
            return len(self.texts)
        return len(self.files) if self.files is not None else len(self.keys)

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The items at these rows (m,) int: (x (m_ok, *shape) float32, the m_ok rows read). Items
        held in memory are all read; a data set read in parts leaves out what it could not read."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.x is None:
            x, ok = self.reader([self.files[i] for i in rows] if self.files is not None else rows)
            return x, rows[ok]
        return self.x[rows], rows

    @property
    def fingerprint(self) -> str:
        """Content hash of x and labels, so a model can name the data it was trained on."""
        if self.x is None:
            raise ValueError(f"{self.name} is read in parts: load it whole to fingerprint it")
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(str(tuple(self.x.shape)).encode())
            parts = (self.x.data, self.x.indices, self.x.indptr) if hasattr(self.x, "tocsr") else (self.x,)
            for part in parts:  # a csr matrix's three arrays
                h.update(np.ascontiguousarray(part))  # the buffer itself: no copy when contiguous
            if self.labels is not None:
                h.update(np.ascontiguousarray(self.labels))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def flat(self) -> np.ndarray:
        """(n, prod(shape)) float32 numpy view: each item as one vector."""
        return self.x.reshape(len(self.x), -1)

    def subset(self, stop: int | None = None, start: int = 0) -> Dataset:
        if self.x is None and self.files is None and start:
            raise ValueError(f"{self.name} is read in parts by row: only its first items can be taken")
        cut = lambda v: None if v is None else v[start:stop]  # noqa: E731
        return replace(
            self,
            x=cut(self.x),
            labels=cut(self.labels),
            files=cut(self.files),
            keys=cut(self.keys),
            metas=cut(self.metas),
            texts=cut(self.texts),
            _fingerprint=None,
        )

    def take(self, rows: np.ndarray) -> Dataset:
        """The items at these row numbers (m,) int, in this order (a copy)."""
        if self.x is None and self.files is None and self.texts is None:
            raise ValueError(f"{self.name} is read in parts by row: its items cannot be taken out of order")
        rows = np.asarray(rows, dtype=np.int64)
        pick = lambda v: None if v is None else [v[i] for i in rows.tolist()]  # noqa: E731
        labels = None if self.labels is None else self.labels[rows]
        x = None if self.x is None else self.x[rows]
        return replace(
            self,
            x=x,
            labels=labels,
            files=pick(self.files),
            keys=pick(self.keys),
            metas=pick(self.metas),
            texts=pick(self.texts),
            _fingerprint=None,
        )


def describe(ds: Dataset) -> dict:
    """A summary for people and scripts: size, shape, classes, normalization, source."""
    counts = None
    if ds.labels is not None:
        values, n = np.unique(ds.labels, return_counts=True)
        counts = {int(v): int(c) for v, c in zip(values, n)}
    return {
        "name": ds.name,
        "split": ds.split,
        "items": len(ds),
        "shape": list(ds.shape),
        "classes": list(ds.classes or ([] if counts is None else map(str, counts))),
        "class_counts": list(counts.values()) if counts else [],
        "normalization": ds.normalization,
        "source": ds.source,
        **({"extracted_from": ds.extracted_from} if ds.extracted_from else {}),
    }
