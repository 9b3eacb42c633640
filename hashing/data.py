"""Data sets as float32 arrays plus labels, with the shape and normalization a model checks later.

Named sets: mnist, fashion-mnist, cifar10 (their standard files under a data root, read with numpy)
and digits (scikit-learn's bundled 8x8 digits). A path is read by the input kind that claims it
(hashing/inputs/: a folder of images, a feature matrix, ...).

Data root: the `root` argument, else $SEMHASH_DATA, else a user cache directory, in torchvision's
layout (MNIST/raw/*-ubyte, cifar-10-batches-py/). torchvision, where it is installed, downloads
there when the files are missing and the network is up. MNIST-style `raw/*.gz` alone is extracted
first (into the cache when the root is read-only, as the shared copy is).
"""

from __future__ import annotations

import gzip
import os
import pickle
import stat
from pathlib import Path

import numpy as np

from . import inputs
from .dataset import Dataset
from .errors import DataError, DataMissing, missing_extra
from .files import atomic_write, cache_dir
from .inputs.images import SCALE01

NAMED = ("mnist", "fashion-mnist", "cifar10", "digits", "20newsgroups")
NAMED_ALIASES = (*NAMED, "fashion_mnist", "fashionmnist")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $SEMHASH_DATA, else <cache>/data."""
    chosen = root or os.environ.get("SEMHASH_DATA") or cache_dir() / "data"
    return Path(chosen).expanduser()


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
    labels: str | os.PathLike | None = None,
    spec=None,
) -> Dataset:
    """Load a named data set or a path (read by the input kind that claims it) as a Dataset.
    labels: a .npy of labels for a feature file; spec: the InputSpec of the model the items are
    for (a folder's images are then converted to its input size as they are read)."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    key = name.lower()
    if labels is not None and key in NAMED_ALIASES:
        raise DataError(f"labels ({labels}) go with a feature file (.npy/.npz); {name} brings its own")
    if key in ("mnist", "fashion-mnist", "fashion_mnist", "fashionmnist"):
        return _load_mnist_like("fashion-mnist" if key.startswith("fashion") else "mnist", split, root, download)
    if key == "cifar10":
        return _load_cifar10(split, root, download)
    if key == "digits":
        return _load_digits(split)
    if key == "20newsgroups":
        from .inputs.texts import load_20newsgroups

        return load_20newsgroups(split, data_root(root), download, spec)
    path = Path(name).expanduser()
    kind = inputs.for_path(path) if path.exists() or name == "-" else None  # -: standard input
    if kind is not None:
        return kind.load(path, labels=labels, spec=spec)
    readable = "; ".join(k.source_help.rstrip(".").lower() for k in inputs.kinds())
    if path.exists():
        raise DataError(f"{name}: not a data set semhash reads ({readable})")
    raise DataError(f"unknown data set {name!r}: use one of {', '.join(NAMED)}, or a path ({readable})")


def as_dataset(data, split: str = "train", root=None, labels=None, limit: int | None = None, spec=None) -> Dataset:
    """A Dataset as given, or the one a name or path names (as load_dataset takes them); only its
    first `limit` items when limit is given."""
    if not isinstance(data, Dataset):
        data = load_dataset(str(data), split=split, root=root, labels=labels, spec=spec)
    if limit is not None:
        if limit < 1:
            raise DataError(f"the item limit must be positive, got {limit}")
        data = data.subset(limit)
    return data


# --- MNIST, Fashion-MNIST, CIFAR-10: their standard files, read with numpy ------------------------

_NUMBERS = [f"{i} - {w}" for i, w in enumerate("zero one two three four five six seven eight nine".split())]
# torchvision's layout and names (so a data root it filled, and models trained on it, stay valid)
MNIST_LIKE = {
    "mnist": ("MNIST", _NUMBERS),
    "fashion-mnist": (
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
RAW_BYTES = 256 << 20  # the largest raw file read or extracted (MNIST's training images: 47 MB)
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _load_mnist_like(name: str, split: str, root, download: bool) -> Dataset:
    folder, classes = MNIST_LIKE[name]
    base = data_root(root)
    load_root = _extract_gz_raw(base, folder)
    if load_root is None:
        load_root = _download(name, base, split, download, base / folder / "raw")
    raw = load_root / folder / "raw"
    images, labels = (raw / f for f in IDX_FILES[split])
    try:
        pixels, y = _read_idx(images, ndim=3), _read_idx(labels, ndim=1)
        if len(pixels) != len(y):
            raise ValueError(f"{len(pixels)} images but {len(y)} labels")
    except (OSError, ValueError) as exc:
        raise DataError(f"{name}: the raw files in {raw} are corrupt ({exc}); delete them and load again") from None
    x = pixels[:, None].astype(np.float32) / np.float32(255.0)  # (n, 1, 28, 28) in [0, 1], as torchvision's
    data = Dataset(name, x, y.astype(np.int64), SCALE01, str(raw), list(classes), split, kind="images")
    if load_root != base:
        data.extracted_from = str(base / folder / "raw")
    return data


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format: a big-endian header, then the values) of
    `ndim` dimensions, checked against its header's size before its values are read."""
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
        if len(head) < 4 + 4 * ndim or head[:4] != bytes([0, 0, 8, ndim]):
            raise ValueError(f"{path.name} is not an IDX file of {ndim}-d unsigned bytes")
        shape = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        size = int(np.prod(shape))
        if size > RAW_BYTES or os.fstat(f.fileno()).st_size != len(head) + size:
            raise ValueError(f"{path.name} does not hold the {shape} values its header announces")
        return np.frombuffer(f.read(size), dtype=np.uint8).reshape(shape)


def _extract_gz_raw(base: Path, folder: str) -> Path | None:
    """Make the raw layout readable: extract raw/*.gz when only they are there.

    Returns the root to load from (base, or a cache mirror when base is read-only), or None when the
    raw files are not there at all (then they may be downloaded).
    """
    raw = base / folder / "raw"
    names = [n for pair in IDX_FILES.values() for n in pair]
    if all((raw / n).is_file() for n in names):
        return base
    if not all((raw / n).is_file() or (raw / (n + ".gz")).is_file() for n in names):
        return None
    target_root = base if _writable(raw) else cache_dir() / "data"
    target = target_root / folder / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (target / n).is_file():
            continue
        src = raw / n if (raw / n).is_file() else raw / (n + ".gz")
        _atomic_copy(src, target / n, gunzip=src.suffix == ".gz")
    return target_root


def _writable(folder: Path) -> bool:
    """Writable for us and not marked read-only (root may write anywhere, but should not there)."""
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & stat.S_IWUSR)


def _atomic_copy(src: Path, dst: Path, gunzip: bool) -> None:
    def copy(tmp: str) -> None:
        with open(tmp, "wb") as out, gzip.open(src, "rb") if gunzip else open(src, "rb") as inp:
            while chunk := inp.read(1 << 20):
                if out.tell() + len(chunk) > RAW_BYTES:  # a gzip bomb stops here, not at a full disk
                    raise OSError(f"more than {RAW_BYTES >> 20} MiB")
                out.write(chunk)

    try:
        atomic_write(dst, copy)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot extract {src}: {exc}") from None


def _download(name: str, base: Path, split: str, download: bool, where: Path) -> Path:
    """Fetch a named set's files into the data root with torchvision (the one thing it is used
    for); the root they are under. DataMissing when offline or off; NeedsExtra without torchvision."""
    if not download:
        raise _missing(name, where, None, download)
    try:
        from torchvision import datasets
    except ImportError as exc:
        raise missing_extra(exc) or exc from None
    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]
    try:
        cls(str(base), train=split == "train", download=True)
    except (RuntimeError, OSError, ValueError, EOFError, AssertionError) as exc:
        raise _missing(name, where, exc, download) from None
    return base


def _load_cifar10(split: str, root, download: bool) -> Dataset:
    base = data_root(root)
    folder = base / CIFAR_FOLDER
    if not all((folder / f).is_file() for f in (*CIFAR_BATCHES[split], "batches.meta")):
        _download("cifar10", base, split, download, folder)
    try:
        batches = [_read_pickle(folder / f) for f in CIFAR_BATCHES[split]]
        classes = [str(c) for c in _read_pickle(folder / "batches.meta")["label_names"]]
        pixels = np.concatenate([np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for b in batches])
        y = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"cifar10: the files in {folder} are corrupt ({exc}); delete them and load again") from None
    x = pixels.astype(np.float32) / np.float32(255.0)  # (n, 3, 32, 32) in [0, 1]
    return Dataset("cifar10", x, y, SCALE01, str(folder), classes, split, kind="images")


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's python batches hold dicts of lists, strings and numpy arrays: nothing else is
    rebuilt, so a planted file cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR-10 batch")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict:
    """One CIFAR-10 python batch (or its meta file), its size checked before it is read."""
    if path.stat().st_size > RAW_BYTES:
        raise ValueError(f"{path.name} is larger than {RAW_BYTES >> 20} MiB")
    with open(path, "rb") as f:
        out = _ArraysOnly(f, encoding="latin1").load()
    if not isinstance(out, dict):
        raise ValueError(f"{path.name} is not a CIFAR-10 batch")
    return out


def _missing(name: str, where: Path, exc: Exception | None, download: bool) -> DataError:
    if download:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = f"not found in {where} and the download failed ({first.rstrip(':')})"
    else:
        why = f"not found in {where} (downloads are off)"
    return DataMissing(f"{name} {why}; put the files there, or point the data root (SEMHASH_DATA) at one that has them")


# --- bundled and local data ----------------------------------------------------------------------

DIGITS_TRAIN = 1500  # of scikit-learn's 1797 digits; the remaining 297 are the test split


def _load_digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    sl = slice(0, DIGITS_TRAIN) if split == "train" else slice(DIGITS_TRAIN, None)
    x = (d.images[sl].astype(np.float32) / 16.0)[:, None]  # (n, 1, 8, 8) in [0, 1]
    return Dataset(
        "digits",
        x,
        d.target[sl].astype(np.int64),
        "pixels/16 -> [0, 1]",
        "sklearn.datasets.load_digits",
        [str(i) for i in range(10)],
        split,
        kind="images",
    )


def item_keys(data: Dataset) -> list[str]:
    """Stable external keys of a data set's items: their own where the input names them (a keys
    file, a `key` column); '<folder name>/<path within it>' for image folders (the same wherever
    the folder lies or the command runs); else '<name>/<split>/<row>' (read back by parse_item_key)."""
    if data.keys is not None:
        return list(data.keys)
    if data.files:
        return folder_keys(data.source, data.files)
    prefix = f"{data.name}/{data.split}" if data.split else data.name
    return [f"{prefix}/{i}" for i in range(len(data))]


def folder_keys(folder: str | os.PathLike, files: list) -> list[str]:
    """'<folder name>/<path within it>' of each file, '/'-separated: keys that stay the same
    wherever the folder lies or the command runs. Paths are made absolute without following
    links: a linked file stays where the folder has it."""
    root = os.path.abspath(folder)
    return [f"{Path(root).name}/{Path(os.path.relpath(os.path.abspath(f), root)).as_posix()}" for f in files]


def parse_item_key(key: str) -> tuple[str, str, int] | None:
    """(name, split, row) of a key item_keys made for a row of a named data set, else None."""
    parts = key.split("/")
    if (
        len(parts) == 3
        and parts[0] in NAMED
        and parts[1] in ("train", "test")
        and parts[2].isascii()
        and parts[2].isdigit()
    ):
        return parts[0], parts[1], int(parts[2])
    return None
