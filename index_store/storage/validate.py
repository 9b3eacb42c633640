"""What may be added: the one check of new items, run before anything is written.

    items = check_items(keys, codes, bits, labels=labels, metas=metas)   # DataError, or the columns

Store.add runs it on its items, Index.add on the whole of an add before its first batch (so that
a refused add stores nothing and builds nothing; the batches then go to Store.add_items as they
are); the HTTP add routes and `index build` go through Index.add. It refuses, in one line, what
SQL would store wrongly or not at all:

    codes    anything but uint8 of exactly (n, bits/8): a conversion stored int64 300 as 0x2C, -1 as
             0xFF and 0.5 as 0, without a word
    keys     anything but text of 1..MAX_KEY characters without control characters (None was
             stored as 'None'; a NUL cuts a key short in some tools and in SQLite's JSON functions)
    metas    anything but JSON with finite numbers (NaN and 1e400 were stored, and every later
             search returning them answered invalid JSON)
    labels   anything but 64-bit integers (or None); sources anything but text (or None);
             vectors anything but (n, dimensions) numbers
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass

import numpy as np

from ...hashing.errors import DataError

MAX_KEY = 500  # characters a key may have: the items.key column's VARCHAR(500), and the HTTP bodies'
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's control characters (category Cc)


@dataclass(frozen=True)
class Items:
    """Checked columns of n new items: keys list of str; codes (n, bits/8) uint8, C-contiguous;
    labels (n,) int64 array or a list of int | None; sources list of str | None; metas list of
    JSON values (None: no metadata); vectors (n, dimensions) float32. A column not given is None."""

    keys: list[str]
    codes: np.ndarray
    labels: np.ndarray | list | None = None
    sources: list | None = None
    metas: list | None = None
    vectors: np.ndarray | None = None
    snippets: list | None = None  # str | None each: the start of a document, shown with its hits

    def part(self, rows: slice) -> Items:
        """The items of these rows (a batch), checked as the whole was."""
        cut = lambda v: None if v is None else v[rows]  # noqa: E731
        columns = (self.labels, self.sources, self.metas, self.vectors, self.snippets)
        return Items(self.keys[rows], self.codes[rows], *map(cut, columns))


def check_items(
    keys, codes, bits: int | None, labels=None, sources=None, metas=None, vectors=None, snippets=None
) -> Items:
    """The items' columns, checked (see the module's docstring); DataError for the first fault.
    bits None: the codes' width is left to the caller (Store.add checks it under the index's lock)."""
    keys = check_keys(keys)
    n = len(keys)
    codes = check_codes(codes, n, bits)
    labels, sources, metas = _labels(labels), _listed(sources, "sources"), _listed(metas, "metadata")
    for name, column in (("labels", labels), ("sources", sources), ("metadata", metas)):
        if column is not None and len(column) != n:
            raise DataError(f"{len(column)} {name} for {n} items")
    if sources is not None:
        _check_sources(sources)
    if metas is not None:
        _check_metas(keys, metas)
    if vectors is not None:
        vectors = _vectors(vectors, n)
    return Items(keys, codes, labels, sources, metas, vectors, _snippets(snippets, n))


def _snippets(snippets, n: int) -> list | None:
    """Snippets (n,) of text or None, NUL bytes dropped (SQLite's text and PostgreSQL's refuse them)."""
    if snippets is None:
        return None
    snippets = list(snippets)
    if len(snippets) != n or any(s is not None and not isinstance(s, str) for s in snippets):
        raise DataError(f"snippets must be {n} texts (or None each)")
    return [None if s is None else s.replace("\x00", "") for s in snippets]


def check_keys(keys) -> list[str]:
    """keys as a list of str: each text of 1..MAX_KEY characters, no control character, valid
    Unicode (no lone surrogate, as a file name undecodable in UTF-8 gives), none twice."""
    if isinstance(keys, (str, bytes)) or not hasattr(keys, "__len__"):
        raise DataError(f"keys must be a list of text, got {type(keys).__name__}")
    bad = [] if set(map(type, keys)) <= {str} else [k for k in keys if not isinstance(k, str)][:1]
    if bad:
        raise DataError(f"keys must be text (str), got {type(bad[0]).__name__} {_short(bad[0])}")
    keys = [str(k) for k in keys]  # numpy's str_ -> str: what the drivers bind
    if not keys:
        return keys
    lengths = list(map(len, keys))
    if min(lengths) == 0:
        raise DataError("a key is empty: every item needs a key of at least one character")
    if max(lengths) > MAX_KEY:
        longest = keys[lengths.index(max(lengths))]
        raise DataError(f"key {_short(longest)} is {len(longest)} characters long; at most {MAX_KEY}")
    text = "".join(keys)
    if not text.isprintable() and CONTROL.search(text):  # (isprintable: 3x faster, False for any control)
        bad = next(k for k in keys if CONTROL.search(k))
        raise DataError(f"key {_short(bad)} holds a control character; keys are printable text")
    _check_text(keys, "key")
    if len(set(keys)) != len(keys):
        raise DataError("the same key appears twice in one batch")
    return keys


def check_codes(codes, n: int, bits: int | None) -> np.ndarray:
    """codes as a C-contiguous (n, bits/8) uint8 array: packed bits, never converted from another
    dtype (a cast stores other codes). bits None: the dtype only (the caller checks the shape
    once it knows the index's code length)."""
    try:
        a = np.asarray(codes)
    except (TypeError, ValueError):
        raise DataError(f"codes must be a uint8 array, one row per item, got {type(codes).__name__}") from None
    if a.dtype != np.uint8:
        raise DataError(f"codes must be a uint8 array (packed bits, 8 a byte), got {a.dtype}")
    if bits is not None and a.shape != (n, bits // 8):
        wanted = f"codes of shape ({n}, {bits // 8}) for {n} keys"
        raise DataError(f"the index holds {bits}-bit codes: {wanted}, got {a.shape}")
    return np.ascontiguousarray(a)


def _check_text(values: list[str], what: str) -> None:
    """Every value encodes as UTF-8 (the databases' text): a lone surrogate does not."""
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        bad = next(v for v in values if not _encodes(v))
        raise DataError(f"{what} {_short(bad)} is not valid Unicode text") from None


def _check_sources(sources: list) -> None:
    bad = next((s for s in sources if s is not None and not isinstance(s, str)), None)
    if bad is not None:
        raise DataError(f"sources must be text (or None), got {type(bad).__name__} {_short(bad)}")
    _check_text([s for s in sources if s is not None], "source")


def _check_metas(keys: list[str], metas: list) -> None:
    """Each item's metadata is None or JSON that parses back as it was: finite numbers only."""
    for key, meta in zip(keys, metas):
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            why = "numbers must be finite" if isinstance(exc, ValueError) else str(exc).split("\n")[0]
            raise DataError(f"the metadata of item {_short(key)} is not JSON ({why})") from None


def _labels(values) -> np.ndarray | list | None:
    """Labels as an int64 array (an integer array given), else Python ints (None where absent);
    DataError for one that is not an integer a 64-bit column holds."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
        if values.dtype.kind == "u" and len(values) and values.max() >= 2**63:
            raise DataError("labels must fit in 64 bits")
        return values.astype(np.int64)  # 60,000 labels: 0.03 s as Python ints -> 0.1 ms
    labels = _listed(values, "labels")
    if labels is None:
        return None
    try:
        labels = [None if v is None else _integer(v) for v in labels]
    except (TypeError, ValueError, OverflowError):
        raise DataError("labels must be integers (or None)") from None
    if any(v is not None and not -(2**63) <= v < 2**63 for v in labels):
        raise DataError("labels must fit in 64 bits")
    return labels


def _integer(v) -> int:
    """An integer, or a float with an integral value (labels read from float columns)."""
    try:
        return operator.index(v)
    except TypeError:
        if float(v).is_integer():
            return int(v)
        raise


def _vectors(vectors, n: int) -> np.ndarray:
    try:
        v = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError("vectors must be numbers, one row per item") from None
    if v.ndim != 2 or len(v) != n or not v.shape[1]:
        raise DataError(f"vectors of shape {v.shape} for {n} items: (n, dimensions) wanted")
    return np.ascontiguousarray(v)


def _listed(values, what: str) -> list | None:
    """A column as a list indexed by position (a generator, a Series or an array alike)."""
    if values is None:
        return None
    if isinstance(values, (str, bytes, dict)):
        raise DataError(f"{what} must be one value per item, got {type(values).__name__}")
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value) -> str:
    """A value for a one-line message: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
