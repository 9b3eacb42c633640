"""The interface every hasher shares (baselines now, autoencoders later).

scikit-learn habit: `fit(X)` learns and validates; learned state lives in explicit attributes ending
in `_`; `encode(X)` is pure and returns packed codes `(n, bits/8) uint8` in FAISS bit order.
`save(path)` writes a self-describing .semhash artifact; `load_hasher(path)` reads any of them back.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import artifact
from .codes import check_bits
from .errors import ArtifactError, DataError, ParameterError

REGISTRY: dict[str, type[Hasher]] = {}


@dataclass(frozen=True)
class InputSpec:
    """What a hasher was fitted on: item shape, normalization, and the data's fingerprint."""

    shape: tuple[int, ...]
    normalization: str = "unknown"
    fingerprint: str = ""
    dataset: str = ""

    @classmethod
    def of(cls, dataset) -> InputSpec:
        """The spec of a hashing.data.Dataset."""
        return cls(dataset.shape, dataset.normalization, dataset.fingerprint, dataset.name)

    def check(self, shape: tuple[int, ...], normalization: str | None = None, what: str = "input") -> None:
        """Refuse data whose item shape or normalization differs from what the hasher was fitted on."""
        if tuple(shape) != tuple(self.shape):
            raise DataError(f"{what} has item shape {tuple(shape)}, but the model was trained on {tuple(self.shape)}")
        if normalization is not None and self.normalization != "unknown" and normalization != self.normalization:
            raise DataError(f"{what} is normalized as '{normalization}', the model expects '{self.normalization}'")


class Hasher:
    """Base class. Subclasses set `method`, implement `_fit`, `_encode_flat`, `_state`, `_set_state`."""

    method: ClassVar[str] = ""

    def __init__(self, bits: int = 32, seed: int = 0):
        self.bits = bits
        self.seed = seed
        self.spec_: InputSpec | None = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.method:
            REGISTRY[cls.method] = cls

    # --- public API ---
    def fit(self, X, spec: InputSpec | None = None) -> Hasher:
        """X: (n, *shape) float array or a hashing.data.Dataset. Returns self."""
        check_bits(self.bits)
        if hasattr(X, "fingerprint"):  # a Dataset
            spec, X = InputSpec.of(X), X.x
        X = _as_float(X)
        if len(X) < 2:
            raise DataError(f"need at least 2 items to fit, got {len(X)}")
        if not np.isfinite(X).all():
            raise DataError("training data contains NaN or infinite values")
        self.spec_ = spec or InputSpec(tuple(X.shape[1:]))
        self._fit(X.reshape(len(X), -1))
        return self

    def encode(self, X) -> np.ndarray:
        """X: (n, *shape) float -> codes (n, bits/8) uint8, FAISS bit order."""
        self._check_fitted()
        normalization = getattr(X, "normalization", None)
        if hasattr(X, "fingerprint"):
            X = X.x
        X = _as_float(X)
        self.spec_.check(X.shape[1:], normalization)
        return self._encode_flat(X.reshape(len(X), -1))

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

    # --- for subclasses ---
    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _encode_flat(self, X: np.ndarray) -> np.ndarray:
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


def _as_float(X) -> np.ndarray:
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float32)
    if X.ndim < 2:
        raise DataError(f"expected a batch of items (n, ...), got an array of shape {X.shape}")
    return X


def load_hasher(path: str | os.PathLike) -> Hasher:
    """Read any .semhash artifact back into its hasher, checking the header."""
    from . import ae, baselines  # noqa: F401  (registers the methods)

    tensors, header = artifact.load(path)
    method = header.get("method")
    if method not in REGISTRY:
        raise ArtifactError(f"{path}: unknown hashing method {method!r} (known: {', '.join(sorted(REGISTRY))})")
    cls = REGISTRY[method]
    try:
        hasher = cls(**header["config"])
        inp = header["input"]
        hasher.spec_ = InputSpec(tuple(inp["shape"]), inp["normalization"], inp["fingerprint"], inp.get("dataset", ""))
        hasher._set_state(tensors, header)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: corrupt {method} model ({type(exc).__name__}: {exc})") from None
    if hasher.bits != header.get("bits"):
        raise ArtifactError(f"{path}: header says {header.get('bits')} bits, config says {hasher.bits}")
    return hasher


def make_hasher(method: str, bits: int = 32, seed: int = 0, **options) -> Hasher:
    """A fresh hasher by method name: "ae" (options: hashing.train.TrainConfig's fields), "itq",
    "pcah" or "lsh"."""
    from . import ae, baselines  # noqa: F401  (registers the methods)

    if method not in REGISTRY:
        raise ParameterError(f"unknown method {method!r}: use one of {', '.join(sorted(REGISTRY))}")
    try:
        return REGISTRY[method](bits=bits, seed=seed, **options)
    except TypeError as exc:
        raise ParameterError(f"{method}: {exc}") from None


def train_to_file(method: str, data, output: str | os.PathLike, bits: int = 32, seed: int = 0, **options) -> dict:
    """Fit a hasher on a Dataset and save it atomically; returns a summary for people and scripts."""
    import time

    hasher = make_hasher(method, bits=bits, seed=seed, **options)
    start = time.perf_counter()
    hasher.fit(data)
    seconds = time.perf_counter() - start
    path = hasher.save(output)
    summary = {
        "model": str(path),
        "method": method,
        "bits": bits,
        "dataset": data.name,
        "items": len(data),
        "input_shape": list(data.shape),
        "seconds": round(seconds, 2),
    }
    for key in ("validation_", "training_"):
        extra = getattr(hasher, key, None)
        if extra:
            summary[key.rstrip("_")] = {k: v for k, v in extra.items() if k != "history"}
    return summary
