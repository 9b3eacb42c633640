"""Encode a data set's items with a model, in bounded parts: the codes, which items were read, and
the kind's signatures of them. Nothing is stored here (build, sync and dedup's folders share it).

    codes, read = encode_items(hasher, data, np.arange(len(data)), 0, len(data), report, strict=False)
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..hashing import inputs
from ..hashing.dataset import Dataset
from ..hashing.errors import DataError, SkippedItems

# rows encoded at a time: parts of 5,000 made the autoencoder run a pass of 904 rows after each of
# 4,096 (MNIST's 64-bit build: 1.03 -> 0.99 s, measured); the byte bound keeps a resumed build's
# copy of large images small (224x224 RGB: 445 rows)
ENCODE_ROWS, ENCODE_BYTES = 16_384, 256 << 20
# input bytes decoded from files at a time: with the workers' pixels in flight, a build of large
# photos stays well under 1 GB whatever the folder's size
READ_BYTES = 64 << 20


def encode_items(hasher, data: Dataset, todo: np.ndarray, done: int, total: int, report, strict: bool, signed=None):
    """(codes (len(todo), bits/8) uint8, read (len(todo),) bool) of the items todo (all of them
    when done == 0), in parts of whole forward passes (the autoencoder runs 4,096 rows at a time)
    and at most ENCODE_BYTES of input (READ_BYTES for files decoded as they are read). signed: a
    list to append each part's verifier signatures to ((k, s), the part's items that were read)."""
    kind = inputs.get(data.kind) if signed is not None else None
    codes = np.zeros((len(todo), hasher.bits // 8), dtype=np.uint8)
    read = np.ones(len(todo), dtype=bool)
    bound = ENCODE_BYTES if data.x is not None else READ_BYTES
    step = max(1, min(ENCODE_ROWS, bound // max(1, 4 * int(np.prod(data.shape)))))
    for start in range(0, len(todo), step):
        report(done + start, total, "encoding")
        part = slice(start, start + step)
        if data.x is not None:
            x = data.x[todo[part]] if done else data.x[part]  # a slice copies nothing
            codes[part] = hasher.encode(x)
            if kind is not None:
                signed.append(kind.signatures(data, todo[part], x))
            continue
        x, rows = data.read(todo[part])
        read[part] = np.isin(todo[part], rows)
        if strict and not read[part].all():
            failed = getattr(data.reader, "failed", [])
            raise DataError(failed[0][1] if failed else f"{data.name}: an item could not be read")
        if len(rows):
            codes[start : start + len(read[part])][read[part]] = hasher.encode(x)
            if kind is not None:
                signed.append(kind.signatures(data, rows, x))
    return codes, read


def warn_skipped(data: Dataset) -> None:
    """One SkippedItems warning that counts and names the files left out."""
    failed = getattr(data.reader, "failed", [])
    names = ", ".join(os.path.basename(f) for f, _ in failed[:5]) + (", ..." if len(failed) > 5 else "")
    warnings.warn(SkippedItems(f"skipped {len(failed)} unreadable file(s) of {data.name}: {names}"), stacklevel=3)
