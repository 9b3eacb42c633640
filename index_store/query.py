"""Queries: from what a user has at hand to results with each hit's metadata.

    search("items.db", images=["query.png"], k=10)    # {"index", "bits", "k", "radius", "queries": [...]}

What a user has: images (files, or uploaded bytes), input vectors, the keys of stored items, raw
codes in hex, or rows of a data set. Each becomes codes `(n, bits/8) uint8` (images and vectors
through the index's model, `Index.model`), then `results()` searches and attaches the metadata.
The CLI, the HTTP service and the Python API all go through this module; k and the radius are
checked once, by the searcher.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from ..hashing.errors import DataError, ItemNotFound, NoInput, NoQuery, ParameterError
from ..hashing.hasher import IMAGE_SUFFIXES, Hasher, open_image
from .index import Index
from .storage.records import codes_array

DEFAULT_K = 10  # hits per query when neither k nor a radius is given
MAX_IMAGE_BYTES = 10 << 20  # an upload or query image file
# Pixels an image may declare before it is decoded: 2048 x 2048, or 1,024 times the model's
# input, whichever is larger, and never over 64M (a 13,000 x 13,000 PNG of 164 KB would
# otherwise decode to 500 MB of pixels before anything could refuse it).
MIN_PIXEL_LIMIT, PIXELS_PER_INPUT_PIXEL, MAX_PIXEL_LIMIT = 2048 * 2048, 1024, 64 << 20


def results(index: Index, codes: np.ndarray, labels: list[str], k: int | None, radius: int | None) -> dict:
    """Search codes (n, bits/8) uint8 and describe each query's hits: {"index", "bits", "k",
    "radius", "queries": [{"query": label, "hits": [{id, key, label, source, meta, distance}]}]}."""
    hits = index.search(codes, k=k, radius=radius)
    return {
        "index": index.name,
        "bits": index.bits,
        "k": k,
        "radius": radius,
        "queries": [{"query": q, "hits": h} for q, h in zip(labels, hits)],
    }


def image_codes(hasher: Hasher, images, names: list[str] | None = None) -> np.ndarray:
    """An image or a list of images (paths, bytes, or binary file objects) converted as the model's
    training images were -> codes (n, bits/8). Sizes are checked before any pixel is decoded."""
    if not isinstance(images, (list, tuple)):
        images = [images]
    names = names or [str(i) if isinstance(i, (str, Path)) else "the upload" for i in images]
    spec, limit = hasher.spec_, pixel_limit(hasher.spec_.shape)
    x = np.stack([spec.image_to_input(open_image(im, name, MAX_IMAGE_BYTES, limit)) for im, name in zip(images, names)])
    return hasher.encode(x)


def expand_images(images: list) -> list:
    """Image queries as given: a file, a folder (every image in it, sorted), a glob pattern, or
    bytes (an upload, standard input) -> the files and bytes to encode, in order."""
    out = []
    for item in images:
        path = Path(item) if isinstance(item, (str, Path)) else None
        if path is not None and path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path is not None and not path.exists() and any(c in str(item) for c in "*?["):
            matches = sorted(glob.glob(str(item)))
            if not matches:
                raise DataError(f"{item}: no file matches")
            out += matches
        else:
            out.append(item)
    if not out:
        raise DataError("no images among the queries given")
    return out


def pixel_limit(input_shape: tuple[int, ...]) -> int:
    """Most pixels a query image may have, for a model whose items have this shape."""
    per_item = int(np.prod(input_shape[-2:])) if len(input_shape) >= 2 else 0
    return min(MAX_PIXEL_LIMIT, max(MIN_PIXEL_LIMIT, PIXELS_PER_INPUT_PIXEL * per_item))


def vector_codes(hasher: Hasher, x, what: str = "vectors") -> np.ndarray:
    """One vector (d,) or several (n, d) - an array or lists of numbers - of the model's input size
    -> codes (n, bits/8). `what` names them in errors (a file, a request)."""
    d = int(np.prod(hasher.spec_.shape))
    wrong = f"{what}: vectors must have {d} values each (the model's input size)"
    if isinstance(x, list) and len({len(v) if isinstance(v, (list, tuple)) else -1 for v in x}) > 1:
        raise DataError(f"{wrong}, got rows of different lengths")
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != d:
        raise DataError(f"{wrong}, got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{what}: no vectors")
    if np.iscomplexobj(x) or not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{what}: vectors must be real numbers, got {x.dtype}")
    if not np.isfinite(x).all() or np.abs(x).max(initial=0) > np.finfo(np.float32).max:
        raise DataError(f"{what}: vectors must be finite numbers")
    return hasher.encode(x.astype(np.float32).reshape(len(x), *hasher.spec_.shape))


def vector_file_codes(hasher: Hasher, path) -> np.ndarray:
    """A .npy of one vector (d,) or several (n, d) -> codes (n, bits/8)."""
    from ..hashing.data import read_arrays

    return vector_codes(hasher, read_arrays(Path(path))["x"], str(path))


def item_codes(index: Index, keys: list[str]) -> np.ndarray:
    """The stored codes of items, by key -> (n, bits/8); ItemNotFound names the first missing key.
    Read from SQL with the keys, in one snapshot: not from the searcher, which another writer may
    move on between two reads (the chaos test saw three such reads in a row disagree, under 16
    clients adding and removing the same keys)."""
    found = index.store.codes_of(index.name, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        raise ItemNotFound(f"no item {missing[0]!r} in index {index.name!r}")
    return codes_array([(0, found[k]) for k in keys], index.bits, f"index {index.name!r}")[1]


def hex_codes(hexes: list[str], bits: int) -> np.ndarray:
    """Codes written as hex, bits/4 digits each (FAISS bit order) -> (n, bits/8) uint8."""
    nbytes = bits // 8
    bad = [c for c in hexes if len(c) != 2 * nbytes]
    if bad:
        raise ParameterError(f"the index holds {bits}-bit codes: {2 * nbytes} hex digits each, got {len(bad[0])}")
    try:
        return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(len(hexes), nbytes)
    except ValueError:
        raise ParameterError("codes must be hexadecimal digits") from None


def search(
    target,
    name: str = "default",
    *,
    images: list | None = None,
    items: list[str] | None = None,
    vectors=None,
    codes: list[str] | None = None,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    k: int | None = None,
    radius: int | None = None,
    model=None,
    data_root=None,
    show=None,
    source_root=None,
) -> dict:
    """Search index `name` of the store at `target` (a SQLite path or a database URL) with one kind
    of query: images (paths or bytes), items (stored keys), vectors (a .npy path, or an array of
    the model's inputs), codes (hex) or rows of `dataset`'s `split`; limit: the first `limit`
    queries of that input only (a data set gives one query when limit is None). model: a
    model file other than the index's own; show: a PNG path for the queries and their hits as a
    grid. k: at most this many hits per query; radius: only hits within this Hamming distance (with
    no k: every one of them); neither: the DEFAULT_K nearest. source_root: where the indexed image
    folder is now, if it moved since the build. Returns results() of the queries."""
    if k is None and radius is None:
        k = DEFAULT_K
    images, items, vectors, codes, dataset = (_given(v) for v in (images, items, vectors, codes, dataset))
    if sum(v is not None for v in (images, items, vectors, codes, dataset)) != 1:
        raise NoQuery("give exactly one query: images, items, vectors, codes or a data set")
    _check_limit(limit)
    if source_root is not None and not Path(source_root).is_dir():
        raise DataError(f"{source_root}: no such folder (where the indexed images are now)")
    if images is not None:
        images = expand_images(images)[:limit]
    items, codes = (None if v is None else list(v)[:limit] for v in (items, codes))
    index = Index.open(target, name, mode="read", source_root=source_root)
    query_codes, labels = _encode(index, images, items, vectors, codes, dataset, split, limit, model, data_root)
    result = results(index, query_codes, labels, k, radius)
    if show:
        result["grid"] = str(_grid(index, result, images, items, labels, show, data_root))
    return result


def _grid(index: Index, result: dict, images, items, labels, show, data_root):
    """The result grid: each query's own picture (its file, its stored item's source, or its data
    set row), then its hits'."""
    from .grid import item_pixels, write_grid

    if images:
        pixels = [item_pixels("", str(i) if isinstance(i, (str, Path)) else None) for i in images]
    else:
        sources = {}
        if items:
            ids = index.store.ids_of(index.name, list(items))
            stored = index.store.items(index.name, list(ids.values()))
            sources = {m["key"]: index.describe(m)["source"] for m in stored.values()}
        pixels = [item_pixels(q, sources.get(q), data_root) for q in labels]
    return write_grid(result, pixels, show, data_root)


def encode(
    model,
    *,
    images: list | None = None,
    vectors=None,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    data_root=None,
) -> tuple[list[str], np.ndarray]:
    """The codes a model file gives one kind of input - images (files, folders, globs, bytes),
    vectors (a .npy path or an array) or rows of a data set - as (a label per input, codes
    (n, bits/8) uint8 in FAISS bit order). limit: the first `limit` inputs only (a data set gives
    one row when limit is None)."""
    from ..hashing.methods import load_hasher

    images, vectors, dataset = (_given(v) for v in (images, vectors, dataset))
    if sum(v is not None for v in (images, vectors, dataset)) != 1:
        raise NoInput("give exactly one input: images, vectors or a data set")
    _check_limit(limit)
    hasher = load_hasher(model)
    if images is not None:
        images = expand_images(images)[:limit]
        return [str(i) if isinstance(i, (str, Path)) else "stdin" for i in images], image_codes(hasher, images)
    if vectors is not None:
        codes = (
            vector_file_codes(hasher, vectors) if isinstance(vectors, (str, Path)) else vector_codes(hasher, vectors)
        )[:limit]
        return [f"vector {i}" for i in range(len(codes))], codes
    from ..hashing.data import as_dataset

    data = as_dataset(dataset, split, data_root, limit=limit or 1)
    return [f"{dataset}/{split}/{i}" for i in range(len(data))], hasher.encode(data)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ParameterError(f"the number of queries must be positive, got {limit}")


def _given(value):
    """None for a query that is not there: None, or an empty list or string."""
    return None if value is None or (hasattr(value, "__len__") and not len(value)) else value


def _encode(index, images, items, vectors, codes, dataset, split, limit, model, data_root):
    """(codes, a label per query) for whichever kind of query was given."""
    if items is not None:
        return item_codes(index, list(items)), list(items)
    if codes is not None:
        return hex_codes(list(codes), index.bits), list(codes)
    hasher = index.model(model)
    if images is not None:
        return image_codes(hasher, images), [str(i) if isinstance(i, (str, Path)) else "stdin" for i in images]
    if vectors is not None:
        if isinstance(vectors, (str, Path)):
            found = vector_file_codes(hasher, vectors)[:limit]
            return found, [f"{vectors}[{i}]" for i in range(len(found))]
        found = vector_codes(hasher, vectors)[:limit]
        return found, [f"vector {i}" for i in range(len(found))]
    from ..hashing.data import load_dataset

    data = load_dataset(dataset, split=split, root=data_root).subset(limit or 1)
    return hasher.encode(data), [f"{dataset}/{split}/{i}" for i in range(len(data))]
