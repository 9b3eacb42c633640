"""Feature vectors - a user's own embeddings - with their own keys, labels and metadata:

  items.npy                    (n, d) numbers, one item a row (keys '<stem>/<row>')
  items.npz                    `x` (n, d), optional `y` or `labels`, optional `keys` (n,) strings
  items.jsonl / .csv / .tsv    a row an item: `vector` (a list of numbers; in CSV, JSON or
                               space-separated), optional `key` and `label` (an integer, or a
                               class name), every other field kept as the item's metadata
  folder/                      .npy shards (n_i, d), read in name order, in parts; optional
                               keys.txt (one a line) or keys.npy, labels.npy, meta.jsonl (an object a line)

and query vectors (a .npy file, an array, or lists of numbers from a request).

A vector query is accepted by any model whose input has as many values (an image model's pixels
too), so that stored items can be looked up by the exact inputs they were encoded from.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from ..errors import DataError
from .base import InputKind, first_row, read_rows

IDENTITY = "none (features as given)"  # the normalization of feature vectors
ROWS = (".jsonl", ".csv", ".tsv")  # lists of rows, a `vector` column in each
SUFFIXES = (".npy", ".npz", *ROWS)
SIDE_FILES = {"keys.npy", "labels.npy"}  # beside the shards of a folder, not shards themselves
MAX_ROWS_FILE = 2 << 30  # bytes of a .jsonl/.csv of vectors (read whole; shards stream)


class Features(InputKind):
    name = "features"
    keyword = "vectors"
    flag = "--vector"
    help = "Query with vectors from a .npy file, one a row."
    repeat = False
    source_flag = "--features"
    source_help = "A .npy/.npz feature matrix, one item a row."

    def reads(self, path: Path) -> bool:
        if path.is_dir():
            return any(_shards(path))
        if path.suffix.lower() in ROWS:  # a list of rows is features when it has a `vector` column
            return path.is_file() and "vector" in first_row(path)
        return path.suffix.lower() in SUFFIXES

    def load(self, path: Path, labels: Path | None = None, spec=None) -> Dataset:
        if path.is_dir():
            return load_shards(path, labels, in_parts=spec is not None)
        if path.suffix.lower() in ROWS:
            if labels is not None:
                raise DataError(f"labels ({labels}) go with a .npy; the rows of {path.name} bring their own")
            return load_rows(path)
        return load_features(path, labels)

    def queries(self, given) -> tuple[np.ndarray, list[str]]:
        if isinstance(given, (str, Path)):
            x = read_arrays(Path(given))["x"]
            x = x[None] if x.ndim == 1 else x
            return x, [f"{given}[{i}]" for i in range(len(x))]
        x = as_vectors(given, "vectors")
        return x, [f"vector {i}" for i in range(len(x))]

    def inputs(self, spec, items, names: list[str] | None = None) -> np.ndarray:
        x = as_vectors(items, names if isinstance(names, str) else "vectors", int(np.prod(spec.shape)))
        return x.astype(np.float32).reshape(len(x), *spec.shape)

    def verifier(self):
        from ..signatures import FEATURES

        return FEATURES

    def save_item(self, data: Dataset, i: int, path: Path) -> Path:
        from ..files import atomic_write

        if not 0 <= i < len(data):
            raise DataError(f"{data.name} has {len(data)} items; there is no item {i}")
        row = data.x[i].reshape(-1)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, row)

        return atomic_write(path, write)


def as_vectors(x, what: str, d: int | None = None) -> np.ndarray:
    """One vector (d,) or several (n, d) - an array or lists of numbers - checked -> (n, d).
    `what` names them in errors (a file, a request); d: the values each must have."""
    if d:
        wrong = f"{what}: vectors must have {d} values each (the model's input size)"
    else:
        wrong = f"{what}: expected one vector (d,) or several (n, d)"
    if isinstance(x, list) and len({len(v) if isinstance(v, (list, tuple)) else -1 for v in x}) > 1:
        raise DataError(f"{wrong}, got rows of different lengths")
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or (d is not None and x.shape[1] != d):
        raise DataError(f"{wrong}, got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{what}: no vectors")
    if np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{what}: vectors must be real numbers, got {x.dtype}")
    if not np.isfinite(x).all() or np.abs(x).max(initial=0) > np.finfo(np.float32).max:
        raise DataError(f"{what}: vectors must be finite numbers")
    return x


def load_features(path: str | Path, labels: str | Path | None = None) -> Dataset:
    """A feature matrix: .npy (n, d), or .npz with `x` (and optional `y`); labels: optional .npy (n,)."""
    path = Path(path)
    arrays = read_arrays(path)
    x = arrays.get("x", arrays.get("X", arrays.get("features")))
    if x is None:
        raise DataError(f"{path}: an .npz needs an array named 'x' (found {', '.join(arrays) or 'none'})")
    y = arrays.get("y", arrays.get("labels"))
    if labels is not None:
        y = read_arrays(Path(labels)).get("x")
    if x.ndim != 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise DataError(f"{path}: features must be a non-empty numeric (n, d) matrix, got {x.dtype} {x.shape}")
    xt = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(xt).all():
        raise DataError(f"{path}: features contain NaN or infinite values")
    yt, classes = _labels(y, len(x))
    keys = _keys(arrays.get("keys"), len(x), path)
    return Dataset(path.stem, xt, yt, IDENTITY, str(path), classes, kind=Features.name, keys=keys)


def _labels(y, n: int) -> tuple[np.ndarray | None, list[str] | None]:
    """(labels (n,) int64, class names) from integers, or from class names (numbered in sorted order)."""
    if y is None:
        return None, None
    y = np.asarray(y)
    if y.shape != (n,):
        raise DataError(f"labels must be integers or class names of shape ({n},), got {y.dtype} {y.shape}")
    if y.dtype.kind in "US":
        classes, numbers = np.unique(y.astype(str), return_inverse=True)
        return numbers.astype(np.int64).reshape(n), classes.tolist()
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integers or class names, got {y.dtype}")
    return y.astype(np.int64), None


def _keys(keys, n: int, where: Path) -> list[str] | None:
    """Own keys, one a row and all different (checked here, so a build refuses them before writing)."""
    if keys is None:
        return None
    keys = [str(k) for k in np.asarray(keys).tolist()]
    if len(keys) != n:
        raise DataError(f"{where}: {len(keys):,} keys for {n:,} rows")
    if len(set(keys)) != n:
        seen = set()
        twice = next(k for k in keys if k in seen or seen.add(k))
        raise DataError(f"{where}: the key {twice!r} names two rows")
    return keys


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy ({"x": it}) or .npz file, never unpickling; DataError if unreadable."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npy/.npz file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return {"x": loaded}
    try:
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def load_rows(path: Path) -> Dataset:
    """A .jsonl, .csv or .tsv of items, a row each: `vector`, optional `key` and `label`, and the
    rest of the row as the item's metadata."""
    if path.stat().st_size > MAX_ROWS_FILE:
        raise DataError(f"{path}: {path.stat().st_size >> 20:,} MiB of rows; put vectors that large in .npy shards")
    rows = list(read_rows(path))
    if not rows:
        raise DataError(f"{path}: no rows")
    x = as_vectors([_vector(r.pop("vector", None), path, i) for i, r in enumerate(rows)], str(path))
    named = [r.pop("key", None) for r in rows]
    keys = [f"{path.stem}/{i}" if k in (None, "") else str(k) for i, k in enumerate(named)]
    given = [r.pop("label", None) for r in rows]
    labels = None
    if any(v not in (None, "") for v in given):
        if any(v in (None, "") for v in given):
            raise DataError(f"{path}: some rows have a label and some do not")
        labels = np.array([_label(v) for v in given])
    y, classes = _labels(labels, len(x)) if labels is not None else (None, None)
    xt = np.ascontiguousarray(x, dtype=np.float32)
    data = Dataset(path.stem, xt, y, IDENTITY, str(path), classes, kind=Features.name, keys=_keys(keys, len(x), path))
    data.metas = [r or None for r in rows]
    return data


def _vector(value, path: Path, row: int) -> list:
    """A row's vector: a list of numbers, or text of them (JSON, or separated by spaces or commas)."""
    import json

    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [float(v) for v in text.replace(",", " ").split()]
        except ValueError:
            raise DataError(f"{path}, row {row}: the vector is not a list of numbers") from None
    if not isinstance(value, list) or not value:
        raise DataError(f"{path}, row {row}: every row needs a `vector` (a list of numbers)")
    return value


def _label(value):
    """A label as given: an integer (also written as text), else a class name."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.npy") if p.name not in SIDE_FILES)


def load_shards(folder: Path, labels: Path | None = None, in_parts: bool = False) -> Dataset:
    """A folder of .npy shards (n_i, d) with optional keys.txt / keys.npy, labels.npy and
    meta.jsonl beside them. in_parts: the shards are read when their rows are (Dataset.read), a part
    at a time, so memory stays flat in their size; else all now."""
    shards = _shards(folder)
    sizes = [_shard_shape(s) for s in shards]
    if len({d for _, d in sizes}) != 1:
        raise DataError(f"{folder}: shards of different widths ({', '.join(str(d) for _, d in sizes)})")
    n, d = sum(m for m, _ in sizes), sizes[0][1]
    keys = _folder_keys(folder, shards, sizes)
    y = read_arrays(labels or folder / "labels.npy")["x"] if (labels or (folder / "labels.npy").is_file()) else None
    yt, classes = _labels(y, n)
    reader = ShardReader(shards, [m for m, _ in sizes])
    data = Dataset(folder.name, None, yt, IDENTITY, str(folder), classes, kind=Features.name, keys=keys)
    data.item_shape, data.reader, data.metas = (d,), reader, _metas(folder / "meta.jsonl", n)
    if not in_parts:
        data.x, data.reader = reader(np.arange(n))[0], None
    return data


def _shard_shape(path: Path) -> tuple[int, int]:
    """(rows, width) of a .npy shard, from its header alone (a memory map reads no rows); numbers only."""
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    shape, dtype = mm.shape, mm.dtype
    del mm
    if len(shape) != 2 or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise DataError(f"{path}: shards must be numeric (n, d) matrices, got {dtype} {shape}")
    return shape


def _folder_keys(folder: Path, shards: list[Path], sizes) -> list[str]:
    n = sum(m for m, _ in sizes)
    if (folder / "keys.txt").is_file():
        with open(folder / "keys.txt", encoding="utf-8") as f:
            return _keys([line.rstrip("\n") for line in f], n, folder / "keys.txt")
    if (folder / "keys.npy").is_file():
        return _keys(read_arrays(folder / "keys.npy")["x"], n, folder / "keys.npy")
    return [f"{folder.name}/{s.stem}/{i}" for s, (m, _) in zip(shards, sizes) for i in range(m)]


def _metas(path: Path, n: int) -> list[dict | None] | None:
    """meta.jsonl: one JSON object a line ({} for none), one line an item."""
    if not path.is_file():
        return None
    rows = []
    for row in read_rows(path) if path.stat().st_size else []:
        rows.append(row or None)
    if len(rows) != n:
        raise DataError(f"{path}: {len(rows):,} lines of metadata for {n:,} items")
    return rows


class ShardReader:
    """Rows of .npy shards by global row number, read from the files part by part (each part
    copied out of a memory map that is closed after it, so only the part stays in memory)."""

    def __init__(self, shards: list[Path], sizes: list[int]):
        self.shards, self.starts = shards, np.concatenate([[0], np.cumsum(sizes)])

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rows (m,) ascending runs -> (x (m, d) float32, all True)."""
        rows = np.asarray(rows, dtype=np.int64)
        out, which = [], np.searchsorted(self.starts, rows, side="right") - 1
        for shard in np.unique(which):
            mm = np.load(self.shards[shard], mmap_mode="r", allow_pickle=False)
            local = rows[which == shard] - self.starts[shard]
            out.append(np.asarray(mm[local], dtype=np.float32))
            del mm
        x = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{self.shards[0].parent}: the shards hold NaN or infinite values")
        return x, np.ones(len(rows), dtype=bool)
