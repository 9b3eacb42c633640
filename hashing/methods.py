"""The hashing methods by name, and what is done with a method as a whole: make one, load a model
file of any method, train one into a file.

The table is explicit and lazy: loading an ITQ model, or an MLP autoencoder's, imports no torch.
"""

from __future__ import annotations

import os
import time
import warnings
from importlib import import_module

import numpy as np

from . import artifact, inputs
from .errors import INSTALL, ArtifactError, CodesCollapsed, NeedsExtra, ParameterError
from .hasher import Hasher, InputSpec

# method name -> (module, class). "ae" options are hashing.autoencoder.config.TrainConfig's fields.
METHODS = {
    "ae": ("semhash.hashing.autoencoder.hasher", "AEHasher"),
    "itq": ("semhash.hashing.baselines", "ITQ"),
    "pcah": ("semhash.hashing.baselines", "PCAH"),
    "lsh": ("semhash.hashing.baselines", "LSH"),
}
# method -> (module, function of a model file's header): which class reads such a file, where it is
# not always the method's class; None from the function: the method's class does
READERS = {"ae": ("semhash.hashing.autoencoder.numpy_encoder", "reader")}  # MLP encoders in numpy, no torch


def method_class(method: str) -> type[Hasher]:
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}: use one of {', '.join(sorted(METHODS))}")
    module, name = METHODS[method]
    return getattr(import_module(module), name)


def make_hasher(method: str, bits: int = 32, seed: int = 0, **options) -> Hasher:
    """A fresh hasher by method name: "ae" (options: hashing.autoencoder.config.TrainConfig's fields), "itq",
    "pcah" or "lsh"."""
    cls = method_class(method)
    try:
        return cls(bits=bits, seed=seed, **options)
    except TypeError as exc:
        raise ParameterError(f"{method}: {exc}") from None


def load_hasher(path: str | os.PathLike) -> Hasher:
    """Read any .semhash artifact back into a hasher of its method, checking the header. An MLP
    autoencoder's comes back as a NumpyAEHasher (encodes without torch; cannot fit), a conv one as
    an AEHasher."""
    tensors, header, checksum = artifact.read(path)
    method = header.get("method")
    if method not in METHODS:
        raise ArtifactError(f"{path}: unknown hashing method {method!r} (known: {', '.join(sorted(METHODS))})")
    cls = _reader_class(method, header)
    try:
        hasher = cls(**header["config"])
        hasher.spec_ = InputSpec.from_header(header["input"], inputs.load_featurizer)
        hasher._set_state(tensors, header)
    except (KeyError, TypeError, ValueError, RuntimeError, ParameterError) as exc:
        raise ArtifactError(f"{path}: corrupt {method} model ({type(exc).__name__}: {exc})") from None
    if hasher.bits != header.get("bits"):
        raise ArtifactError(f"{path}: header says {header.get('bits')} bits, config says {hasher.bits}")
    hasher.checksum_ = checksum  # SHA-256 of the file, which an index records to refuse another model
    return hasher


def _needs_torch() -> None:
    """NeedsExtra in one line, before any data is read, when PyTorch is not installed: training an
    autoencoder is the one thing the core install cannot do."""
    from importlib.util import find_spec

    if find_spec("torch") is None:  # found, not imported: the training imports it
        raise NeedsExtra(f"training an autoencoder needs PyTorch: {INSTALL['train']}")


def _reader_class(method: str, header: dict) -> type[Hasher]:
    """The class that reads a model file of this method with this header."""
    if method in READERS:
        module, name = READERS[method]
        cls = getattr(import_module(module), name)(header)
        if cls is not None:
            return cls
    return method_class(method)


AUTO = "auto"  # train_model's method that fits "ae" and "itq" on one split and keeps the better
CODE_SAMPLE = 20_000  # items whose codes are checked for collapse
MIN_DISTINCT = 0.01  # fewer distinct codes than 1% of what the items could fill is a collapse


def train_model(
    method: str,
    data,
    output: str | os.PathLike,
    bits: int = 32,
    seed: int = 0,
    limit: int | None = None,
    data_root: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    featurizer: dict | None = None,
    **options,
) -> dict:
    """Fit a hasher on a Dataset, or on the train split of the data set a name or path names (its
    first `limit` items; labels: a .npy of labels for a feature file), and save it atomically;
    featurizer: options of the input kind's featurizer (texts: hashing/inputs/vectorizer.py's
    DEFAULTS), fitted on the same items and saved in the model;
    returns a summary for people and scripts: model path, method (of the saved model), bits, data
    set, items, input shape, seconds, what fitting found, "codes" (how the codes use their bits)
    and "warnings" (each also issued as a CodesCollapsed warning).

    Method "ae" also fits PCA-ITQ on the autoencoder's training split and scores both codes on its
    held-out split by the same criterion: "validation" (the autoencoder's), "itq_validation",
    "criterion", "criterion_reason" and "verdict", one line. Method "auto" does the same and keeps
    the better ("kept", "kept_because"). The model file's header holds all of it ("report")."""
    from .data import as_dataset

    if method in ("ae", AUTO):
        _needs_torch()
    if method != AUTO:
        method_class(method)  # an unknown method fails before any data is read
    data = as_dataset(data, "train", data_root, labels=labels, limit=limit)
    data = inputs.featurized(data, **(featurizer or {}))  # texts: the vocabulary, in the model
    start = time.perf_counter()
    if method in ("ae", AUTO):
        hasher, report = _fit_judged(method, data, bits, seed, options)
    else:
        hasher, report = make_hasher(method, bits=bits, seed=seed, **options).fit(data), {}
    seconds = time.perf_counter() - start
    report.update(check_codes(hasher, data, seed))
    path = _save(hasher, output, report)
    summary = {
        "model": str(path),
        "method": hasher.method,
        "bits": bits,
        "dataset": data.name,
        "items": len(data),
        "input_shape": list(data.shape),
        "seconds": round(seconds, 2),
    }
    return {**summary, **hasher.summary(), **report}


def _fit_judged(method: str, data, bits: int, seed: int, options: dict) -> tuple[Hasher, dict]:
    """The autoencoder, and PCA-ITQ fitted on the autoencoder's training split, both scored on its
    held-out split by its criterion; method "auto" keeps the better. (kept hasher, report)."""
    ae = make_hasher("ae", bits=bits, seed=seed, **options).fit(data)
    val = ae.validation_set_
    report = {"criterion": val.criterion, "criterion_reason": val.reason}
    if val.relevance is None:
        report["verdict"] = f"no comparison with PCA-ITQ: {val.reason}"
        if method == AUTO:
            report.update(kept="ae", kept_because="no validation figure to choose by: the autoencoder is the default")
        return ae, report
    itq = make_hasher("itq", bits=bits, seed=seed).fit(_rows(data, val.train_rows), spec=InputSpec.of(data))
    q_rows, db_rows = val.val_rows, val.train_rows[: val.n_db]
    ours, theirs = (val.score(_encode(h, data, q_rows), _encode(h, data, db_rows)) for h in (ae, itq))
    report.update(validation=ours, itq_validation=theirs, verdict=verdict(ours, theirs))
    if method != AUTO:
        return ae, report
    a, b = ours["score"], theirs["score"]
    kept, because = (ae, f"{a:.3f} against PCA-ITQ's {b:.3f}") if a > b else (itq, f"{b:.3f} against {a:.3f}")
    report.update(kept=kept.method, kept_because=f"higher {_figure(val.criterion)}: {because}")
    report["verdict"] += f"; kept {'the autoencoder' if kept is ae else 'PCA-ITQ'}"
    return kept, report


def verdict(ours: dict, theirs: dict) -> str:
    """One line: whether the autoencoder's codes beat PCA-ITQ's on the held-out split, both figures."""
    a, b, figure = ours["score"], theirs["score"], _figure(ours["criterion"])
    if a > b:
        ratio = f" ({a / b:.2f}x)" if b > 0 else ""
        return f"the autoencoder beats PCA-ITQ: {figure} {a:.3f} against {b:.3f}{ratio}"
    return f"the autoencoder does not beat PCA-ITQ here: {figure} {a:.3f} against PCA-ITQ's {b:.3f}"


def _figure(criterion: str) -> str:
    return "validation mAP" if criterion == "labels" else "validation mAP of input-space neighbours"


def check_codes(hasher: Hasher, data, seed: int = 0) -> dict:
    """{"codes": code_statistics of the codes of a seeded sample of the data (CODE_SAMPLE items),
    "warnings": what collapse_warnings finds}; each warning is also issued as CodesCollapsed."""
    from .metrics import code_statistics

    rows = np.sort(np.random.default_rng(seed).permutation(len(data))[:CODE_SAMPLE])
    stats = code_statistics(_encode(hasher, data, rows), hasher.bits)
    found = collapse_warnings(stats, hasher.bits)
    for message in found:
        warnings.warn(message, CodesCollapsed, stacklevel=3)
    return {"codes": stats, "warnings": found}


def collapse_warnings(stats: dict, bits: int) -> list[str]:
    """The ways a code set (code_statistics) has collapsed, in one line, or []: fewer distinct
    codes than MIN_DISTINCT of what its items could fill, a constant bit, or a quarter of the bits
    nearly constant."""
    problems = []
    if stats["distinct"] < MIN_DISTINCT * min(stats["items"], 2**bits):
        problems.append(f"{stats['distinct']:,} distinct codes for {stats['items']:,} items")
    if stats["constant_bits"]:
        problems.append(f"{stats['constant_bits']} of {bits} bits constant")
    if stats["unbalanced_bits"] >= max(bits // 4, 1):
        problems.append(f"{stats['unbalanced_bits']} of {bits} bits nearly constant (on for under 2% or over 98%)")
    if not problems:
        return []
    return [f"codes collapsed: {', '.join(problems)}; items that differ share codes (train longer, or use itq)"]


def _rows(data, rows: np.ndarray) -> np.ndarray:
    """The items of a Dataset at these rows (m,) int: (m, *shape) float32."""
    return data.x[np.asarray(rows, dtype=np.int64)]


def _encode(hasher: Hasher, data, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Codes of the data's items at these rows, a chunk at a time (no copy of them all at once)."""
    parts = [hasher.encode(_rows(data, rows[i : i + chunk])) for i in range(0, len(rows), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, hasher.bits // 8), np.uint8)


def _save(hasher: Hasher, output, report: dict):
    """Save the hasher with the training report beside what it says of itself in the header."""
    own = hasher.header_extra
    hasher.header_extra = lambda: {**own(), "report": report}  # this save only
    try:
        return hasher.save(output)
    finally:
        del hasher.header_extra
