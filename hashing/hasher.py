"""The interface every hasher shares, and the input it takes.

scikit-learn habit: `__init__` stores its arguments; `fit(X)` validates and learns; learned state
lives in attributes ending in `_`; `encode(X)` is pure and returns packed codes `(n, bits/8) uint8`
in FAISS bit order. `save(path)` writes a self-describing .semhash artifact (read back by
`hashing.methods.load_hasher`).

`InputSpec` is what a hasher was fitted on (item shape, kind, normalization, data fingerprint); it
refuses other data, and converts a user's image the way the training images were converted.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import artifact
from .codes import check_bits
from .errors import DataError, NotImages, ParameterError

IMAGES, FEATURES = "images", "features"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}  # files read as images
IDENTITY = "none (features as given)"  # the normalization of feature vectors


def kind_of(normalization: str) -> str:
    """The kind of input a normalization describes, for data and model files that predate `kind`."""
    return FEATURES if normalization in (IDENTITY, "unknown") else IMAGES


@dataclass(frozen=True)
class InputSpec:
    """What a hasher was fitted on. shape: one item, e.g. (1, 28, 28) or (d,); kind: "images" (pixel
    values scaled to [0, 1], shape (C, H, W)) or "features"; normalization: how, in words."""

    shape: tuple[int, ...]
    normalization: str = "unknown"
    fingerprint: str = ""
    dataset: str = ""
    kind: str = ""

    def __post_init__(self):
        if not self.kind:
            object.__setattr__(self, "kind", kind_of(self.normalization))

    @classmethod
    def of(cls, dataset) -> InputSpec:
        """The spec of a hashing.data.Dataset."""
        return cls(dataset.shape, dataset.normalization, dataset.fingerprint, dataset.name, dataset.kind)

    @classmethod
    def from_header(cls, inp: dict) -> InputSpec:
        return cls(
            tuple(inp["shape"]), inp["normalization"], inp["fingerprint"], inp.get("dataset", ""), inp.get("kind", "")
        )

    def check(self, shape: tuple[int, ...], normalization: str | None = None, what: str = "input") -> None:
        """Refuse data whose item shape or normalization differs from what the hasher was fitted on."""
        if tuple(shape) != tuple(self.shape):
            raise DataError(f"{what} has item shape {tuple(shape)}, but the model was trained on {tuple(self.shape)}")
        if normalization is not None and self.normalization != "unknown" and normalization != self.normalization:
            raise DataError(f"{what} is normalized as '{normalization}', the model expects '{self.normalization}'")

    def image_to_input(self, image) -> np.ndarray:
        """A PIL image -> (C, H, W) float32 in [0, 1]: converted to the spec's channels (grey or
        RGB) and resized to its height and width, as its training images were."""
        if self.kind != IMAGES or len(self.shape) != 3:
            raise NotImages(
                f"this model was trained on {self.normalization!r} data of shape {tuple(self.shape)}, not images"
            )
        channels, height, width = self.shape
        if channels not in (1, 3):
            raise DataError(f"the model takes {channels}-channel inputs; only grey (1) or RGB (3) images convert")
        return image_array(image, (height, width), grey=channels == 1)


def image_array(image, size: tuple[int, int], grey: bool) -> np.ndarray:
    """PIL image -> (C, H, W) float32 in [0, 1], resized to size=(H, W). 16- and 32-bit grey
    images are scaled by their own range (65535), not clipped at 255."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float32) / 65535.0
        image = Image.fromarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    image = image.convert("L" if grey else "RGB")
    if (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=None)
    a = np.asarray(image, dtype=np.float32) / 255.0
    return a[None] if grey else np.ascontiguousarray(a.transpose(2, 0, 1))


def open_image(source, name: str | None = None, max_bytes: int | None = None, max_pixels: int | None = None):
    """A fully read PIL image from a path, bytes or a binary file object. Files over max_bytes and
    images that declare more than max_pixels are refused before any pixel is decoded; anything
    unreadable (or past PIL's decompression-bomb limit) is one DataError naming the image."""
    from PIL import Image, UnidentifiedImageError

    name = name or str(source)
    if isinstance(source, (bytes, bytearray)):
        size, source = len(source), io.BytesIO(source)
    else:
        size = os.path.getsize(source) if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) else 0
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"{name}: images are limited to {max_bytes >> 20} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below answers it
            return _read_image(Image.open(source), name, max_pixels)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: not a readable image ({exc})") from None


def _read_image(opened, name: str, max_pixels: int | None):
    with opened as im:
        if max_pixels is not None and im.width * im.height > max_pixels:
            raise DataError(f"{name}: {im.width}x{im.height} pixels is more than the {max_pixels:,} accepted")
        im.load()
        return im.copy()


class Hasher:
    """Base class. Subclasses set `method` and implement `_fit`, `_encode`, `_state`, `_set_state`."""

    method: ClassVar[str] = ""

    def __init__(self, bits: int = 32, seed: int = 0):
        self.bits = bits
        self.seed = seed
        self.spec_: InputSpec | None = None

    # --- public API ---
    def fit(self, X, spec: InputSpec | None = None) -> Hasher:
        """X: (n, *shape) float array or a hashing.data.Dataset (its labels, if any, guide model
        selection). Returns self."""
        check_bits(self.bits)
        y = None
        if hasattr(X, "fingerprint"):  # a Dataset
            spec, y = InputSpec.of(X), (None if X.labels is None else np.asarray(X.labels))
            X = X.x
        X = as_float(X)
        if len(X) < 2:
            raise DataError(f"need at least 2 items to fit, got {len(X)}")
        if not np.isfinite(X).all():
            raise DataError("training data contains NaN or infinite values")
        self.spec_ = spec or InputSpec(tuple(X.shape[1:]))
        try:
            self._fit(X, y)
        except BaseException:
            self.spec_ = None  # not fitted: a failed fit leaves no half-learned state behind
            raise
        return self

    def encode(self, X) -> np.ndarray:
        """X: (n, *shape) float -> codes (n, bits/8) uint8, FAISS bit order."""
        self._check_fitted()
        normalization = getattr(X, "normalization", None)
        if hasattr(type(X), "fingerprint"):  # a Dataset (its type: the property would hash the data, 0.3 s for MNIST)
            X = X.x
        X = as_float(X)
        self.spec_.check(X.shape[1:], normalization)
        return self._encode(X)

    def save(self, path: str | os.PathLike) -> Path:
        self._check_fitted()
        header = {
            "method": self.method,
            "bits": self.bits,
            "config": self.config(),
            "input": {**asdict(self.spec_), "shape": list(self.spec_.shape)},
            **self.header_extra(),
        }
        return artifact.save(path, self._state(), header)

    def header_extra(self) -> dict:
        """More self-description for the artifact header (architecture, validation metrics, ...)."""
        return {}

    def config(self) -> dict:
        return {"bits": self.bits, "seed": self.seed}

    def summary(self) -> dict:
        """What fitting found, for people and scripts (validation figures, training speed)."""
        return {}

    # --- for subclasses ---
    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """X: (n, *shape) float32, finite; y: (n,) integer labels or None. self.spec_ is set."""
        raise NotImplementedError

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """X: (n, *shape) float32 -> (n, bits/8) uint8."""
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, tensors: dict[str, np.ndarray], header: dict | None = None) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if self.spec_ is None:
            raise ParameterError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bits={self.bits}, seed={self.seed})"


def as_float(X) -> np.ndarray:
    """A batch of items as a float32 numpy array (n, ...); torch tensors are accepted."""
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise DataError("complex-valued inputs are not supported: pass real features")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"expected numbers, got an array of {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if X.ndim < 2:
        raise DataError(f"expected a batch of items (n, ...), got an array of shape {X.shape}")
    return X
