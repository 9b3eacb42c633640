"""Metrics against brute force: tie-aware AP is the mean AP over every order of the ties."""

from itertools import permutations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from semhash.hashing import codes, metrics
from semhash.hashing.errors import ParameterError


def ap_of_ranking(rel, k=None):
    """Plain AP of one ranked list of 0/1 relevances (top k, divided by relevant retrieved)."""
    rel = np.asarray(rel, dtype=float)
    top = rel if k is None else rel[:k]
    prec = np.cumsum(top) / np.arange(1, len(top) + 1)
    denom = rel.sum() if k is None else top.sum()
    return float((prec * top).sum() / denom) if denom else 0.0


def one_query(dist, rel, bits=8):
    total = np.bincount(dist, minlength=bits + 1)[None]
    relevant = np.bincount(dist, weights=rel, minlength=bits + 1).astype(np.int64)[None]
    return metrics.Histograms(total, relevant)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=7), st.integers(1, 8))
def test_tie_aware_ap_is_the_mean_over_all_tie_orders(items, k):
    dist = np.array([d for d, _ in items])
    rel = np.array([r for _, r in items], dtype=int)
    h = one_query(dist, rel, bits=3)
    orders = [p for p in permutations(range(len(items))) if list(dist[list(p)]) == sorted(dist)]
    brute_map = np.mean([ap_of_ranking(rel[list(p)]) for p in orders])
    assert metrics.average_precision(h)[0] == pytest.approx(brute_map)
    brute_p = np.mean([rel[list(p)][:k].sum() / k for p in orders])
    assert metrics.precision_recall_at_k(h, k)[0][0] == pytest.approx(brute_p)


def test_ap_at_k_without_ties_is_the_textbook_value():
    dist = np.array([0, 1, 2, 3, 4, 5, 6])
    rel = np.array([1, 0, 1, 0, 0, 1, 1])
    h = one_query(dist, rel)
    assert metrics.average_precision(h)[0] == pytest.approx(average_precision_score(rel, -dist))
    assert metrics.average_precision(h, 3)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_hamming_ball_precision_recall_and_empty_balls():
    # query 0 finds 2 items within radius 1, one relevant; query 1 finds nothing (precision 0, empty)
    q = codes.pack(np.array([[0] * 8, [1] * 8]))
    db = codes.pack(np.array([[0] * 8, [1] + [0] * 7, [0] * 4 + [1] * 4]))
    rel = metrics.label_relevance(np.array([0, 0]), np.array([0, 1, 0]))
    h = metrics.histograms(q, db, rel)
    p, r, empty = metrics.ball(h, 1)
    np.testing.assert_allclose(p, [0.5, 0.0])
    np.testing.assert_allclose(r, [0.5, 0.0])
    assert empty.tolist() == [False, True]
    curve = metrics.pr_curve(h)
    assert curve["recall"][-1] == 1.0 and len(curve["radius"]) == 9


def test_histograms_match_a_direct_count(rng):
    q = rng.integers(0, 256, (13, 4), dtype=np.uint8)
    db = rng.integers(0, 256, (300, 4), dtype=np.uint8)
    ql, dl = rng.integers(0, 3, 13), rng.integers(0, 3, 300)
    h = metrics.histograms(q, db, metrics.label_relevance(ql, dl), chunk=5)
    d = codes.hamming(q, db)
    for i in range(13):
        np.testing.assert_array_equal(h.total[i], np.bincount(d[i], minlength=33))
        np.testing.assert_array_equal(h.relevant[i], np.bincount(d[i][dl == ql[i]], minlength=33))


def test_neighbour_relevance_marks_the_true_neighbours(rng):
    x = rng.standard_normal((50, 5)).astype(np.float32)
    nn = metrics.euclidean_neighbours(x[:3], x, 4)
    assert (nn[:, 0] == [0, 1, 2]).all()  # each query is its own nearest neighbour
    rel = metrics.neighbour_relevance(nn, 50)(slice(0, 3))
    assert rel.sum() == 12 and rel[np.arange(3), nn[:, 1]].all()


def test_perfect_codes_score_one_and_recall_at_k_against_euclidean_neighbours(rng):
    c = rng.integers(0, 256, (40, 2), dtype=np.uint8)
    labels = np.arange(40)
    rep = metrics.evaluate(c, c, metrics.label_relevance(labels, labels), k=5, radius=0)
    assert rep.map_all == 1.0 and rep.precision_at_radius == 1.0 and rep.recall_at_k == 1.0


@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(k):
    h = one_query(np.array([0]), np.array([1]))
    with pytest.raises(ParameterError):
        metrics.average_precision(h, k)
