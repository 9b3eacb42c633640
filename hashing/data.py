"""Data sets as float tensors plus labels, with the shape and normalization a model checks later.

Named sets: mnist, fashion-mnist, cifar10 (torchvision, under a data root) and digits (scikit-learn's
bundled 8x8 digits). Paths: a folder of images (class = sub-folder name) or a feature matrix
(.npy, or .npz with arrays `x` and optionally `y`).

Data root: the `root` argument, else $SEMHASH_DATA, else a user cache directory. torchvision
downloads there when the files are missing and the network is up. Offline, the standard raw files
are used where they are; MNIST-style `raw/*.gz` alone is extracted first (into the cache when the
root is read-only, as the shared copy is).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .errors import DataError, DataMissing
from .files import atomic_write, cache_dir
from .hasher import FEATURES, IDENTITY, IMAGE_SUFFIXES, IMAGES, image_array, kind_of, open_image

NAMED = ("mnist", "fashion-mnist", "cifar10", "digits")
SCALE01 = "pixels/255 -> [0, 1]"


@dataclass
class Dataset:
    """x: (n, *shape) float32; labels: (n,) int64 or None; classes[label] names a label."""

    name: str
    x: torch.Tensor
    labels: torch.Tensor | None
    normalization: str
    source: str
    classes: list[str] | None = None
    split: str | None = None
    files: list[str] | None = field(default=None, repr=False)  # image folders: the file of each item
    extracted_from: str | None = None  # where gzip-only raw files were extracted from
    _fingerprint: str | None = field(default=None, repr=False)
    kind: str = ""  # "images" (pixels in [0, 1], (C, H, W)) or "features"; default: from the normalization

    def __post_init__(self):
        if not self.kind:
            self.kind = kind_of(self.normalization)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one item, e.g. (1, 28, 28) for MNIST or (d,) for features."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    @property
    def fingerprint(self) -> str:
        """Content hash of x and labels, so a model can name the data it was trained on."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(str(tuple(self.x.shape)).encode())
            h.update(self.x.contiguous().numpy())  # the buffer itself: no copy
            if self.labels is not None:
                h.update(self.labels.contiguous().numpy())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def flat(self) -> np.ndarray:
        """(n, prod(shape)) float32 numpy view: each item as one vector."""
        return self.x.reshape(len(self.x), -1).numpy()

    def subset(self, stop: int | None = None, start: int = 0) -> Dataset:
        cut = lambda v: None if v is None else v[start:stop]  # noqa: E731
        return replace(self, x=self.x[start:stop], labels=cut(self.labels), files=cut(self.files), _fingerprint=None)

    def take(self, rows: np.ndarray) -> Dataset:
        """The items at these row numbers (m,) int, in this order (a copy)."""
        rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        labels = None if self.labels is None else self.labels[rows]
        files = None if self.files is None else [self.files[i] for i in rows.tolist()]
        return replace(self, x=self.x[rows], labels=labels, files=files, _fingerprint=None)


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
) -> Dataset:
    """Load a named data set or a path (image folder, .npy/.npz features) as a Dataset."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    key = name.lower()
    if labels is not None and Path(name).suffix.lower() not in (".npy", ".npz"):
        raise DataError(f"labels ({labels}) go with a feature file (.npy/.npz); {name} brings its own")
    if key in ("mnist", "fashion-mnist", "fashion_mnist", "fashionmnist"):
        return _load_mnist_like("fashion-mnist" if key.startswith("fashion") else "mnist", split, root, download)
    if key == "cifar10":
        return _load_cifar10(split, root, download)
    if key == "digits":
        return _load_digits(split)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_image_folder(path)
    if path.suffix.lower() in (".npy", ".npz"):
        return load_features(path, labels)
    if path.exists():
        raise DataError(f"{name}: not a data set semhash reads (a folder of images, .npy or .npz)")
    raise DataError(f"unknown data set {name!r}: use one of {', '.join(NAMED)}, an image folder, or a .npy/.npz file")


def as_dataset(data, split: str = "train", root=None, labels=None, limit: int | None = None) -> Dataset:
    """A Dataset as given, or the one a name or path names (as load_dataset takes them); only its
    first `limit` items when limit is given."""
    if not isinstance(data, Dataset):
        data = load_dataset(str(data), split=split, root=root, labels=labels)
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
    data = Dataset(name, x, ds.targets.long(), SCALE01, str(Path(ds.raw_folder)), list(ds.classes), split)
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
    )


def load_features(path: str | os.PathLike, labels: str | os.PathLike | None = None) -> Dataset:
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
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not torch.isfinite(xt).all():
        raise DataError(f"{path}: features contain NaN or infinite values")
    yt = None
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"labels must be integers of shape ({len(x)},), got {y.dtype} {y.shape}")
        yt = torch.from_numpy(y.astype(np.int64))
    return Dataset(path.stem, xt, yt, IDENTITY, str(path), kind=FEATURES)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
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


def load_image_folder(
    path: str | os.PathLike, size: tuple[int, int] | None = None, grey: bool | None = None
) -> Dataset:
    """Images under a folder; class = sub-folder name when there are sub-folders, else no labels.

    size: (height, width) every image is resized to (default: the first image's size);
    grey: convert to one channel (default: only when every image is grey).
    """

    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{path}: no images (.png, .jpg, ...) found")
    classes = sorted({p.parent.relative_to(path).parts[0] for p in files if p.parent != path})
    if classes and any(p.parent == path for p in files):
        raise DataError(f"{path}: images both at the top and in class sub-folders; put every image in a class folder")
    images = [open_image(p) for p in files]
    if grey is None:
        grey = all(im.mode in ("L", "1", "I;16", "I") for im in images)
    if size is None:
        size = (images[0].height, images[0].width)
    x = torch.stack([image_to_tensor(im, size, grey) for im in images])
    labels = None
    if classes:
        index = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([index[p.parent.relative_to(path).parts[0]] for p in files], dtype=torch.long)
    return Dataset(path.name, x, labels, SCALE01, str(path), classes or None, files=[str(p) for p in files])


def image_to_tensor(im, size: tuple[int, int], grey: bool) -> torch.Tensor:
    """PIL image -> (C, H, W) float32 tensor in [0, 1], resized to size=(H, W)."""
    return torch.from_numpy(image_array(im, size, grey))


def item_keys(data: Dataset) -> list[str]:
    """Stable external keys of a data set's items: '<folder name>/<path within it>' for image
    folders (the same wherever the folder lies or the command runs), else '<name>/<split>/<row>'
    (read back by parse_item_key)."""
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


def describe(ds: Dataset) -> dict:
    """A summary for people and scripts: size, shape, classes, normalization, source."""
    counts = None
    if ds.labels is not None:
        values, n = torch.unique(ds.labels, return_counts=True)
        counts = {int(v): int(c) for v, c in zip(values, n)}
    return {
        "name": ds.name,
        "split": ds.split,
        "items": len(ds),
        "shape": list(ds.shape),
        "classes": list(ds.classes or ([] if counts is None else map(str, counts))),
        "class_counts": list(counts.values()) if counts else [],
        "normalization": ds.normalization,
        "source": ds.source,
        **({"extracted_from": ds.extracted_from} if ds.extracted_from else {}),
    }


def save_image(ds: Dataset, i: int, path: str | os.PathLike) -> Path:
    """Write item i of an image data set as a PNG (atomically), e.g. to query with it."""
    from PIL import Image

    if len(ds.shape) != 3 or ds.shape[0] not in (1, 3) or ds.kind != IMAGES:
        raise DataError(f"{ds.name} holds no images (items of shape {ds.shape})")
    if not 0 <= i < len(ds):
        raise DataError(f"{ds.name} has {len(ds)} items; there is no item {i}")
    pixels = (ds.x[i].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
