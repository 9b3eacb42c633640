"""Queries from what a user has at hand: an image file, a vector file, a stored item, a data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hashing.data import image_to_tensor
from ..hashing.errors import DataError
from ..hashing.hasher import Hasher
from .index import Index
from .store import StoreError


def image_codes(hasher: Hasher, path, name: str | None = None) -> np.ndarray:
    """An image (a path, or a binary file object such as an upload) converted as the model's training
    images were (channels, size, [0, 1]) -> (1, bits/8)."""
    from ..hashing.data import open_image

    spec = hasher.spec_
    if len(spec.shape) != 3 or not spec.normalization.endswith("-> [0, 1]"):
        raise DataError(
            f"this model was trained on {spec.normalization!r} data of shape {tuple(spec.shape)}, "
            "not images; query it with --vector"
        )
    channels, height, width = spec.shape
    if channels not in (1, 3):
        raise DataError(f"the model takes {channels}-channel inputs; only grey (1) or RGB (3) images convert")
    image = open_image(path if hasattr(path, "read") else Path(path), name)
    x = image_to_tensor(image, (height, width), grey=channels == 1)
    return hasher.encode(x.unsqueeze(0).numpy())


def vector_codes(hasher: Hasher, path) -> np.ndarray:
    """A .npy of one vector (d,) or several (n, d), of the model's input size -> (n, bits/8)."""
    from ..hashing.data import _read_arrays

    return vectors_to_codes(hasher, _read_arrays(Path(path))["x"], str(path))


def vectors_to_codes(hasher: Hasher, x, what: str = "vectors") -> np.ndarray:
    """One vector (d,) or several (n, d) - an array or lists of numbers - of the model's input size
    -> (n, bits/8). `what` names them in errors (a file, a request)."""
    d = int(np.prod(hasher.spec_.shape))
    if isinstance(x, list) and len({len(v) for v in x}) > 1:
        raise DataError(
            f"{what}: vectors must have {d} values each (the model's input size), got rows of different lengths"
        )
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != d:
        raise DataError(f"{what}: vectors must have {d} values each (the model's input size), got shape {x.shape}")
    if (
        not np.issubdtype(x.dtype, np.number)
        or not np.isfinite(x).all()
        or np.abs(x).max(initial=0) > np.finfo(np.float32).max
    ):
        raise DataError(f"{what}: vectors must be finite numbers")
    return hasher.encode(x.astype(np.float32).reshape(len(x), *hasher.spec_.shape))


def item_codes(index: Index, keys: list[str]) -> np.ndarray:
    """The stored codes of items, by key -> (n, bits/8)."""
    ids = index.store.ids_of(index.name, keys)
    missing = [k for k in keys if k not in ids]
    if missing:
        raise StoreError(f"no item {missing[0]!r} in index {index.name!r}")
    s = index.searcher
    order = np.argsort(s.ids)
    return s.codes[order[np.searchsorted(s.ids[order], [ids[k] for k in keys])]]


def search_from(
    target,
    name: str = "default",
    image=None,
    items=None,
    vector=None,
    dataset=None,
    split: str = "test",
    limit: int = 1,
    k: int | None = 10,
    radius: int | None = None,
    model=None,
    data_root=None,
    show=None,
) -> dict:
    """Encode the queries one way or another, search, and return {"queries": [{query, hits}]};
    show: a PNG path for the queries and their neighbours as an image grid."""
    from ..hashing.data import load_dataset
    from ..hashing.errors import ParameterError
    from .build import index_model

    given = [v for v in (image, items, vector, dataset) if v]
    if len(given) != 1:
        raise ParameterError("give exactly one query: --image, --item, --vector or --dataset")
    if k is not None and k <= 0:
        raise ParameterError(f"k must be positive, got {k}")
    index = Index.open(target, name)
    if radius is not None and not 0 <= radius <= index.bits:
        raise ParameterError(f"radius must be between 0 and the code length {index.bits}, got {radius}")
    if items:
        codes, labels = item_codes(index, list(items)), list(items)
    else:
        hasher = index_model(index, model)
        if image:
            codes, labels = image_codes(hasher, image), [str(image)]
        elif vector:
            codes = vector_codes(hasher, vector)
            labels = [f"{vector}[{i}]" for i in range(len(codes))]
        else:
            if limit < 1:
                raise ParameterError(f"--limit must be positive, got {limit}")
            data = load_dataset(dataset, split=split, root=data_root).subset(limit)
            codes, labels = hasher.encode(data), [f"{dataset}/{split}/{i}" for i in range(len(data))]
    hits = index.search(codes, k=k, radius=radius)
    result = {
        "index": name,
        "bits": index.bits,
        "k": k,
        "radius": radius,
        "queries": [{"query": q, "hits": h} for q, h in zip(labels, hits)],
    }
    if show:
        from .grid import item_pixels, write_grid

        if image:
            pixels = [item_pixels("", str(image))]
        else:
            pixels = [item_pixels(q, None, data_root) for q in labels]
        result["grid"] = str(write_grid(result, pixels, show, data_root))
    return result
