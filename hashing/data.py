"""Data sets as float tensors plus labels, with the shape and normalization a model checks later.

Named sets: mnist, fashion-mnist, cifar10 (torchvision, under a data root) and digits (scikit-learn's
bundled 8x8 digits). A path is read by the input kind that claims it (hashing/inputs/: a folder of
images, a feature matrix, ...).

Data root: the `root` argument, else $SEMHASH_DATA, else a user cache directory. torchvision
downloads there when the files are missing and the network is up. Offline, the standard raw files
are used where they are; MNIST-style `raw/*.gz` alone is extracted first (into the cache when the
root is read-only, as the shared copy is).
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
from pathlib import Path

import numpy as np

from . import inputs
from .dataset import Dataset
from .errors import DataError, DataMissing
from .files import atomic_write, cache_dir
from .inputs.images import SCALE01

NAMED = ("mnist", "fashion-mnist", "cifar10", "digits")
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
    path = Path(name).expanduser()
    kind = inputs.for_path(path) if path.exists() else None
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


# --- torchvision sets -------------------------------------------------------------------------


def _load_mnist_like(name: str, split: str, root, download: bool) -> Dataset:
    from torchvision.datasets import MNIST, FashionMNIST

    cls = MNIST if name == "mnist" else FashionMNIST
    base = data_root(root)
    load_root = _extract_gz_raw(base, cls)
    have_files = load_root is not None
    if load_root is None:
        load_root = base
    try:
        ds = cls(str(load_root), train=split == "train", download=download and not have_files)
    except (RuntimeError, OSError, ValueError, EOFError, AssertionError) as exc:
        if have_files:
            raise DataError(
                f"{name}: the raw files in {Path(load_root) / cls.__name__ / 'raw'} are corrupt "
                f"({type(exc).__name__}: {exc}); delete them and load again"
            ) from None
        raise _missing(name, base / cls.__name__ / "raw", exc, download) from None
    x = ds.data.unsqueeze(1).float().div_(255.0)  # (n, 1, 28, 28) in [0, 1]
    data = Dataset(
        name, x, ds.targets.long(), SCALE01, str(Path(ds.raw_folder)), list(ds.classes), split, kind="images"
    )
    if Path(load_root) != base:
        data.extracted_from = str(base / cls.__name__ / "raw")
    return data


def _extract_gz_raw(base: Path, cls) -> Path | None:
    """Make torchvision's raw layout usable offline: extract raw/*.gz when only they are there.

    Returns the root to load from (base, or a cache mirror when base is read-only), or None when the
    raw files are not there at all (then torchvision may download them).
    """
    raw = base / cls.__name__ / "raw"
    names = [os.path.splitext(fname)[0] for fname, _ in cls.resources]
    if all((raw / n).is_file() for n in names):
        return base
    if not all((raw / n).is_file() or (raw / (n + ".gz")).is_file() for n in names):
        return None
    target_root = base if _writable(raw) else cache_dir() / "data"
    target = target_root / cls.__name__ / "raw"
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
            shutil.copyfileobj(inp, out)

    try:
        atomic_write(dst, copy)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot extract {src}: {exc}") from None


def _load_cifar10(split: str, root, download: bool) -> Dataset:
    import torch
    from torchvision.datasets import CIFAR10

    base = data_root(root)
    try:
        ds = CIFAR10(str(base), train=split == "train", download=download)
    except (RuntimeError, OSError, ValueError, EOFError) as exc:
        raise _missing("cifar10", base / CIFAR10.base_folder, exc, download) from None
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255.0)  # (n, 3, 32, 32)
    return Dataset(
        "cifar10",
        x,
        torch.tensor(ds.targets, dtype=torch.long),
        SCALE01,
        str(base / CIFAR10.base_folder),
        list(ds.classes),
        split,
        kind="images",
    )


def _missing(name: str, where: Path, exc: Exception, download: bool) -> DataError:
    if download:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = f"not found in {where} and the download failed ({first.rstrip(':')})"
    else:
        why = f"not found in {where} (downloads are off)"
    return DataMissing(f"{name} {why}; put the files there, or point the data root (SEMHASH_DATA) at one that has them")


# --- bundled and local data ----------------------------------------------------------------------

DIGITS_TRAIN = 1500  # of scikit-learn's 1797 digits; the remaining 297 are the test split


def _load_digits(split: str) -> Dataset:
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    sl = slice(0, DIGITS_TRAIN) if split == "train" else slice(DIGITS_TRAIN, None)
    x = torch.from_numpy(d.images[sl].astype(np.float32) / 16.0).unsqueeze(1)  # (n, 1, 8, 8) in [0, 1]
    return Dataset(
        "digits",
        x,
        torch.from_numpy(d.target[sl].astype(np.int64)),
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
