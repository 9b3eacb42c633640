"""The text featurizer and sparse inputs: the TF-IDF a query is read with is scikit-learn's
(written again without it, so queries start fast), and every hasher takes a scipy.sparse matrix
without densifying it, giving the codes of the same rows dense."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random
from sklearn.feature_extraction.text import TfidfVectorizer

from semhash.hashing.data import data_root
from semhash.hashing.hasher import InputSpec
from semhash.hashing.inputs.vectorizer import Tfidf
from semhash.hashing.methods import make_hasher

DOCS = [
    "The shuttle's launch was delayed: NASA's engineers found a leak!",
    "Hockey season starts; the Leafs won 4-2 against Montreal.",
    "A recipe: two eggs, flour, sugar -- bake at 180 degrees.",
    "the the the shuttle shuttle orbit orbit orbit",
    "Ünïcode wörds and ÉCOLE café, naïve résumé",
    "x y z",  # no token of two characters: an empty row
    "",
]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ngrams": (1, 2), "stop_words": None, "min_df": 1},
        {"ngrams": (2, 3), "sublinear_tf": False, "use_idf": False, "min_df": 1},
    ],
)
def test_transform_is_scikit_learns(options):
    docs = DOCS * 3
    ours = Tfidf.fit(docs, **{"min_df": 1, **options})
    opts = ours.options
    theirs = TfidfVectorizer(
        vocabulary=ours.words,
        ngram_range=opts["ngrams"],
        stop_words=sorted(ours.stop) or None,
        sublinear_tf=opts["sublinear_tf"],
        use_idf=opts["use_idf"],
    ).fit(docs)
    if ours.idf is not None:
        assert np.allclose(theirs.idf_, ours.idf)
    expected = theirs.transform(DOCS).toarray()
    assert np.allclose(ours.transform(DOCS, dense=True), expected, atol=1e-6)
    assert np.allclose(ours.transform(DOCS, dense=False).toarray(), expected, atol=1e-6)


def test_transform_is_scikit_learns_on_20_newsgroups():
    path = data_root() / "20newsgroups"
    if not (path / "test.jsonl").is_file():
        pytest.skip(f"20 Newsgroups not in {path}")
    with open(path / "train.jsonl") as f:
        train = [json.loads(line)["text"] for line in f]
    with open(path / "test.jsonl") as f:
        test = [json.loads(line)["text"] for line in f]
    ours = Tfidf.fit(train)
    theirs = TfidfVectorizer(vocabulary=ours.words, stop_words=sorted(ours.stop), sublinear_tf=True)
    theirs.idf_ = ours.idf
    difference = abs(ours.transform(test, dense=False) - theirs.transform(test)).max()
    assert difference < 1e-6


def test_the_featurizer_round_trips_through_its_header():
    featurizer = Tfidf.fit(DOCS, min_df=1, ngrams=(1, 2))
    again = Tfidf.from_header(json.loads(json.dumps(featurizer.header())))
    assert again.normalization == featurizer.normalization
    assert np.array_equal(again.transform(DOCS), featurizer.transform(DOCS))
    other = Tfidf.fit(DOCS[:4], min_df=1)
    assert other.normalization != featurizer.normalization


@pytest.mark.parametrize("method", ["lsh", "pcah", "itq"])
def test_hashers_take_sparse_rows_as_their_dense_copies(method):
    x = sparse_random(400, 300, density=0.03, format="csr", dtype=np.float32, random_state=0)
    hasher = make_hasher(method, bits=32).fit(x, spec=InputSpec((300,)))
    assert np.array_equal(hasher.encode(x), hasher.encode(x.toarray()))
    dense = make_hasher(method, bits=32).fit(x.toarray())
    if method == "lsh":  # the same hyperplanes and mean, however the rows came
        assert np.array_equal(hasher.encode(x), dense.encode(x.toarray()))
    else:  # the sparse PCA (ARPACK) spans the dense one's principal subspace
        assert _same_subspace(hasher, dense)


def _same_subspace(a, b) -> bool:
    """PCA's directions are defined up to sign (and ITQ rotates them): compare the projections' spans."""
    qa, _ = np.linalg.qr(a.projection_)
    qb, _ = np.linalg.qr(b.projection_)
    return np.linalg.svd(qa.T @ qb, compute_uv=False).min() > 0.99


def test_the_numpy_encoder_takes_sparse_rows():
    from semhash.hashing.autoencoder.numpy_encoder import NumpyAEHasher, mlp_shapes

    arch = {"input_shape": [50], "bits": 16, "bottleneck": "noise", "hidden": [20], "conv": False, "noise_std": 0.0}
    rng = np.random.default_rng(0)
    tensors = {k: rng.normal(size=s).astype(np.float32) for k, s in mlp_shapes(arch).items()}
    hasher = NumpyAEHasher(bits=16)
    hasher.spec_ = InputSpec((50,))
    hasher._set_state(tensors, {"architecture": arch})
    x = csr_matrix(sparse_random(30, 50, density=0.1, random_state=1, dtype=np.float32))
    assert np.array_equal(hasher.encode(x), hasher.encode(x.toarray()))


def test_a_corpus_is_never_made_dense(monkeypatch):
    """fit and encode of many sparse rows: a dense (n, d) copy would be refused here."""
    x = sparse_random(2000, 5000, density=0.002, format="csr", dtype=np.float32, random_state=0)
    monkeypatch.setattr(type(x), "toarray", lambda *a, **k: pytest.fail("densified"))
    monkeypatch.setattr(type(x), "todense", lambda *a, **k: pytest.fail("densified"))
    hasher = make_hasher("itq", bits=16).fit(x, spec=InputSpec((5000,)))
    assert hasher.encode(x).shape == (2000, 2)


def test_a_large_corpus_learns_its_vocabulary_from_a_seeded_sample(monkeypatch):
    import semhash.hashing.inputs.vectorizer as vectorizer

    monkeypatch.setattr(vectorizer, "FIT_DOCUMENTS", 4)
    docs = [f"apple{i} banana{i} shared words here" for i in range(40)]
    first, again = Tfidf.fit(docs, min_df=1), Tfidf.fit(docs, min_df=1)
    assert first.words == again.words  # the same sample every time
    assert sum(w.startswith("apple") for w in first.words) == 4  # four documents' words, not forty
    assert {"shared", "words"} <= set(first.words)


def test_word_counts_of_a_batch_are_each_texts_own_terms():
    """Counted a batch at a time (texts joined by NUL): no word leaks into a neighbour's row; an
    ASCII batch (split by str.split) and another (the regex) find the analyzer's words."""
    from collections import Counter

    odd = ["it's e.g. a_b--c3 x y zz\x1fshuttle", "café über naïve shuttle_2 x 中文 café"]
    texts = DOCS + ["tab\tand NUL\0inside shuttle", "shuttle", *odd]
    ours = Tfidf.fit(DOCS * 3 + odd, min_df=1, stop_words=None)
    assert {"a_b", "c3", "zz", "café", "shuttle_2", "中文"} <= set(ours.words)
    for batch in (1, 3):  # one text a batch: odd[0]'s is ASCII, odd[1]'s is not
        indptr, columns, counts = ours._word_counts(texts, batch=batch)
        for k, text in enumerate(texts):
            expected = Counter(c for c in map(ours.column.get, ours.analyze(text)) if c is not None)
            row = slice(indptr[k], indptr[k + 1])
            assert dict(zip(columns[row].tolist(), counts[row].tolist())) == expected
