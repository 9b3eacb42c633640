"""Queries: from what a user has at hand to results with each hit's metadata.

    search("items.db", images=["query.png"], k=10)    # {"index", "bits", "k", "radius", "queries": [...]}

What a user has: images (files, or uploaded bytes), input vectors, the keys of stored items, raw
codes in hex, or rows of a data set. Each becomes codes `(n, bits/8) uint8` (images and vectors
through the index's model, `Index.model`), then `results()` searches and attaches the metadata.
The CLI, the HTTP service and the Python API all go through this module; k and the radius are
checked once, by the searcher.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hashing import inputs
from ..hashing.errors import DataError, ItemNotFound, NoInput, NoQuery, ParameterError
from ..hashing.hasher import Hasher
from .index import Index
from .storage.records import codes_array

DEFAULT_K = 10  # hits per query when neither k nor a radius is given


def results(index: Index, codes: np.ndarray, labels: list[str], k: int | None, radius: int | None) -> dict:
    """Search codes (n, bits/8) uint8, each query named by its label: Index.search's answer,
    {"index", "bits", "k", "radius", "queries": [{"query": label, "hits": [{id, key, label,
    class, source, meta, distance}]}]}, the one every search gives (Python, CLI JSON, HTTP)."""
    return index.search(codes, k=k, radius=radius, queries=labels)


def item_results(index: Index, keys: list[str], k: int | None, radius: int | None) -> dict:
    """results() of stored items searched by key, each item listed first among its own hits: it is
    at distance 0 from itself, so putting it ahead of the other items at distance 0 keeps the answer
    exact, and a user who picks an item sees it come back (with more than k items sharing its code,
    plain tie order could leave it out; then every hit is at distance 0, and it takes the last's place)."""
    result = results(index, item_codes(index, keys), keys, k, radius)
    for query in result["queries"]:
        own = [h for h in query["hits"] if h["key"] == query["query"]]
        others = [h for h in query["hits"] if h["key"] != query["query"]]
        if not own:
            own = _own_hit(index, query["query"])
            others = others[: len(others) - len(own)]
        query["hits"] = own + others
    return result


def _own_hit(index: Index, key: str) -> list[dict]:
    """[the hit of item `key` at distance 0 from itself], or [] if another writer removed it."""
    ids = index.store.ids_of(index.name, [key])
    stored = index.items(list(ids.values()))
    return [{**index.describe(m), "distance": 0} for m in stored.values()]


def input_codes(hasher: Hasher, keyword: str, items, names=None) -> np.ndarray:
    """Items of the input kind whose keyword is `keyword` ("images": files or bytes; "vectors": an
    array or lists of numbers) -> codes (n, bits/8) through the model, each converted as its
    training items were. names: what errors call them (one per item, or one for all)."""
    kind = inputs.by_keyword(keyword)
    return hasher.encode(kind.inputs(hasher.spec_, items, names))


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
    items: list[str] | None = None,
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
    **given,
) -> dict:
    """Search index `name` of the store at `target` (a SQLite path or a database URL) with one kind
    of query: items (stored keys), codes (hex), rows of `dataset`'s `split`, or inputs of a
    registered kind by its keyword (hashing/inputs/: `images=` paths, folders, globs or bytes;
    `vectors=` a .npy path or an array of the model's inputs). limit: the first `limit` queries
    only (a data set gives one query when limit is None). model: a model file other than the
    index's own; show: a PNG path for the queries and their hits as a grid. k: at most this many
    hits per query; radius: only hits within this Hamming distance (with no k: every one of them);
    neither: the DEFAULT_K nearest. source_root: where the indexed image folder is now, if it moved
    since the build. Returns results() of the queries."""
    k, radius = whole_number(k, "k"), whole_number(radius, "the radius")
    if k is None and radius is None:
        k = DEFAULT_K
    what, value = _one_query(given, items=items, codes=codes, dataset=dataset)
    _check_limit(limit)
    if source_root is not None and not Path(source_root).is_dir():
        raise DataError(f"{source_root}: no such folder (where the indexed images are now)")
    if isinstance(what, inputs.InputKind):
        value = tuple(part[:limit] for part in what.queries(value))  # files are found before the index opens
    elif what in ("items", "codes"):
        value = list(value)[:limit]
    index = Index.open(target, name, mode="read", source_root=source_root)
    if what == "items":
        result, labels = item_results(index, value, k, radius), value
    else:
        query_codes, labels = _encode(index, what, value, split, limit, model, data_root)
        result = results(index, query_codes, labels, k, radius)
    if show:
        result["grid"] = str(_grid(index, result, what, value, labels, show, data_root))
    return result


def _one_query(given: dict, error=NoQuery, noun: str = "query", **fixed) -> tuple:
    """(what, value) of the one input given: what is a name of `fixed` ("items", "codes",
    "dataset") or an InputKind (given: {kind keyword: value}); `error` when there is not exactly one."""
    kinds = {inputs.by_keyword(keyword): _given(value) for keyword, value in given.items()}
    chosen = [(w, v) for w, v in [*((w, _given(v)) for w, v in fixed.items()), *kinds.items()] if v is not None]
    if len(chosen) != 1:
        words = ", ".join([*(k.keyword for k in inputs.kinds()), *(w for w in fixed if w != "dataset")])
        raise error(f"give exactly one {noun}: {words} or a data set")
    return chosen[0]


def _grid(index: Index, result: dict, what, value, labels, show, data_root):
    """The result grid: each query's own picture (its file, its stored item's source, or its data
    set row), then its hits'."""
    from .grid import safe_pixels, write_grid

    if isinstance(what, inputs.InputKind):
        pixels = [safe_pixels("", str(i)) if isinstance(i, (str, Path)) else None for i in value[0]]
    else:
        sources = {}
        if what == "items":
            ids = index.store.ids_of(index.name, list(value))
            stored = index.store.items(index.name, list(ids.values()))
            sources = {m["key"]: index.describe(m)["source"] for m in stored.values()}
        pixels = [safe_pixels(q, sources.get(q), data_root) for q in labels]
    return write_grid(result, pixels, show, data_root)


def encode(
    model,
    *,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    data_root=None,
    **given,
) -> tuple[list[str], np.ndarray]:
    """The codes a model file gives one kind of input - rows of a data set, or inputs of a
    registered kind by its keyword (`images=` files, folders, globs, bytes; `vectors=` a .npy path
    or an array) - as (a label per input, codes (n, bits/8) uint8 in FAISS bit order). limit: the
    first `limit` inputs only (a data set gives one row when limit is None)."""
    from ..hashing.methods import load_hasher

    what, value = _one_query(given, NoInput, "input", dataset=dataset)
    _check_limit(limit)
    hasher = load_hasher(model)
    if isinstance(what, inputs.InputKind):
        items, labels = (part[:limit] for part in what.queries(value))
        return labels, hasher.encode(what.inputs(hasher.spec_, items))
    from ..hashing.data import as_dataset

    data = as_dataset(dataset, split, data_root, limit=limit or 1)
    return [f"{dataset}/{split}/{i}" for i in range(len(data))], hasher.encode(data)


def _check_limit(limit: int | None) -> None:
    if whole_number(limit, "the number of queries") is not None and limit < 1:
        raise ParameterError(f"the number of queries must be positive, got {limit}")


def whole_number(value, what: str) -> int | None:
    """A count given from Python (k, a radius, a limit) as a plain int: numpy integers are taken,
    anything else that is not an int (a float, a string, a bool) is one ParameterError."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{what} must be a whole number, got {value!r}")
    return int(value)


def _given(value):
    """None for a query that is not there: None, or an empty list, string or array. A scalar is
    passed on, for its kind to refuse in one line."""
    try:
        return None if value is None or len(value) == 0 else value
    except TypeError:
        return value


def _encode(index, what, value, split, limit, model, data_root):
    """(codes, a label per query) for whichever kind of query was given."""
    if what == "codes":
        return hex_codes(value, index.bits), value
    hasher = index.model(model)
    if isinstance(what, inputs.InputKind):
        items, labels = value
        return hasher.encode(what.inputs(hasher.spec_, items)), list(labels)
    from ..hashing.data import load_dataset

    data = load_dataset(value, split=split, root=data_root).subset(limit or 1)
    return hasher.encode(data), [f"{value}/{split}/{i}" for i in range(len(data))]
