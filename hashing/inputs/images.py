"""Images: folders of image files (class = sub-folder), query images (files, folders, globs,
uploaded bytes), and their pictures for result grids and thumbnails.

Every decode is bounded before it starts: files by bytes, images by the pixels their header
declares; JPEGs are decoded reduced (PIL's draft) when a smaller size is wanted, and EXIF
orientation is applied, so a phone photo looks the way its owner saw it.
"""

from __future__ import annotations

import glob
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from ..errors import DataError, NotImages
from ..files import atomic_write
from .base import InputKind, first_row, read_rows

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}  # files read as images
SCALE01 = "pixels/255 -> [0, 1]"
GREY_MODES = ("L", "1", "I;16", "I;16B", "I;16L", "I")
MAX_BYTES = 10 << 20  # a query or uploaded image file
# Pixels an image may declare before it is decoded: 2048 x 2048, or 1,024 times the model's
# input, whichever is larger, and never over 64M (a 13,000 x 13,000 PNG of 164 KB would
# otherwise decode to 500 MB of pixels before anything could refuse it).
MIN_PIXEL_LIMIT, PIXELS_PER_INPUT_PIXEL, MAX_PIXEL_LIMIT = 2048 * 2048, 1024, 64 << 20
PREVIEW_SIZE = 256  # longest side of a picture for a grid cell or a thumbnail
MANIFESTS = (".csv", ".tsv", ".jsonl")  # a list of images: a `path` column, optional `key`, `label`, metadata


class Images(InputKind):
    name = "images"
    keyword = "images"
    flag = "--image"
    help = "Query with images: a file, a folder, a glob, or - (standard input: an image, or paths a line). Repeat it."
    source_flag = "--images"
    source_help = "A folder of images (sub-folders name the classes)."
    decoder = "sigmoid"

    def reads(self, path: Path) -> bool:
        if path.is_dir():
            return any(p.suffix.lower() in SUFFIXES for p in path.rglob("*"))
        return path.suffix.lower() in MANIFESTS and path.is_file() and _is_manifest(path)

    def load(self, path: Path, labels: Path | None = None, spec=None) -> Dataset:
        if labels is not None:
            raise DataError(f"labels ({labels}) go with a feature file (.npy/.npz); {path} brings its own")
        shape = None if spec is None else tuple(spec.shape)
        return load_manifest(path, shape) if path.is_file() else load_folder(path, shape)

    def queries(self, given) -> tuple[list, list[str]]:
        given = given if isinstance(given, (list, tuple)) else [given]
        if sum(g == "-" for g in given) > 1:
            raise DataError("- reads standard input once: give it once")
        items = expand([part for g in given for part in (from_stdin(MAX_BYTES) if g == "-" else [g])])
        return items, [str(i) if isinstance(i, (str, Path)) else "stdin" for i in items]

    def inputs(self, spec, items, names: list[str] | None = None) -> np.ndarray:
        names = names or [str(i) if isinstance(i, (str, Path)) else "the upload" for i in items]
        size, grey = model_size(spec)
        limit = pixel_limit(spec.shape)
        return np.stack([to_array(open_image(i, n, MAX_BYTES, limit, size), size, grey) for i, n in zip(items, names)])

    def preview(self, source: str) -> np.ndarray | None:
        if not (source and os.path.isfile(source) and Path(source).suffix.lower() in SUFFIXES):
            return None
        im = open_image(Path(source), max_pixels=MAX_PIXEL_LIMIT, size=(PREVIEW_SIZE, PREVIEW_SIZE))
        im.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0

    def picture(self, x: np.ndarray) -> np.ndarray | None:
        a = np.asarray(x, dtype=np.float32)
        return a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))

    def save_item(self, data: Dataset, i: int, path: Path) -> Path:
        return save_image(data, i, path)

    def verifier(self):
        from ..signatures.images import IMAGES

        return IMAGES


def from_stdin(max_bytes: int) -> list:
    """What standard input holds: one image's bytes, or else one path a line (as `ls | ...` gives);
    refused past max_bytes before more is read."""
    import sys

    data = sys.stdin.buffer.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"standard input: limited to {max_bytes >> 20} MiB")
    if _is_image(data):
        return [data]
    try:
        paths = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return [data]  # neither an image PIL knows nor text: its error names it as an image
    return paths or [data]


def _is_image(data: bytes) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def model_size(spec) -> tuple[tuple[int, int], bool]:
    """((height, width), grey) of a model's image inputs; NotImages for a model of other inputs."""
    if spec.kind != Images.name or len(spec.shape) != 3:
        raise NotImages(
            f"this model was trained on {spec.normalization!r} data of shape {tuple(spec.shape)}, not images"
        )
    channels, height, width = spec.shape
    if channels not in (1, 3):
        raise DataError(f"the model takes {channels}-channel inputs; only grey (1) or RGB (3) images convert")
    return (height, width), channels == 1


def pixel_limit(input_shape: tuple[int, ...]) -> int:
    """Most pixels a query image may have, for a model whose items have this shape."""
    per_item = int(np.prod(input_shape[-2:])) if len(input_shape) >= 2 else 0
    return min(MAX_PIXEL_LIMIT, max(MIN_PIXEL_LIMIT, PIXELS_PER_INPUT_PIXEL * per_item))


def expand(images: list) -> list:
    """Image queries as given: a file, a folder (every image in it, sorted), a glob pattern, or
    bytes (an upload, standard input) -> the files and bytes to encode, in order."""
    out = []
    for item in images:
        path = Path(item) if isinstance(item, (str, Path)) else None
        if path is not None and path.is_dir():
            out += image_files(path)
        elif path is not None and not path.exists() and any(c in str(item) for c in "*?["):
            matches = sorted(glob.glob(str(item)))
            if not matches:
                raise DataError(f"{item}: no file matches")
            out += matches
        elif path is not None or isinstance(item, (bytes, bytearray)) or hasattr(item, "read"):
            out.append(item)
        else:
            raise DataError(f"an image query is a path, a folder, a glob or bytes, not {type(item).__name__}")
    if not out:
        raise DataError("no images among the queries given")
    return out


def image_files(folder: Path) -> list[Path]:
    """Every image file under a folder, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def to_array(image, size: tuple[int, int], grey: bool) -> np.ndarray:
    """PIL image -> (C, H, W) float32 in [0, 1], resized to size=(H, W). 16- and 32-bit grey
    images are scaled by their own range (65535), not clipped at 255."""
    a = np.asarray(_converted(image, size, grey), dtype=np.float32) / 255.0
    return a[None] if grey else np.ascontiguousarray(a.transpose(2, 0, 1))


def _converted(image, size: tuple[int, int], grey: bool):
    """A PIL image in grey (L) or RGB at size=(H, W), as every model input is made."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float32) / 65535.0
        image = Image.fromarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    image = image.convert("L" if grey else "RGB")
    if (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=None)
    return image


def open_image(
    source,
    name: str | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    size: tuple[int, int] | None = None,
):
    """A fully read PIL image from a path, bytes or a binary file object, turned upright by its
    EXIF orientation. Files over max_bytes and images that declare more than max_pixels are refused
    before any pixel is decoded; size=(H, W): a JPEG is decoded reduced to no less than it. Anything
    unreadable (or past PIL's decompression-bomb limit) is one DataError naming the image."""
    from PIL import Image, UnidentifiedImageError

    name = name or str(source)
    if isinstance(source, (bytes, bytearray)):
        nbytes, source = len(source), io.BytesIO(source)
    else:
        nbytes = os.path.getsize(source) if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) else 0
    if max_bytes is not None and nbytes > max_bytes:
        raise DataError(f"{name}: images are limited to {max_bytes >> 20} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below answers it
            return _read(Image.open(source), name, max_pixels, size)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: not a readable image ({exc})") from None


def _read(opened, name: str, max_pixels: int | None, size: tuple[int, int] | None):
    from PIL import ImageOps

    with opened as im:
        if max_pixels is not None and im.width * im.height > max_pixels:
            raise DataError(f"{name}: {im.width}x{im.height} pixels is more than the {max_pixels:,} accepted")
        if size is not None and im.format == "JPEG":
            # draft wants (width, height); a rotated photo's sides swap, so ask for the larger both ways
            side = max(size)
            im.draft(im.mode, (side, side))
        im.load()
        return ImageOps.exif_transpose(im)


def load_folder(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> Dataset:
    """Images under a folder; class = sub-folder name when there are sub-folders, else no labels.

    shape: (C, H, W) of the model the items are for: the data set is then read in parts, each file
    decoded straight to that size by worker processes when it is read (Dataset.read), unreadable
    files left out. Without it (training): every image decoded now, at the first image's size,
    grey only when every image is grey."""
    path = Path(path)
    files = image_files(path)
    if not files:
        raise DataError(f"{path}: no images (.png, .jpg, ...) found")
    classes = sorted({p.parent.relative_to(path).parts[0] for p in files if p.parent != path})
    if classes and any(p.parent == path for p in files):
        raise DataError(f"{path}: images both at the top and in class sub-folders; put every image in a class folder")
    labels = None
    if classes:
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[p.parent.relative_to(path).parts[0]] for p in files], dtype=np.int64)
    names = [str(p) for p in files]
    data = Dataset(path.name, None, labels, SCALE01, str(path), classes or None, files=names, kind=Images.name)
    return _with_reader(data, files, shape)


def load_manifest(path: Path, shape: tuple[int, ...] | None = None) -> Dataset:
    """Images a .csv, .tsv or .jsonl lists, a row each: `path` (relative to the list's folder, or
    absolute), optional `key` (default: '<list name>/<path>'), `label` (an integer or a class name),
    and every other field kept as the item's metadata. Read as load_folder reads a folder."""
    rows = list(read_rows(path))
    if not rows or any(not r.get("path") for r in rows):
        raise DataError(f"{path}: every row of an image list needs a `path`")
    base = path.parent
    files = [str(base / r.pop("path")) for r in rows]
    keys = [str(r.pop("key", "") or f"{path.stem}/{Path(f).relative_to(base).as_posix()}") for r, f in zip(rows, files)]
    given = [r.pop("label", None) for r in rows]
    labels, classes = None, None
    if any(g not in (None, "") for g in given):
        names = sorted({str(g) for g in given})
        numbers = [int(g) if str(g).lstrip("-").isdigit() else None for g in given]
        if all(n is not None for n in numbers):
            labels = np.array(numbers, dtype=np.int64)
        else:
            classes = names
            labels = np.array([names.index(str(g)) for g in given], dtype=np.int64)
    if len(set(keys)) != len(keys):
        raise DataError(f"{path}: two rows have the same key")
    data = Dataset(path.stem, None, labels, SCALE01, str(base), classes, files=files, kind=Images.name, keys=keys)
    data.metas = [r or None for r in rows]
    return _with_reader(data, [Path(f) for f in files], shape)


def _is_manifest(path: Path) -> bool:
    """Whether a .csv / .tsv / .jsonl lists images: its first row has a `path` and no `vector`."""
    first = first_row(path)
    return "path" in first and "vector" not in first


def _with_reader(data: Dataset, files: list[Path], shape) -> Dataset:
    """data, read in parts at shape (a model's input), or with every image decoded now (training)."""
    size, grey = _folder_size(files, shape)
    data.item_shape, data.reader = (1 if grey else 3, *size), FolderReader(size, grey)
    if shape is None:  # training reads every item, many times: decode them once, now
        x, ok = data.reader(data.files)
        if not ok.all():
            bad = data.files[int(np.flatnonzero(~ok)[0])]
            raise DataError(f"{bad}: not a readable image; remove it from the folder to train on the rest")
        data.x, data.reader = x, None
    return data


class FolderReader:
    """Decodes image files to (C, H, W) float32 in [0, 1] at one size, in worker processes,
    a bounded number of files in flight; unreadable files are left out and remembered."""

    def __init__(self, size: tuple[int, int], grey: bool, workers: int | None = None):
        self.size, self.grey = size, grey
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.failed: list[tuple[str, str]] = []  # (file, why) of every file it could not read

    def __call__(self, files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """files (m,) -> (x (m_ok, C, H, W) float32, ok (m,) bool)."""
        chunks = [files[i : i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
        if self.workers == 1 or len(chunks) == 1:
            parts = [_decode(c, self.size, self.grey) for c in chunks]
        else:
            parts = _in_workers(chunks, self.size, self.grey, self.workers)
        ok = np.concatenate([part[1] for part in parts]) if parts else np.zeros(0, bool)
        for part in parts:
            self.failed += part[2]
        pixels = np.concatenate([part[0] for part in parts]) if parts else np.zeros((0, *self.size), np.uint8)
        x = pixels.astype(np.float32) / 255.0
        return (x[:, None] if self.grey else np.ascontiguousarray(x.transpose(0, 3, 1, 2))), ok


CHUNK_FILES = 32  # files a worker decodes per task: big enough to amortise the hand-over


def _in_workers(chunks: list[list[str]], size, grey: bool, workers: int) -> list:
    """_decode over the chunks in a pool of processes, results in order, at most 2 chunks a worker
    in flight (memory stays a few chunks of pixels, whatever the number of files)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out, pending = [], []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for chunk in chunks:
            pending.append(pool.submit(_decode, chunk, size, grey))
            if len(pending) >= 2 * workers:
                out.append(pending.pop(0).result())
        out += [f.result() for f in pending]
    return out


def _decode(files: list[str], size: tuple[int, int], grey: bool) -> tuple[np.ndarray, np.ndarray, list]:
    """Files -> (pixels (m_ok, H, W) or (m_ok, H, W, 3) uint8 at size, ok (m,) bool, [(file, why)])."""
    pixels, ok, failed = [], np.zeros(len(files), bool), []
    for i, f in enumerate(files):
        try:
            image = open_image(f, max_pixels=MAX_PIXEL_LIMIT, size=size)
        except DataError as exc:
            failed.append((f, str(exc)))
            continue
        pixels.append(np.asarray(_converted(image, size, grey), dtype=np.uint8))
        ok[i] = True
    shape = (0, *size) if grey else (0, *size, 3)
    return (np.stack(pixels) if pixels else np.zeros(shape, np.uint8)), ok, failed


def _folder_size(files: list[Path], shape) -> tuple[tuple[int, int], bool]:
    """((H, W), grey) a folder's images are converted to: a model's, else read from the headers."""
    if shape is not None and len(shape) == 3 and shape[0] in (1, 3):
        return (shape[1], shape[2]), shape[0] == 1
    from PIL import Image

    modes, first = set(), None
    for f in files:
        try:
            with Image.open(f) as im:
                modes.add(im.mode)
                first = first or (im.height, im.width)
        except (OSError, ValueError) as exc:
            raise DataError(f"{f}: not a readable image ({exc})") from None
    return first, modes <= set(GREY_MODES)


def save_image(ds: Dataset, i: int, path: str | os.PathLike) -> Path:
    """Write item i of an image data set as a PNG (atomically), e.g. to query with it."""
    from PIL import Image

    if len(ds.shape) != 3 or ds.shape[0] not in (1, 3) or ds.kind != Images.name:
        raise DataError(f"{ds.name} holds no images (items of shape {ds.shape})")
    if not 0 <= i < len(ds):
        raise DataError(f"{ds.name} has {len(ds)} items; there is no item {i}")
    pixels = (np.clip(ds.x[i], 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)  # (H, W, C)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
