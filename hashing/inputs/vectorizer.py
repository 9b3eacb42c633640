"""A text featurizer: documents -> TF-IDF rows over a fitted vocabulary, kept inside the model file.

    featurizer = Tfidf.fit(texts, vocabulary=10_000)      # scikit-learn's TfidfVectorizer learns it
    x = featurizer.transform(texts)                         # (n, vocab) float32, csr for many rows
    featurizer.normalization                                # 'tfidf/10000 words/sha256:1f0c9a...'

Fitting uses scikit-learn; transforming does not. Importing scikit-learn costs a query 1.8-2.5 s on
2 busy cores (measured), so `transform` is scikit-learn's analyzer and TF-IDF weighting written
again with `re` and numpy: the same token pattern, lower-casing, stop words removed before the
n-grams, sublinear tf, smooth idf and L2 norm. tests/test_texts_vectorizer.py checks it equal to
TfidfVectorizer.transform on a corpus (to float32 rounding). A few queries come back dense (no
scipy to import, 40 KB a row); more than DENSE_ROWS come back as a scipy csr_matrix, never dense whole.

The model file holds the vocabulary (words in column order), the idf weights and the options in
its header (`input.featurizer`), so it stays self-describing, and `normalization` names a hash of
all three: a model refuses features made with another vocabulary (InputSpec.check).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from itertools import repeat

import numpy as np

from ..errors import DataError, ParameterError

# The defaults of `semhash train --texts` (the lead measures and sets them; one dict, here)
DEFAULTS = {
    "vocabulary": 10_000,  # the most frequent words (or n-grams) kept
    "ngrams": (1, 1),  # (shortest, longest) word n-grams
    "stop_words": "english",  # scikit-learn's English list, or None
    "sublinear_tf": True,  # 1 + log(count) instead of the count
    "min_df": 2,  # words in fewer documents are dropped
    "use_idf": True,  # TF-IDF; False: (log) counts, L2-normalized
}
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
# TOKEN's matches and the separator of a batch's texts. Without the \b: a search that fails at a
# run of word characters fails only on a run of one, so every match is a whole run anyway (23% faster)
_TOKEN_OR_NUL = re.compile(r"\w\w+|\0")
# In ASCII, TOKEN's word characters are letters, digits and "_": every other byte made a space (NUL,
# the separator, kept), str.split finds the same runs (runs of one are no word); bytes.translate is
# 4x faster than str.translate and 3x faster than the regex (a 2,000-document batch: 0.03 s)
_ASCII_BREAKS = bytes(c if c == 0 or chr(c).isalnum() or chr(c) == "_" else 32 for c in range(128)) + b" " * 128
FIT_DOCUMENTS = 20_000  # fit learns from at most this many documents, a seeded sample (20 Newsgroups' 11,314: all)
DENSE_ROWS = 256  # up to this many rows, transform returns a dense array (queries); above, a csr_matrix
KIND = "tfidf"


class Tfidf:
    """A fitted TF-IDF featurizer. words: the vocabulary in column order; idf: (vocab,) float64
    weights (None when use_idf is off); options: DEFAULTS' keys; stop: the stop words removed before
    n-grams are formed (they matter only to n-grams longer than 1: no kept word is one)."""

    kind = KIND

    def __init__(self, words: list[str], idf: np.ndarray | None, options: dict, stop: list[str] | None = None):
        self.words, self.options = list(words), {**DEFAULTS, **options}
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        self.stop = frozenset(stop or ())
        self.column = {w: i for i, w in enumerate(self.words)}
        self.ngrams = tuple(int(n) for n in self.options["ngrams"])
        if self.idf is not None and self.idf.shape != (len(self.words),):
            raise ValueError(f"{len(self.words)} words but {self.idf.shape} idf weights")

    @property
    def width(self) -> int:
        """Columns of the features: the vocabulary's size."""
        return len(self.words)

    @property
    def normalization(self) -> str:
        """How texts became numbers, naming the vocabulary: 'tfidf/10000 words/sha256:<16 hex>'."""
        return f"{KIND}/{self.width} words/sha256:{self.digest()[:16]}"

    def digest(self) -> str:
        h = hashlib.sha256(json.dumps([self.words, sorted(self.stop), _jsonable(self.options)]).encode())
        if self.idf is not None:
            h.update(self.idf.astype("<f8").tobytes())
        return h.hexdigest()

    @classmethod
    def fit(cls, texts: list[str], **options) -> Tfidf:
        """Learn the vocabulary and idf of texts with scikit-learn; options: DEFAULTS' keys. Above
        FIT_DOCUMENTS texts, from a sample of that many (seed 0, the same texts every time): the
        10,000 commonest words and their idf settle long before (scikit-learn's fit reads ~2,500
        documents/s on 2 busy cores: 40 s for 100,000)."""
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

        if len(texts) > FIT_DOCUMENTS:
            chosen = np.sort(np.random.default_rng(0).choice(len(texts), FIT_DOCUMENTS, replace=False))
            texts = [texts[int(i)] for i in chosen]

        opts = checked_options(options)
        stop = sorted(ENGLISH_STOP_WORDS) if opts["stop_words"] == "english" else None
        vec = TfidfVectorizer(
            max_features=opts["vocabulary"],
            ngram_range=tuple(opts["ngrams"]),
            stop_words=stop,
            sublinear_tf=opts["sublinear_tf"],
            min_df=opts["min_df"] if len(texts) >= opts["min_df"] else 1,
            use_idf=opts["use_idf"],
            dtype=np.float64,
        )
        try:
            vec.fit(texts)
        except ValueError as exc:  # "empty vocabulary; perhaps the documents only contain stop words"
            raise DataError(f"cannot learn a vocabulary from these texts: {exc}") from None
        idf = vec.idf_ if opts["use_idf"] else None
        return cls(vec.get_feature_names_out().tolist(), idf, opts, stop)

    def analyze(self, text: str) -> list[str]:
        """A document's terms as scikit-learn's word analyzer makes them (lower-cased tokens of two
        or more word characters, stop words out, then the n-grams)."""
        tokens = [t for t in TOKEN.findall(text.lower()) if t not in self.stop]
        low, high = self.ngrams
        if high == 1:
            return tokens
        terms = list(tokens) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            terms += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return terms

    def counts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr (n+1,), columns, counts) of texts' known terms: csr's three arrays, columns sorted."""
        if self.ngrams == (1, 1) and len(texts):
            return self._word_counts(texts)
        indptr, columns, values = [0], [], []
        column = self.column
        for text in texts:
            found = Counter(c for c in map(column.get, self.analyze(text)) if c is not None)
            for c in sorted(found):
                columns.append(c)
                values.append(found[c])
            indptr.append(len(columns))
        return np.array(indptr, np.int64), np.array(columns, np.int32), np.array(values, np.float64)

    def _word_counts(self, texts: list[str], batch: int = 2_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """counts() of single words, a batch of texts at a time: the batch joined by NUL (a NUL in a
        text made a space first: both are non-word characters to the pattern) and split into tokens
        once, the tokens mapped to columns (unknown and stop words: -1, the separator: -2) and
        counted with numpy. On 100,000 documents ~4x faster than a Counter a text; ASCII batches
        split by str.split ~2x faster again (measured, bench dedup)."""
        lookup = {**{w: c for w, c in self.column.items() if len(w) > 1}, "\0": -2}  # TOKEN's are 2+
        indptr, cols = [np.zeros(1, np.int64)], []
        for start in range(0, len(texts), batch):
            part = texts[start : start + batch]
            joined = "\0".join(t.replace("\0", " ") for t in part).lower()
            if joined.isascii():
                tokens = joined.encode("ascii").translate(_ASCII_BREAKS).replace(b"\0", b" \0 ").decode("ascii").split()
            else:
                tokens = _TOKEN_OR_NUL.findall(joined)
            col = np.fromiter(map(lookup.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
            row = np.cumsum(col == -2)
            known = col >= 0
            keys, counts = np.unique(row[known] * self.width + col[known], return_counts=True)
            indptr.append(np.bincount(keys // self.width, minlength=len(part)))
            cols.append(np.stack([keys % self.width, counts]))
        both = np.concatenate(cols, axis=1) if cols else np.zeros((2, 0), np.int64)
        return np.cumsum(np.concatenate(indptr)), both[0].astype(np.int32), both[1].astype(np.float64)

    def weights(self, indptr: np.ndarray, columns: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """TF-IDF values of the csr arrays, each row L2-normalized -> (nnz,) float32."""
        v = np.log(counts) + 1.0 if self.options["sublinear_tf"] else counts.copy()
        if self.idf is not None:
            v *= self.idf[columns]
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        norms = np.sqrt(np.bincount(rows, weights=v * v, minlength=len(indptr) - 1))
        v /= np.where(norms > 0, norms, 1.0)[rows]
        return v.astype(np.float32)

    def transform(self, texts: list[str], dense: bool | None = None):
        """texts -> (n, width) float32 TF-IDF rows: a numpy array when dense (default: for at most
        DENSE_ROWS texts), else a scipy.sparse csr_matrix."""
        indptr, columns, counts = self.counts(texts)
        values = self.weights(indptr, columns, counts)
        if dense is None:
            dense = len(texts) <= DENSE_ROWS
        if dense:
            out = np.zeros((len(texts), self.width), np.float32)
            rows = np.repeat(np.arange(len(texts)), np.diff(indptr))
            out[rows, columns] = values
            return out
        from scipy.sparse import csr_matrix

        return csr_matrix((values, columns, indptr), shape=(len(texts), self.width))

    def header(self) -> dict:
        """The featurizer as JSON for the model file's header (input.featurizer)."""
        return {
            "kind": KIND,
            "options": _jsonable(self.options),
            "words": self.words,
            "idf": None if self.idf is None else self.idf.tolist(),  # float64 round-trips through JSON
            "stop_words": sorted(self.stop),
        }

    @classmethod
    def from_header(cls, header: dict) -> Tfidf:
        """The featurizer a model file's header describes (header() wrote it)."""
        if header.get("kind") != KIND:
            raise ValueError(f"unknown featurizer {header.get('kind')!r}")
        idf = header.get("idf")
        return cls(header["words"], None if idf is None else np.array(idf), header["options"], header["stop_words"])


def checked_options(options: dict) -> dict:
    """DEFAULTS updated with options, each checked; ParameterError naming the first wrong one."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ParameterError(f"unknown text option(s) {', '.join(sorted(unknown))}: use {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    if isinstance(opts["stop_words"], str) and opts["stop_words"].lower() == "none":  # none kept, not defaulted
        opts["stop_words"] = None
    low, high = (int(n) for n in opts["ngrams"])
    if not 1 <= low <= high <= 5:
        raise ParameterError(f"n-grams must be 1 <= shortest <= longest <= 5, got {opts['ngrams']}")
    if not isinstance(opts["vocabulary"], int) or opts["vocabulary"] < 2:
        raise ParameterError(f"the vocabulary must hold at least 2 words, got {opts['vocabulary']!r}")
    if opts["stop_words"] not in ("english", None):
        raise ParameterError(f"stop words are 'english' or none, got {opts['stop_words']!r}")
    if not isinstance(opts["min_df"], int) or opts["min_df"] < 1:
        raise ParameterError(f"min_df is a count of documents (>= 1), got {opts['min_df']!r}")
    return {**opts, "ngrams": (low, high)}


def _jsonable(options: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
