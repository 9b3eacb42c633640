"""A set of items to find duplicates in: an index's (codes and signatures as stored) or a path's
(its items read and encoded by a model, signed as they are read; nothing stored).

    side = index_side("items.db", "default")       # .searcher, .sig (n, s) or None, .verifier, .keys(pos)
    side = path_side("photos/", "m.semhash")
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...hashing import inputs
from ...hashing.errors import ModelMissing, ParameterError
from ..engine.searcher import Searcher
from ..index import Index


@dataclass
class Side:
    """what: {"index": name} or {"folder": path}; searcher: its codes by position; sig: (n, s)
    signatures by position, or None (some item has none); missing: items without one; verifier: the
    kind's (None: codes alone); hasher: the model (a path's, or None until an index needs it)."""

    what: dict
    searcher: Searcher
    sig: np.ndarray | None
    missing: int
    verifier: object
    index: Index | None = None
    path_keys: list[str] | None = None
    sources: list[str | None] | None = None
    hasher: object = None
    _meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.searcher)

    def rows(self, positions: np.ndarray) -> list[dict]:
        """{key, id, source} of each position (k,)."""
        if self.index is None:
            src = self.sources or [None] * len(self)
            return [{"key": self.path_keys[p], "id": int(p), "source": src[p]} for p in positions.tolist()]
        ids = self.searcher.ids[positions]
        meta = self.index.store.items(self.index.name, ids)
        root = self.index.sources_folder() if self.index.row.source_root else None
        out = []
        for i in ids.tolist():
            source = meta[i].get("source")
            if source and root and not os.path.isabs(source):
                source = os.path.join(root, source)
            out.append({"key": meta[i]["key"], "id": i, "source": source})
        return out


def index_side(target, name: str) -> Side:
    """The items of index `name` of the store at target, with the signatures it keeps."""
    index = Index.open(target, name, mode="read")
    s = index.searcher
    header = index.row.hasher_header or {}
    kind_name = (header.get("input") or {}).get("kind")
    verifier = inputs.get(kind_name).verifier() if kind_name else None
    sig, missing = None, len(s)
    if verifier is not None:
        ids, flat, signer = index.store.load_signatures(name)
        if signer == verifier.name and flat is not None:  # signed another way (another version): none
            sig, missing = _aligned(s.ids, ids, flat, np.dtype(verifier.dtype))
    return Side({"index": name}, s, sig, missing, verifier, index=index)


def _aligned(want: np.ndarray, ids: np.ndarray, flat: np.ndarray, dtype) -> tuple[np.ndarray | None, int]:
    """(signatures (n, s) of the ids `want` (n,) in that order, or None, items without one), from
    the stored bytes (m, width) uint8 of the ids (m,)."""
    if not len(ids) or flat.shape[1] % dtype.itemsize:
        return None, len(want)
    at = np.searchsorted(ids, want)
    at = np.minimum(at, len(ids) - 1)
    have = ids[at] == want
    if not have.all():
        return None, int((~have).sum())
    sig = flat.view(dtype)
    return (sig if np.array_equal(ids, want) else sig[at]), 0


def path_side(target, model) -> Side:
    """The items at path target (a folder, a file: the kind that reads it) encoded by model (a
    model file); their signatures made from the same inputs. Nothing is stored."""
    from ...hashing.data import as_dataset, item_keys
    from ...hashing.methods import load_hasher
    from ..encoding import encode_items, warn_skipped

    kind = inputs.for_path(Path(target))
    if model is None:
        raise ModelMissing(f"{target} holds {kind.name}, not an index: name the model that encodes them")
    hasher = load_hasher(model)
    data = as_dataset(str(target), spec=hasher.spec_)
    hasher.spec_.check(data.shape, data.normalization, what=data.name)
    signed: list = []
    n = len(data)
    codes, read = encode_items(hasher, data, np.arange(n), 0, n, lambda *a: None, False, signed)
    if not read.all():
        warn_skipped(data)
    keep = np.flatnonzero(read)
    keys = item_keys(data)
    parts = [p for p in signed if p is not None]
    sig = np.concatenate(parts) if parts else None
    files = [str(f) for f in data.files] if data.files else None
    s = Searcher(np.arange(len(keep), dtype=np.int64), codes[keep])
    return Side(
        {"folder": str(target)},
        s,
        sig,
        0 if sig is not None else len(keep),
        kind.verifier(),
        path_keys=[keys[i] for i in keep],
        sources=None if files is None else [files[i] for i in keep],
        hasher=hasher,
    )


def open_side(target, name: str, model) -> Side:
    """An index (a database file or URL) or a path of items (with a model)."""
    if Path(str(target)).exists() and inputs.for_path(Path(target)) is not None:
        return path_side(target, model)
    if model is not None:
        raise ParameterError(f"{target} is an index, whose items are encoded already: a model goes with a folder")
    return index_side(target, name)


def warn_unsigned(side: Side) -> None:
    from ...hashing.errors import SkippedItems

    where = side.what.get("index") or side.what.get("folder")
    warnings.warn(
        SkippedItems(
            f"{where}: {side.missing:,} of {len(side):,} items have no signature of this version's "
            f"({side.verifier.name}; stored before it, or before semhash kept them): "
            "pairs are decided by code distance alone; `semhash index sync` or a rebuild adds them"
        ),
        stacklevel=3,
    )
