"""Fill an index from a data set with a trained model: encode in batches, commit batch by batch.

    build_index("items.db", "mnist32.semhash", load_dataset("mnist"), name="default")

Items are encoded and committed in batches; each committed batch survives a crash, and
`resume=True` skips the keys already stored, so an interrupted build finishes where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..hashing import inputs
from ..hashing.data import as_dataset, item_keys, parse_item_key
from ..hashing.dataset import Dataset
from ..hashing.errors import (
    IndexNotFound,
    NeedsResume,
    ParameterError,
    StoreError,
    StoreMissing,
)
from ..hashing.methods import load_hasher
from .encoding import encode_items, warn_skipped
from .index import Index
from .storage.store import Store

# items a transaction, as Index.add's own default. The build encodes every item before it stores
# any, so this bounds only what a crash while storing loses (--resume re-encodes it: MNIST's 60,000
# in 0.8 s). MNIST's store in one transaction instead of three of 20,000: 0.209 -> 0.190 s, medians
# of 15 builds (measured; earlier, 5,000 -> 20,000 took the build from 0.81x to 0.84x its decode +
# encode)
BUILD_BATCH = 100_000


def build_index(
    target,
    model_path,
    data,
    name: str = "default",
    resume: bool = False,
    adding: bool = False,
    batch_size: int = BUILD_BATCH,
    progress=None,
    strict: bool = False,
    **data_options,
) -> Index:
    """Encode `data` with the model and add it to index `name` of the store at `target`.

    data: a Dataset, or what load_dataset takes (a named set, an image folder, a feature file), with
    data_options of hashing.data.as_dataset (split, root, labels, limit). build (default): the index
    is created, or must be empty; resume: keys already stored are skipped; adding: the index must
    exist and none of the keys be in it. model_path None (adding only): the index's own model.
    progress(done, total, stage), if given, is called as items are encoded (stage "encoding"),
    then as they are committed ("storing"). Files that cannot be read are left out with one
    SkippedItems warning naming them; strict: a DataError for the first instead.
    """
    data, hasher = _checked(data, data_options, batch_size, model_path)
    index, hasher = _target_index(target, model_path, hasher, data, name, resume, adding)
    if model_path is None and hasher.spec_.featurizer is not None:  # adding: read with the index's model
        data = inputs.get(data.kind).featurize(data, hasher.spec_.featurizer)
        hasher.spec_.check(data.shape, data.normalization, what=data.name)
    keys = item_keys(data)
    total, todo = len(keys), _todo(index, keys, resume or adding, adding)
    done = len(keys) - len(todo)
    rows = item_rows(data, keys, index)
    if done:  # resuming: only the items not stored yet
        rows = take_rows(rows, todo)
    report = progress or (lambda done, total, stage: None)
    # Encode first (nothing is written), then let Index.add commit batch by batch and update the
    # derived structures once, not after every batch. (Encoding batch i+1 in a thread while batch i
    # is stored was measured: the autoencoder's build 0.61x -> 0.63x its decode + encode on 2 cores,
    # where torch's two threads and SQLite share the same cores; not kept.)
    signed = []
    codes, read = encode_items(hasher, data, todo, done, total, report, strict, signed)
    if not read.all():  # files that could not be read: left out, and named in one warning
        warn_skipped(data)
        rows, codes = take_rows(rows, np.flatnonzero(read)), codes[read]
    report(done, total, "storing")
    ids = index.add(codes=codes, **rows, batch_size=batch_size, progress=lambda n: report(done + n, total, "storing"))
    store_signatures(index, ids, signed)  # each item's near-duplicate signature, of the inputs its code is of
    index.store.checkpoint()  # the database file alone now holds the whole index
    return index


def store_signatures(index: Index, ids: np.ndarray, signed: list) -> None:
    """Keep the signatures encode_items made (signed, one array per part, of the items read) with
    the items given ids (n,), the items read in order; nothing when the kind has no verifier."""
    parts = [p for p in signed if p is not None]
    if parts and len(ids):
        kind = ((index.row.hasher_header or {}).get("input") or {}).get("kind")
        signer = inputs.get(kind).verifier().name  # the model's kind made them
        index.store.put_signatures(index.name, ids, np.concatenate(parts), signer)


def _todo(index: Index, keys: list[str], resuming: bool, adding: bool) -> np.ndarray:
    """Rows (m,) of the keys not stored yet: all of them for a build, those missing when resuming;
    adding refuses keys the index holds already."""
    have = set(index.store.ids_of(index.name, keys)) if resuming else set()
    if adding and have:
        raise StoreError(f"{len(have)} of these items are already in index {index.name!r}, e.g. {sorted(have)[0]!r}")
    return np.array([i for i, k in enumerate(keys) if k not in have], dtype=np.int64) if have else np.arange(len(keys))


def item_rows(data: Dataset, keys: list[str], index: Index) -> dict:
    """Index.add's per-item columns of every item of data: keys, labels (as the index numbers
    them), sources and metas."""
    labels = None if data.labels is None else index_labels(data, index)
    sources = item_sources(data, keys, index.sources_folder() if index.row.source_root else None)
    snippets = inputs.get(data.kind).snippets(data)  # texts: each document's start, shown with hits
    return {"keys": keys, "labels": labels, "sources": sources, "metas": data.metas, "snippets": snippets}


def take_rows(rows: dict, idx: np.ndarray) -> dict:
    """Each per-item column (a list, an array or None) at the positions idx (m,)."""
    return {
        name: None if v is None else v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]
        for name, v in rows.items()
    }


def index_labels(data: Dataset, index: Index) -> np.ndarray:
    """The data's labels as the index numbers them: a folder's class names are mapped onto the
    classes the index recorded (StoreError for a class it does not know)."""
    labels, known = data.labels, index.row.classes
    if not known or not data.classes or list(data.classes) == list(known):
        return labels
    unknown = [c for c in data.classes if c not in known]
    if unknown:
        raise StoreError(
            f"classes {', '.join(unknown[:5])} of {data.name} are not among index {index.name!r}'s "
            f"({', '.join(known[:10])}); build another index for them"
        )
    return np.array([known.index(c) for c in data.classes], dtype=np.int64)[labels]


def item_sources(data: Dataset, keys: list[str], root: str | None) -> list[str] | None:
    """Where each item came from: an image folder's files relative to the index's recorded folder
    (so a moved index finds them under a new root), a feature file's '<path>#<row>', and nothing
    for a named data set's rows: their key ('mnist/train/7') names the row wherever its files are
    (the files' path was this machine's download cache; storing it took 0.08 s of MNIST's 1.1 s
    build, measured)."""
    if not data.files and keys and parse_item_key(keys[0]) is not None:
        return None
    if not data.files:
        return [f"{data.source}#{i}" for i in range(len(data))]
    if root is None:
        return [os.path.abspath(f) for f in data.files]
    out = []
    for f in data.files:  # relative inside the recorded folder; a file elsewhere keeps its own path
        relative = os.path.relpath(os.path.abspath(f), root)
        out.append(os.path.abspath(f) if relative.startswith(os.pardir) else Path(relative).as_posix())
    return out


def _checked(data, data_options: dict, batch_size: int, model_path):
    """(the Dataset, the model loaded from model_path or None): everything that can be refused is
    checked before the store is touched - the data set, the batch size, the model file (read once)
    and whether it takes these items."""
    if batch_size < 1:
        raise ParameterError(f"the batch size must be positive, got {batch_size}")
    hasher = None if model_path is None else load_hasher(model_path)
    # items are read as the model takes them (a folder's images decoded at its input size)
    data = as_dataset(data, **data_options, spec=None if hasher is None else hasher.spec_)
    if hasher is not None:
        hasher.spec_.check(data.shape, data.normalization, what=data.name)
    return data, hasher


def _target_index(target, model_path, hasher, data, name: str, resume, adding) -> tuple[Index, object]:
    """The index to fill (created unless adding or resuming one that exists) and its model (hasher:
    model_path already loaded, or None for the index's own)."""
    try:
        store = Store(target, "write" if adding else "create")
    except StoreMissing as exc:
        raise IndexNotFound(f"no index named {name!r}: {exc}; build it first") from None
    if name not in store.index_names():
        if adding:
            raise IndexNotFound(f"no index named {name!r} in {target}; build it first")
        path = str(Path(model_path).resolve())
        root = os.path.abspath(data.source) if data.files else None
        index = Index.create(
            store, name, hasher.bits, hasher_path=path, model=hasher, source_root=root, classes=data.classes
        )
        return index, hasher
    index = Index(store, name)
    hasher = index.model(model_path, loaded=hasher)
    if not (resume or adding) and index.row.item_count:
        raise NeedsResume(
            f"index {name!r} already holds {index.row.item_count:,} items; "
            "resume the interrupted build, or build another index"
        )
    return index, hasher
