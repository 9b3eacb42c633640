"""Text documents, with their own keys, labels and metadata:

  docs.jsonl                 an object a line: `text`, optional `key` and `label` (an integer or a
                             class name), every other field kept as the item's metadata
  docs.csv / docs.tsv        a header, then a row a document: a `text` column (same rules)
  folder/                    .txt and .md files (UTF-8); sub-folders name the classes; keys are
                             '<folder name>/<path in it>', as an image folder's
  -                          standard input, one document a line

Without a `key`, a row's key is '<file stem>/<line number>' ('stdin/<line>' for standard input).
A document is kept whole up to MAX_DOC_CHARS characters and cut there (one counted warning); a line
longer than MAX_LINE_BYTES is refused before it is decoded.

A model of texts holds its featurizer (vectorizer.py: TF-IDF over its vocabulary): `semhash train`
fits it (`fit_featurizer`), the model file keeps it, and every later read converts documents with
the model's own (`load(..., spec=model.spec_)`, `inputs(spec, texts)`). A Dataset of texts read
without a model holds the documents (`texts`) and no features yet (x None).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from ..errors import DataError, SkippedItems
from ..safe_text import visible
from .base import InputKind, first_row
from .vectorizer import Tfidf

ROWS = (".jsonl", ".csv", ".tsv")
FILES = (".txt", ".md")
MAX_DOC_CHARS = 1 << 20  # characters of a document kept (1 MiB of ASCII); the rest is cut
MAX_LINE_BYTES = 8 << 20  # bytes of one line of a .jsonl/.csv/stdin: longer is refused unread
MAX_FILE_BYTES = 2 << 30  # bytes of a file of documents (read whole into memory)
MAX_QUERY_CHARS = 100_000  # characters of one query text (`--text`, a request)
SNIPPET_CHARS = 300  # characters of a document stored with its item to show in hits
RAW = "raw text (no features yet)"  # a Dataset of texts read without a model


class Texts(InputKind):
    name = "texts"
    keyword = "texts"
    flag = "--text"
    help = "Query with a text (repeat it; - reads one text a line)."
    file_flag = "--texts"
    file_help = (
        "Query with the documents of a file (.jsonl/.csv/.tsv with a `text` column, .txt: one a line; -: stdin)."
    )
    source_flag = "--texts"
    source_help = "Text documents: .jsonl/.csv/.tsv with a `text` column, a folder of .txt/.md, or - (stdin)."
    decoder = "multinomial"  # the document autoencoder predicts the word distribution
    # the document autoencoder (hashing/autoencoder/): bag-of-words in, one softmax layer out, and
    # the k-NN graph's pairs found by cosine in LSA space (graph.topic_space); no image views.
    # Measured on 20 Newsgroups at 32 bits (P@100; benchmarks/README.md): VDSH's Gaussian bottleneck
    # 0.624 against the straight-through one's 0.500 and PCA-ITQ's 0.555 (NASH's: see there); at a
    # learning rate of 3e-3, not 1e-3, 0.644 (1e-3 was still rising at its 3,000th step; 5e-3 and a
    # cosine decay lost); each document also predicting its neighbour's words (half the target) 0.655
    # (the Gaussian's prior, averaged over the bits since, took 16 bits from 0.594 to 0.604 for seed 0;
    # seed 1 scores 0.564: variational.py). The code is PCA-ITQ of a latent at least 64 units wide
    # (latent_code.py): 16 bits from a 32- or 64-unit model's means 0.614-0.619 where 16-bit models'
    # signs score 0.564-0.604 by seed; ITQ's rotation of 64 units +0.013, of 128 units +0.000 to
    # +0.007 by ITQ's seed. Two members (members.py), each its own model, seed and held-out split:
    # 0.617 / 0.660 / 0.673 / 0.681 at 16 / 32 / 64 / 128 bits against one model's 0.615 / 0.646 /
    # 0.660 / 0.664, in 485 s at 64 bits on 2 cores (the first layer a sparse product: train.py).
    recipe = {
        "hidden": (500, 500),
        "bottleneck": "gaussian",
        "latent_bits": 64,
        "members": 2,
        "steps": 3000,
        "lr": 3e-3,
        "reg": {
            "neighbours": 1.0,
            "k_neighbours": 10,
            "neighbour_pool": 1,
            "affine": 0.0,
            "graph_views": 0,
            "neighbour_words": 0.5,
        },
    }

    def reads(self, path: Path) -> bool:
        if str(path) == "-":
            return True
        if path.is_dir():
            return any(p.suffix.lower() in FILES for p in path.rglob("*"))
        if path.suffix.lower() in ROWS:
            return path.is_file() and "text" in first_row(path)
        return False

    def load(self, path: Path, labels: Path | None = None, spec=None) -> Dataset:
        if labels is not None:
            raise DataError(f"labels ({labels}) go with a .npy; documents bring their own (a `label` column)")
        data = read_documents(path)
        return featurize(data, spec.featurizer) if spec is not None and spec.featurizer is not None else data

    def fit_featurizer(self, data: Dataset, **options) -> Tfidf:
        return Tfidf.fit(documents(data), **options)

    def load_featurizer(self, header: dict, tensors: dict | None = None) -> Tfidf:
        return Tfidf.from_header(header)

    def featurize(self, data: Dataset, featurizer: Tfidf) -> Dataset:
        return featurize(data, featurizer)

    def snippets(self, data: Dataset) -> list[str] | None:
        return [snippet(t) for t in documents(data)]

    def verifier(self):
        from ..signatures.texts import TEXTS  # MinHash of word shingles: near-duplicates by Jaccard

        return TEXTS

    def signatures(self, data: Dataset, rows, x) -> np.ndarray:
        texts = documents(data)  # from the words, not the features: x is TF-IDF
        return self.verifier().make([texts[int(i)] for i in rows])

    def queries(self, given) -> tuple[list[str], list[str]]:
        """given: texts (str), files of documents (Path; '-' as a Path: stdin), or one of either."""
        given = [given] if isinstance(given, (str, Path)) else list(given)
        texts, names = [], []
        for g in given:
            if isinstance(g, Path) or g == "-":  # a file of documents; '-': standard input, one a line
                data = read_documents(Path(g))
                texts += documents(data)
                names += data.keys or [f"{data.name}/{Path(f).relative_to(data.source).as_posix()}" for f in data.files]
            elif isinstance(g, str):
                if len(g) > MAX_QUERY_CHARS:
                    raise DataError(f"a query text of {len(g):,} characters; at most {MAX_QUERY_CHARS:,}")
                texts.append(g)
                names.append(g[:60])
            else:
                raise DataError(f"texts must be strings, got {type(g).__name__}")
        if not texts:
            raise DataError("no texts to search with")
        return texts, names

    def inputs(self, spec, items, names=None):
        featurizer = getattr(spec, "featurizer", None)
        if featurizer is None:
            raise DataError("this model was not trained on texts: it has no vocabulary to read them with")
        if isinstance(items, str) or not all(isinstance(t, str) for t in items):
            raise DataError("texts must be a list of strings")
        return featurizer.transform(list(items))


def documents(data: Dataset) -> list[str]:
    if data.texts is None:
        raise DataError(f"{data.name}: not a data set of texts")
    return data.texts


def snippet(text: str) -> str:
    """The start of a document shown with its hits: its first SNIPPET_CHARS characters, blanks
    folded to one space and control characters made visible (safe_text.visible: an escape sequence
    stored as its 4 characters, never obeyed by a terminal that shows it)."""
    return visible(" ".join(text[: SNIPPET_CHARS * 2].split()))[:SNIPPET_CHARS]


def featurize(data: Dataset, featurizer: Tfidf) -> Dataset:
    """The same documents with their features: x (n, vocab) float32 csr, normalization naming the
    vocabulary; the featurizer kept with them (a model fitted on them records it)."""
    from dataclasses import replace

    x = featurizer.transform(documents(data), dense=False)
    return replace(data, x=x, normalization=featurizer.normalization, featurizer=featurizer, _fingerprint=None)


def read_documents(path: Path) -> Dataset:
    """A file, folder or stdin ('-') of documents -> a Dataset of texts (x None, keys, labels)."""
    path = Path(path)
    if str(path) == "-":
        rows = _lines(sys.stdin.buffer, "stdin")
        name, source = "stdin", "-"
    elif path.is_dir():
        return _folder(path)
    elif not path.is_file():
        raise DataError(f"{path}: no such file")
    else:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DataError(f"{path}: {path.stat().st_size >> 20:,} MiB of documents; split it into files under 2 GiB")
        with open(path, "rb") as f:
            if path.suffix.lower() == ".jsonl":
                rows = _jsonl(f, path)
            elif path.suffix.lower() in (".csv", ".tsv"):
                rows = _csv(f, path)
            else:
                rows = _lines(f, str(path))
        name, source = path.stem, str(path)
    return _dataset(name, source, rows)


def _dataset(name: str, source: str, rows: list[tuple[int, dict]]) -> Dataset:
    """rows: (line number, {text, key?, label?, ...meta}) -> a Dataset of texts."""
    from .features import _keys, _label, _labels

    if not rows:
        raise DataError(f"{source}: no documents")
    texts, cut = [], 0
    for _, r in rows:
        text = r.pop("text")
        cut += len(text) > MAX_DOC_CHARS
        texts.append(text[:MAX_DOC_CHARS])
    if cut:
        warnings.warn(SkippedItems(f"{source}: cut {cut} document(s) at {MAX_DOC_CHARS:,} characters"), stacklevel=3)
    named = [(n, r.pop("key", None)) for n, r in rows]
    keys = [f"{name}/{n}" if k in (None, "") else str(k) for n, k in named]
    given = [r.pop("label", None) for _, r in rows]
    labels = None
    if any(v not in (None, "") for v in given):
        if any(v in (None, "") for v in given):
            raise DataError(f"{source}: some documents have a label and some do not")
        labels = np.array([_label(v) for v in given])
    y, classes = _labels(labels, len(texts)) if labels is not None else (None, None)
    keys = _keys(keys, len(texts), Path(source))
    metas = [r or None for _, r in rows]
    return Dataset(name, None, y, RAW, source, classes, kind=Texts.name, keys=keys, metas=metas, texts=texts)


def _folder(folder: Path) -> Dataset:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in FILES and p.is_file())
    if not files:
        raise DataError(f"{folder}: no .txt or .md files")
    texts = [_read_file(p) for p in files]
    classes = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    rows = [(0, {"text": t, "key": f"{i}"}) for i, t in enumerate(texts)]  # keys: the files' (below)
    if classes:
        if any(len(p.relative_to(folder).parts) == 1 for p in files):
            raise DataError(f"{folder}: some files are in class sub-folders and some are not")
        for (_, r), p in zip(rows, files):
            r["label"] = p.relative_to(folder).parts[0]
    data = _dataset(folder.name, str(folder), rows)
    # keyed as an image folder's files are: '<folder name>/<path in it>' (hashing.data.item_keys)
    data.files, data.keys = [str(p) for p in files], None
    return data


def _read_file(path: Path) -> str:
    if path.stat().st_size > 4 * MAX_DOC_CHARS:
        with open(path, "rb") as f:
            raw = f.read(4 * MAX_DOC_CHARS)
        return _decode(raw, str(path), tail_ok=True)
    return _decode(path.read_bytes(), str(path))


def _decode(raw: bytes, where: str, tail_ok: bool = False) -> str:
    if b"\0" in raw:
        raise DataError(f"{where}: a binary file, not UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if tail_ok and exc.start > len(raw) - 4:  # a character cut by the byte bound
            return raw[: exc.start].decode("utf-8")
        raise DataError(f"{where}: not UTF-8 text (byte {exc.start})") from None


def _bounded_lines(f, where: str):
    """(line number, decoded line without its end) of a binary file, each line bounded."""
    for n, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(f"{where}, line {n}: longer than {MAX_LINE_BYTES >> 20} MiB")
        yield n, _decode(raw, f"{where}, line {n}").rstrip("\r\n")


def _lines(f, where: str) -> list[tuple[int, dict]]:
    return [(n, {"text": line}) for n, line in _bounded_lines(f, where) if line.strip()]


def _jsonl(f, path: Path) -> list[tuple[int, dict]]:
    rows = []
    for n, line in _bounded_lines(f, str(path)):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}, line {n}: not JSON ({exc})") from None
        rows.append((n, _checked_row(row, path, n)))
    return rows


def _csv(f, path: Path) -> list[tuple[int, dict]]:
    text = "".join(line + "\n" for _, line in _bounded_lines(f, str(path)))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    csv.field_size_limit(MAX_LINE_BYTES)  # the module's default, 128 KiB, would refuse a long document
    rows, line = [], 1
    try:
        for row in reader:
            rows.append((line + 1, _checked_row(row, path, line + 1)))
            line = reader.line_num
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: not readable CSV ({exc})") from None
    return rows


def _checked_row(row, path: Path, n: int) -> dict:
    if not isinstance(row, dict):
        raise DataError(f"{path}, line {n}: not a JSON object")
    if not isinstance(row.get("text"), str):
        raise DataError(f"{path}, line {n}: every document needs a `text` (a string)")
    row.pop(None, None)  # csv: values beyond the header's columns
    return row


def load_20newsgroups(split: str, base: Path, download: bool = True, spec=None) -> Dataset:
    """20 Newsgroups ("bydate"): <data root base>/20newsgroups/{train,test}.jsonl, one {"text",
    "label"} a line (lower-cased, letters only); missing and online, fetched through scikit-learn
    into that layout (the cache's data root where the data root is read-only). spec: a model's,
    whose featurizer reads them."""
    from ..files import cache_dir

    path = base / "20newsgroups" / f"{split}.jsonl"
    if not path.is_file():
        cached = cache_dir() / "data" / "20newsgroups" / f"{split}.jsonl"
        path = cached if cached.is_file() else _fetch_20newsgroups(split, base, download)
    data = read_documents(path)
    data.name, data.split, data.keys, data.metas = "20newsgroups", split, None, None
    return featurize(data, spec.featurizer) if spec is not None and spec.featurizer is not None else data


def _fetch_20newsgroups(split: str, base: Path, download: bool) -> Path:
    import re

    from ..errors import DataMissing
    from ..files import atomic_write, cache_dir

    where = base / "20newsgroups"
    if not download:
        raise DataMissing(
            f"20newsgroups not found in {where} (downloads are off); put train.jsonl and test.jsonl there"
        )
    try:
        from sklearn.datasets import fetch_20newsgroups

        got = fetch_20newsgroups(subset=split, remove=(), data_home=str(cache_dir() / "sklearn"))
    except OSError as exc:
        raise DataMissing(f"20newsgroups not found in {where} and the download failed ({exc})") from None
    target = where if os.access(base, os.W_OK) else cache_dir() / "data" / "20newsgroups"
    target.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"text": " ".join(re.sub(r"[^a-z]+", " ", t.lower()).split()), "label": got.target_names[y]})
        for t, y in zip(got.data, got.target)
    ]

    def write(tmp: str) -> None:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")

    return atomic_write(target / f"{split}.jsonl", write)
