"""The interface every hasher shares, and the input it takes.

scikit-learn habit: `__init__` stores its arguments; `fit(X)` validates and learns; learned state
lives in attributes ending in `_`; `encode(X)` is pure and returns packed codes `(n, bits/8) uint8`
in FAISS bit order. `save(path)` writes a self-describing .semhash artifact (read back by
`hashing.methods.load_hasher`).

`InputSpec` is what a hasher was fitted on (item shape, input kind, normalization, data fingerprint);
it refuses other data. How a user's raw item becomes such an input is its kind's business
(hashing/inputs/).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import artifact
from .codes import check_bits
from .errors import DataError, ParameterError


@dataclass(frozen=True)
class InputSpec:
    """What a hasher was fitted on. shape: one item, e.g. (1, 28, 28) or (d,); kind: the registered
    input kind (hashing/inputs/) its items were; normalization: how they became numbers, in words.
    featurizer: what turned raw items of the kind into these inputs (texts: a TF-IDF vocabulary,
    hashing/inputs/vectorizer.py), saved in the model file's header with the rest; None where the
    items are the inputs. Its normalization names it, so check() refuses another one's features."""

    shape: tuple[int, ...]
    normalization: str = "unknown"
    fingerprint: str = ""
    dataset: str = ""
    kind: str = "features"
    featurizer: object | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, dataset) -> InputSpec:
        """The spec of a hashing.data.Dataset."""
        return cls(
            dataset.shape, dataset.normalization, dataset.fingerprint, dataset.name, dataset.kind, dataset.featurizer
        )

    @classmethod
    def from_header(cls, inp: dict, load_featurizer=None) -> InputSpec:
        """The spec a model file's header records; load_featurizer(kind name, its featurizer's
        header) makes the featurizer back (hashing.inputs.load_featurizer: the kinds are above this
        module), where the header has one."""
        featurizer = None
        if inp.get("featurizer") is not None and load_featurizer is not None:
            featurizer = load_featurizer(inp.get("kind", "features"), inp["featurizer"])
        return cls(
            tuple(inp["shape"]),
            inp["normalization"],
            inp["fingerprint"],
            inp.get("dataset", ""),
            inp.get("kind", "features"),
            featurizer,
        )

    def header(self) -> dict:
        """The spec as the model file's header records it ("input")."""
        return {
            "shape": list(self.shape),
            "normalization": self.normalization,
            "fingerprint": self.fingerprint,
            "dataset": self.dataset,
            "kind": self.kind,
            **({"featurizer": self.featurizer.header()} if self.featurizer is not None else {}),
        }

    def check(self, shape: tuple[int, ...], normalization: str | None = None, what: str = "input") -> None:
        """Refuse data whose item shape or normalization differs from what the hasher was fitted on."""
        if tuple(shape) != tuple(self.shape):
            raise DataError(f"{what} has item shape {tuple(shape)}, but the model was trained on {tuple(self.shape)}")
        if normalization is not None and self.normalization != "unknown" and normalization != self.normalization:
            raise DataError(f"{what} is normalized as '{normalization}', the model expects '{self.normalization}'")


class Hasher:
    """Base class. Subclasses set `method` and implement `_fit`, `_encode`, `_state`, `_set_state`."""

    method: ClassVar[str] = ""

    def __init__(self, bits: int = 32, seed: int = 0):
        self.bits = bits
        self.seed = seed
        self.spec_: InputSpec | None = None

    # --- public API ---
    def fit(self, X, spec: InputSpec | None = None) -> Hasher:
        """X: (n, *shape) float array, a scipy.sparse matrix (n, d) (never densified whole), or a
        hashing.data.Dataset (its labels, if any, guide model selection). Returns self."""
        check_bits(self.bits)
        y = None
        if hasattr(type(X), "fingerprint"):  # a Dataset
            if X.x is None:
                raise DataError(f"{X.name}: its items are not the model's inputs yet (hashing.inputs.featurized(data))")
            spec, y = InputSpec.of(X), (None if X.labels is None else np.asarray(X.labels))
            X = X.x
        X = as_float(X)
        if X.shape[0] < 2:
            raise DataError(f"need at least 2 items to fit, got {X.shape[0]}")
        if not np.isfinite(X.data if is_sparse(X) else X).all():
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
            if X.x is None:
                raise DataError(f"{X.name}: its items are not the model's inputs yet (read it with the model's spec)")
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
            "input": self.spec_.header(),
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


def summary_header(header: dict) -> dict:
    """A model file's header without its featurizer's vocabulary and weights (300 KB of JSON for
    10,000 words): what an index keeps in SQL to describe its model; the normalization still names
    the vocabulary, and the model file holds it whole."""
    featurizer = (header.get("input") or {}).get("featurizer")
    if not isinstance(featurizer, dict):
        return header
    kept = {k: v for k, v in featurizer.items() if k in ("kind", "options")}
    return {**header, "input": {**header["input"], "featurizer": {**kept, "words": len(featurizer.get("words") or [])}}}


def is_sparse(X) -> bool:
    """Whether X is a scipy.sparse matrix (tested without importing scipy)."""
    return hasattr(X, "tocsr")


def as_float(X) -> np.ndarray:
    """A batch of items as a float32 numpy array (n, ...); torch tensors are accepted, and a
    scipy.sparse matrix (n, d) comes back as a float32 csr_matrix."""
    if is_sparse(X):
        if X.dtype.kind not in "biuf":
            raise DataError(f"expected real numbers, got a sparse matrix of {X.dtype}")
        return X.tocsr().astype(np.float32, copy=False)
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
