"""Hamming search invariants: radius search is exactly the brute-force ball; k-NN agrees with FAISS.

Compared the way faiss/contrib/evaluation.py compares k-NN results: equal distances, and equal id
sets within each tied distance (except the last one, which the cut at k may split anywhere).
"""

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semhash.hashing.codes import hamming
from semhash.hashing.errors import ParameterError
from semhash.index_store.engine import knn_tables
from semhash.index_store.engine import searcher as searcher_module
from semhash.index_store.engine.hashtable import HashTable
from semhash.index_store.engine.knn_tables import KnnTables
from semhash.index_store.engine.searcher import Searcher, vector_rerank


@st.composite
def databases(draw):
    """Codes clustered around a few centres (so balls are not empty and ties are common)."""
    bits = draw(st.sampled_from([8, 16, 32, 64, 128]))
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (4, bits // 8), dtype=np.uint8)
    noise = (rng.random((n, bits)) < draw(st.sampled_from([0.02, 0.1, 0.5]))).astype(np.uint8)
    codes = centres[rng.integers(0, 4, n)] ^ np.packbits(noise, axis=1, bitorder="little")
    ids = rng.permutation(10 * n)[:n].astype(np.int64) + 1000
    queries = centres[rng.integers(0, 4, 5)] ^ np.packbits(rng.random((5, bits)) < 0.05, axis=1, bitorder="little")
    return ids, codes, queries


def brute_radius(ids, codes, queries, r):
    d = hamming(queries, codes)
    return [sorted(zip(d[i][d[i] <= r].tolist(), ids[d[i] <= r].tolist())) for i in range(len(queries))]


@settings(max_examples=80, deadline=None)
@given(databases(), st.integers(0, 6), st.sampled_from([None, 1, 2, 3, 5]))
def test_radius_search_returns_exactly_the_brute_force_ball(db, r, m):
    ids, codes, queries = db
    bits = codes.shape[1] * 8
    m = m if m is None or bits <= 64 * m else None  # substrings must fit 64-bit keys
    searcher = Searcher(ids, codes, m=m)
    res = searcher.radius(queries, r)
    for i, expected in enumerate(brute_radius(ids, codes, queries, r)):
        got_ids, got_d = res[i]
        assert sorted(zip(got_d.tolist(), got_ids.tolist())) == expected
        assert (np.diff(got_d) >= 0).all()


def assert_knn_matches_reference(got_ids, got_d, ref_ids, ref_d):
    """faiss/contrib/evaluation.py's check: same distances; same id sets within each complete tie."""
    np.testing.assert_array_equal(got_d, ref_d)
    if len(ref_d) == 0:
        return
    for dist in np.unique(ref_d)[:-1]:
        assert set(got_ids[got_d == dist]) == set(ref_ids[ref_d == dist])


@settings(max_examples=80, deadline=None)
@given(databases(), st.integers(1, 40))
def test_knn_agrees_with_faiss_index_binary_flat(db, k):
    ids, codes, queries = db
    searcher = Searcher(ids, codes)
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(codes.shape[1] * 8))
    index.add_with_ids(codes, ids)
    ref_d, ref_ids = index.search(queries, min(k, len(ids)))
    res = searcher.knn(queries, k)
    for i in range(len(queries)):
        got_ids, got_d = res[i]
        assert_knn_matches_reference(got_ids, got_d, ref_ids[i], ref_d[i])


def test_every_strategy_gives_the_same_answer(rng):
    codes = rng.integers(0, 256, (5000, 4), dtype=np.uint8)
    queries = codes[:50] ^ np.uint8(1)
    s = Searcher(np.arange(5000), codes, m=2)
    answers = []
    for plan in (("mih", 1), ("mih", 2), ("scan", 0)):
        s.plan = lambda radius, nq=0, plan=plan: plan
        r = s.radius(queries, 3)
        answers.append((r.offsets.tolist(), r.ids.tolist(), r.distances.tolist()))
    assert answers[0] == answers[1] == answers[2]


def test_knn_falls_back_to_a_scan_when_the_ball_would_cost_more(rng):
    codes = rng.integers(0, 256, (2000, 32), dtype=np.uint8)  # 256-bit random codes: neighbours are far
    s = Searcher(np.arange(2000), codes)
    res = s.knn(codes[:3] ^ np.uint8(255), 5)
    ref_d, _ = s.faiss_index.search(codes[:3] ^ np.uint8(255), 5)
    np.testing.assert_array_equal(res.distances.reshape(3, 5), ref_d)


def test_ties_are_reranked_by_float_vectors():
    codes = np.zeros((3, 1), dtype=np.uint8)  # all three items at Hamming distance 0
    vectors = np.array([[5.0], [1.0], [3.0]], dtype=np.float32)
    s = Searcher(np.array([10, 11, 12]), codes)
    res = s.knn(codes[:1], 3, rerank=vector_rerank(np.array([[0.0]], np.float32), vectors))
    assert res[0][0].tolist() == [11, 12, 10]


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 63), min_size=1, max_size=300),
    direct=st.booleans(),
    shift=st.sampled_from([0, 14, 26]),
)
def test_hash_table_lookup_finds_every_match(keys, direct, shift):
    # few distinct keys, many duplicates, and key 0 (the empty marker's first choice) often present
    keys = np.array(keys, dtype=np.uint64) << np.uint64(shift)
    table = HashTable.build(keys, 6 + shift, direct=direct and shift < 20)
    probes = np.concatenate([keys[:50], (np.arange(64, dtype=np.uint64) << np.uint64(shift)) ^ np.uint64(1)])
    pi, pos = table.lookup(probes)
    got = sorted(zip(pi.tolist(), pos.tolist()))
    expected = sorted((i, j) for i, p in enumerate(probes) for j in np.flatnonzero(keys == p))
    assert got == expected
    again = HashTable.from_arrays(table.arrays())
    assert sorted(zip(*(a.tolist() for a in again.lookup(probes)))) == expected


def test_bad_queries_are_refused(rng):
    s = Searcher(np.arange(10), rng.integers(0, 256, (10, 4), dtype=np.uint8))
    with pytest.raises(ParameterError, match="32-bit packed codes"):
        s.radius(np.zeros((1, 8), np.uint8), 1)
    with pytest.raises(ParameterError, match="k must be positive"):
        s.knn(np.zeros((1, 4), np.uint8), 0)
    with pytest.raises(ParameterError, match="between 0 and the code length 32"):
        s.radius(np.zeros((1, 4), np.uint8), 33)


@settings(max_examples=80, deadline=None)
@given(databases(), st.integers(1, 40), st.sampled_from([0.0, 0.25, float("inf")]), st.sampled_from([None, 0, 1]))
def test_compiled_knn_tables_agree_with_brute_force(db, k, sweep_from, stop):
    """knn_tables' rounds, probe by probe and swept in bucket order: every query they finish has
    exactly the brute-force distances; the queries they leave are those whose k-th neighbour lies
    beyond the last round's reach."""
    ids, codes, queries = db
    if codes.shape[1] > 8:
        return  # the compiled tables hold codes of at most 64 bits
    k = min(k, len(ids))
    tables = KnnTables.build(codes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(knn_tables, "SWEEP_FROM", sweep_from)
        dist, pos, done = tables.search(queries, k, stop)
    true = hamming(queries, codes)
    m, last = len(tables.tables), tables.max_radius if stop is None else min(stop, tables.max_radius)
    for i in range(len(queries)):
        reference = np.sort(true[i])[:k]
        if done[i]:
            np.testing.assert_array_equal(dist[i], reference)
            np.testing.assert_array_equal(true[i][pos[i]], dist[i])  # each position at its distance
            assert len(set(pos[i].tolist())) == k
        else:
            assert reference[-1] > m * last + m - 1  # not done only when out of the rounds' reach


@settings(max_examples=40, deadline=None)
@given(databases(), st.integers(1, 40))
def test_searcher_knn_through_the_compiled_path_agrees_with_faiss(db, k):
    ids, codes, queries = db
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(searcher_module, "COMPILED_KNN_FROM", 0)  # small databases too
        s = Searcher(ids, codes)
        plan = s.planner.knn_plan(min(k, len(ids)))
        res = s.mih_knn(queries, min(k, len(ids)), plan)
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(codes.shape[1] * 8))
    index.add_with_ids(codes, ids)
    ref_d, ref_ids = index.search(queries, min(k, len(ids)))
    for i in range(len(queries)):
        got_ids, got_d = res[i]
        assert_knn_matches_reference(got_ids, got_d, ref_ids[i], ref_d[i])


def test_compiled_knn_keeps_the_first_positions_of_a_tie_whatever_the_batch(rng):
    """Of items tied at the k-th distance, the compiled rounds keep those of the first positions
    (ids, for an index): the same answer alone, in any batch, swept or probed, and as FAISS's scan."""
    codes = rng.integers(0, 256, (20_000, 2), dtype=np.uint8)  # 16-bit codes: ties everywhere
    queries = rng.integers(0, 256, (200, 2), dtype=np.uint8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(searcher_module, "COMPILED_KNN_FROM", 0)
        s = Searcher(np.arange(20_000), codes)
        plan = s.planner.knn_plan(5)
        batch = s.mih_knn(queries, 5, plan).ids
        alone = np.concatenate([s.mih_knn(queries[i : i + 1], 5, plan).ids for i in range(200)])
    np.testing.assert_array_equal(batch, alone)
    np.testing.assert_array_equal(batch, s.scan_knn(queries, 5).ids)
