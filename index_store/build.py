"""Fill an index from a data set with a trained model, and turn user queries into codes.

    build_index("items.db", "mnist32.semhash", load_dataset("mnist"), name="default")

Items are encoded and committed in batches; each committed batch survives a crash, and
`resume=True` skips the keys already stored, so an interrupted build finishes where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..hashing.data import Dataset
from ..hashing.errors import ArtifactError
from ..hashing.hasher import Hasher, load_hasher
from .index import Index, _file_checksum
from .store import Store, StoreError

BUILD_BATCH = 5_000


def item_keys(data: Dataset) -> list[str]:
    """Stable external keys: '<name>/<split>/<row>' for named sets, the file path for image folders."""
    files = getattr(data, "files", None)
    if files:
        return [str(f) for f in files]
    prefix = f"{data.name}/{data.split}" if data.split else data.name
    return [f"{prefix}/{i}" for i in range(len(data))]


def build_index(
    target,
    model_path,
    data: Dataset,
    name: str = "default",
    resume: bool = False,
    adding: bool = False,
    batch_size: int = BUILD_BATCH,
    progress=None,
) -> Index:
    """Encode `data` with the model and add it to index `name`.

    build (default): the index is created, or must be empty; resume: keys already stored are skipped;
    adding: the index must exist and none of the keys be in it.
    """
    hasher = load_hasher(model_path)
    store = Store(target)
    if name in store.index_names():
        index = Index(store, name)
        check_model(index, model_path, hasher)
        if not (resume or adding) and index.row.item_count:
            raise StoreError(
                f"index {name!r} already holds {index.row.item_count:,} items; "
                "use --resume to finish an interrupted build, or another name"
            )
    elif adding:
        raise StoreError(f"no index named {name!r} in {target}; build it first")
    else:
        index = Index.create(store, name, hasher.bits, hasher_path=str(Path(model_path).resolve()))
    keys = item_keys(data)
    have = set(store.ids_of(name, keys)) if (resume or adding) else set()
    if adding and have:
        raise StoreError(f"{len(have)} of these items are already in index {name!r}, e.g. {sorted(have)[0]!r}")
    todo = np.array([i for i, k in enumerate(keys) if k not in have], dtype=np.int64)
    labels = None if data.labels is None else data.labels.numpy()
    sources = getattr(data, "files", None)
    if progress:
        progress(len(keys) - len(todo), len(keys))
    # Encode first (nothing is written), then let Index.add commit batch by batch and update the
    # derived structures once, not after every batch.
    codes = np.zeros((len(todo), hasher.bits // 8), dtype=np.uint8)
    for start in range(0, len(todo), batch_size):
        codes[start : start + batch_size] = hasher.encode(data.x[todo[start : start + batch_size]])
    done = len(keys) - len(todo)
    index.add(
        [keys[i] for i in todo],
        codes,
        labels=None if labels is None else labels[todo],
        sources=[str(sources[i]) for i in todo] if sources else [f"{data.source}#{i}" for i in todo],
        batch_size=batch_size,
        progress=(lambda n: progress(done + n, len(keys))) if progress else None,
    )
    return index


def check_model(index: Index, model_path, hasher: Hasher | None = None) -> Hasher:
    """The index's model must be this file: same code length, same bytes as when the index was built."""
    hasher = hasher or load_hasher(model_path)
    if hasher.bits != index.bits:
        raise ArtifactError(
            f"{model_path} makes {hasher.bits}-bit codes, index {index.name!r} holds {index.bits}-bit codes"
        )
    if index.row.hasher_checksum and _file_checksum(model_path) != index.row.hasher_checksum:
        raise ArtifactError(
            f"{model_path} is not the model index {index.name!r} was built with "
            f"({index.row.hasher_path}); codes would not be comparable"
        )
    return hasher


def index_model(index: Index, model_path=None) -> Hasher:
    """The model to encode queries with: the given file, else the one the index was built with."""
    path = model_path or index.row.hasher_path
    if not path:
        raise ArtifactError(f"index {index.name!r} records no model; pass --model")
    if not os.path.exists(path):
        raise ArtifactError(f"the model of index {index.name!r} is gone ({path}); pass --model")
    return check_model(index, path)
