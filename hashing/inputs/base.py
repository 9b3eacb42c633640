"""The input-kind contract and its registry: the one place that knows which kinds exist.

A kind of input (images, feature vectors, ...) is one module that subclasses `InputKind` and one
`register(...)` line in hashing/inputs/__init__.py. Everything else - loading a path, turning a
user's queries into the model's inputs, showing an item - asks the registry, never the kind's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError, ParameterError


class InputKind:
    """One kind of input.

    name: what a model file records (`InputSpec.kind`) and what a Dataset's `kind` is;
    keyword: the Python API's query argument (`search(..., images=[...])`); flag / help: the CLI's
    query option for it (`--image`), repeatable when `repeat`; source_flag / source_help: the
    option that names a path of items to train on or index (`--images FOLDER`)."""

    name: ClassVar[str]
    keyword: ClassVar[str]
    flag: ClassVar[str]
    help: ClassVar[str]
    repeat: ClassVar[bool] = True
    source_flag: ClassVar[str]
    source_help: ClassVar[str]
    # the autoencoder's output for items of this kind: "sigmoid" (values in [0, 1], reconstructed
    # with cross-entropy) or "linear" (any real values, squared error)
    decoder: ClassVar[str] = "linear"

    def reads(self, path: Path) -> bool:
        """Whether this kind reads the items at `path` (a file or a folder)."""
        raise NotImplementedError

    def load(self, path: Path, labels: Path | None = None):
        """The items at `path` as a hashing.dataset.Dataset of this kind."""
        raise NotImplementedError

    def queries(self, given) -> tuple[list | np.ndarray, list[str]]:
        """Queries as a user gives them (paths, globs, bytes, arrays, ...) -> (the items to encode,
        in order, and a label for each)."""
        raise NotImplementedError

    def inputs(self, spec, items) -> np.ndarray:
        """Items -> the model's inputs (n, *spec.shape) float32, converted as its training items
        were; DataError for what cannot be converted. spec: the model's hashing.hasher.InputSpec."""
        raise NotImplementedError

    def preview(self, source: str) -> np.ndarray | None:
        """(H, W) or (H, W, 3) floats in [0, 1] picturing the stored item at `source`, or None."""
        return None

    def picture(self, x: np.ndarray) -> np.ndarray | None:
        """One item as the model takes it (x: (*shape) float32) -> (H, W) or (H, W, 3) floats in
        [0, 1] to show, or None when the kind has no picture."""
        return None

    # the autoencoder's recipe for items of this kind: TrainConfig fields (and "reg": Regularizers
    # fields) that replace the defaults, which are the recipe measured on images; a user's options
    # replace these in turn
    recipe: ClassVar[dict] = {}

    # a second query option reading queries from a file (`--texts FILE`), or None; its help
    file_flag: ClassVar[str | None] = None
    file_help: ClassVar[str] = ""

    def fit_featurizer(self, data, **options):
        """The featurizer that turns raw items of this kind into the model's inputs, fitted on a
        Dataset of them (texts: a vocabulary and its TF-IDF weights), or None: the kind's items are
        the inputs as read. It has `normalization` (naming it), `width`, `transform(items)` (-> (n,
        width) float32, dense or csr), `header()` (JSON for the model file) and `kind`."""
        return None

    def load_featurizer(self, header: dict, tensors: dict | None = None):
        """The featurizer a model file describes (its `header()`, under the header's
        input.featurizer), for kinds whose fit_featurizer returns one."""
        raise DataError(f"items of kind {self.name!r} have no featurizer")

    def featurize(self, data, featurizer):
        """A Dataset of raw items of this kind -> the same items as the featurizer's features (x)."""
        return data

    def snippets(self, data) -> list[str] | None:
        """A short text to show with each item of a Dataset of this kind in hits, or None."""
        return None

    def verifier(self):
        """The hashing.signatures.Verifier that decides near-duplicates of this kind (a signature kept
        with each item, compared in the kind's own units), or None: codes alone decide."""
        return None

    def signatures(self, data, rows, x) -> np.ndarray | None:
        """(n, s) verifier signatures of items rows (n,) of Dataset data, whose model inputs are x
        (n, *shape); None without a verifier. A kind whose signature needs the raw item (a text's
        words, not its features) reads it from data here."""
        v = self.verifier()
        return None if v is None else v.make(x)

    def save_item(self, data, i: int, path: Path) -> Path:
        """Write item i of a Dataset of this kind to a file a query can read back."""
        raise DataError(f"{data.name}: items of kind {self.name!r} cannot be written to a file")


def read_rows(path: Path):
    """Each row of a .jsonl (objects), .csv or .tsv (a header first) as a dict."""
    import csv
    import json

    with open(path, newline="", encoding="utf-8", errors="strict") as f:
        try:
            if path.suffix.lower() == ".jsonl":
                for n, line in enumerate(f, 1):
                    if line.strip():
                        row = json.loads(line)
                        if not isinstance(row, dict):
                            raise DataError(f"{path}, line {n}: not a JSON object")
                        yield row
            else:
                yield from csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        except (ValueError, csv.Error) as exc:  # JSON and UTF-8 errors are ValueErrors
            raise DataError(f"{path}: not readable rows ({exc})") from None


def first_row(path: Path) -> dict:
    """The first row of a .jsonl, .csv or .tsv ({} when it has none or is not such a file): how a
    kind tells whether a list of rows is its own (a `vector` column, a `path` column, ...)."""
    try:
        return next(iter(read_rows(path)), {})
    except (DataError, OSError):
        return {}


_KINDS: dict[str, InputKind] = {}


def register(kind: InputKind) -> InputKind:
    """Make a kind known to every entry point (CLI options, Python API keywords, loaders)."""
    _KINDS[kind.name] = kind
    return kind


def kinds() -> list[InputKind]:
    """The registered kinds, in registration order."""
    return list(_KINDS.values())


def get(name: str) -> InputKind:
    """The kind a model or a Dataset records."""
    if name not in _KINDS:
        raise DataError(f"input kind {name!r} is unknown to this semhash (it knows {', '.join(_KINDS)})")
    return _KINDS[name]


def by_keyword(keyword: str) -> InputKind:
    """The kind whose query argument is `keyword` ("images", "vectors", ...)."""
    for kind in _KINDS.values():
        if kind.keyword == keyword:
            return kind
    raise ParameterError(f"unknown query {keyword!r}: use one of {', '.join(k.keyword for k in _KINDS.values())}")


def for_path(path: Path) -> InputKind | None:
    """The first kind that reads the items at `path`, or None."""
    return next((kind for kind in _KINDS.values() if kind.reads(path)), None)
