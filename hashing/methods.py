"""The hashing methods by name, and what is done with a method as a whole: make one, load a model
file of any method, train one into a file.

The table is explicit and lazy: loading an ITQ model imports no torch.
"""

from __future__ import annotations

import os
import time
from importlib import import_module

from . import artifact
from .errors import ArtifactError, ParameterError
from .hasher import Hasher, InputSpec

# method name -> (module, class). "ae" options are hashing.train.TrainConfig's fields.
METHODS = {
    "ae": ("semhash.hashing.ae", "AEHasher"),
    "itq": ("semhash.hashing.baselines", "ITQ"),
    "pcah": ("semhash.hashing.baselines", "PCAH"),
    "lsh": ("semhash.hashing.baselines", "LSH"),
}


def method_class(method: str) -> type[Hasher]:
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}: use one of {', '.join(sorted(METHODS))}")
    module, name = METHODS[method]
    return getattr(import_module(module), name)


def make_hasher(method: str, bits: int = 32, seed: int = 0, **options) -> Hasher:
    """A fresh hasher by method name: "ae" (options: hashing.train.TrainConfig's fields), "itq",
    "pcah" or "lsh"."""
    cls = method_class(method)
    try:
        return cls(bits=bits, seed=seed, **options)
    except TypeError as exc:
        raise ParameterError(f"{method}: {exc}") from None


def load_hasher(path: str | os.PathLike) -> Hasher:
    """Read any .semhash artifact back into its hasher, checking the header."""
    tensors, header, checksum = artifact.read(path)
    method = header.get("method")
    if method not in METHODS:
        raise ArtifactError(f"{path}: unknown hashing method {method!r} (known: {', '.join(sorted(METHODS))})")
    cls = method_class(method)
    try:
        hasher = cls(**header["config"])
        hasher.spec_ = InputSpec.from_header(header["input"])
        hasher._set_state(tensors, header)
    except (KeyError, TypeError, ValueError, RuntimeError, ParameterError) as exc:
        raise ArtifactError(f"{path}: corrupt {method} model ({type(exc).__name__}: {exc})") from None
    if hasher.bits != header.get("bits"):
        raise ArtifactError(f"{path}: header says {header.get('bits')} bits, config says {hasher.bits}")
    hasher.checksum_ = checksum  # SHA-256 of the file, which an index records to refuse another model
    return hasher


def train_model(
    method: str,
    data,
    output: str | os.PathLike,
    bits: int = 32,
    seed: int = 0,
    limit: int | None = None,
    data_root: str | os.PathLike | None = None,
    **options,
) -> dict:
    """Fit a hasher on a Dataset, or on the train split of the data set a name or path names (its
    first `limit` items), and save it atomically; returns a summary for people and scripts: model
    path, method, bits, data set, items, input shape, seconds, and what fitting found."""
    from .data import as_dataset

    data = as_dataset(data, "train", data_root, limit=limit)
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
    return {**summary, **hasher.summary()}
