"""The benchmarks' peers at tiny sizes: the tie-aware recall@10 on hand-made cases, the approximate
k-NN peers (USearch when installed, FAISS's HNSW and IVF), the raw sqlite3 / COPY bulk-add peers
(the same rows as ours), and `bench serve` on replicas sharing one PostgreSQL store."""

import os

import faiss
import numpy as np
import pytest

from semhash.benchmarks import approx_peers, bench_serve, bulk_add
from semhash.benchmarks.postgres import postgres_url
from semhash.hashing.codes import one_bit_away

POSTGRES = os.environ.get("SEMHASH_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="SEMHASH_TEST_POSTGRES is not set")


def _codes(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint8)[:, None]  # 8-bit codes: distance = popcount(a ^ b)


def test_recall_counts_an_item_tied_with_the_kth_neighbour_as_correct():
    # distances from query 0b00000000: items 0..7 at 0, 1, 1, 2, 2, 2, 3, 8
    codes = _codes(0b0, 0b1, 0b10, 0b11, 0b101, 0b110, 0b111, 0xFF)
    q = _codes(0)
    exact = np.array([[0, 1, 1, 2]])  # the exact 4 nearest: 0, 1, 2 and one of the three at distance 2
    recall = approx_peers.recall_at_k
    assert recall(codes, q, exact, np.array([[0, 1, 2, 3]]), k=4) == 1.0
    assert recall(codes, q, exact, np.array([[0, 2, 1, 5]]), k=4) == 1.0  # another of the ties: as good
    assert recall(codes, q, exact, np.array([[0, 3, 4, 5]]), k=4) == 1.0  # ties at the 4th distance: all good
    assert recall(codes, q, exact, np.array([[0, 1, 2, 6]]), k=4) == 0.75  # distance 3 > the 4th's 2
    assert recall(codes, q, exact, np.array([[0, 1, 7, -1]]), k=4) == 0.5  # too far, and none
    assert recall(codes, q, exact, np.array([[0, 0, 1, 1]]), k=4) == 0.5  # an id twice counts once
    assert recall(codes, q, exact, np.array([[6, 1, 2, 3, 0]]), k=4) == 0.75  # only the first k count
    # at k = 3 the 3rd exact distance is 1: an item at 2 is no longer good enough
    assert recall(codes, q, exact[:, :3], np.array([[0, 2, 3]]), k=3) == pytest.approx(2 / 3)


def test_recall_averages_over_queries_and_agrees_with_faiss_on_ties():
    from faiss.contrib.evaluation import check_ref_knn_with_draws

    codes = _codes(0b0, 0b1, 0b10, 0b11, 0b101, 0b110, 0b111, 0xFF)
    q = _codes(0, 0xFF)
    flat = faiss.IndexBinaryFlat(8)
    flat.add(codes)
    exact, ids = flat.search(q, 4)
    assert approx_peers.recall_at_k(codes, q, exact, ids, k=4) == 1.0
    # the same answers with the ties at the last distance exchanged: FAISS's own check accepts them
    other = ids.copy()
    for row in range(2):
        at_last = np.flatnonzero(np.bitwise_count(codes[:, 0] ^ q[row, 0]) == exact[row, -1])
        other[row, -1] = next(i for i in at_last if i not in ids[row])
    check_ref_knn_with_draws(exact, ids, exact, other)
    assert approx_peers.recall_at_k(codes, q, exact, other, k=4) == 1.0
    half = ids.copy()
    half[1] = [-1, -1, -1, -1]
    assert approx_peers.recall_at_k(codes, q, exact, half, k=4) == 0.5


def _tiny(rng, bits=32, n=3000):
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    q = one_bit_away(codes, 200, rng)
    flat = faiss.IndexBinaryFlat(bits)
    flat.add(codes)
    exact, ids = flat.search(q, 10)
    return codes, q, exact, {"faiss-flat knn10": 1.0}


@pytest.mark.parametrize("bits", [32, 64])
def test_faiss_approximate_peers_sweep_and_report_recall_and_speed(rng, bits):
    codes, q, exact, qps = _tiny(rng, bits)
    recall, lines = {}, []
    out = approx_peers.approx_peers(codes, q, exact, qps, recall, threads=1, log=lines.append)
    for peer, knob in (("faiss-hnsw", "ef_search"), ("faiss-ivf", "nprobe")):
        entry = out[peer]
        assert entry["knob"] == knob and entry["build_s"] > 0 and entry["points"]
        assert all(0 <= p["recall10"] <= 1 and p["qps"] > 0 for p in entry["points"])
        assert entry["chosen"] in entry["points"] and entry["single_qps"] > 0
        assert qps[f"{peer} knn10"] == entry["chosen"]["qps"] and recall[f"{peer} knn10"] == entry["chosen"]["recall10"]
    assert out["faiss-ivf"]["params"]["nlist"] == 3000 // 39  # 4 sqrt(N) = 219, at most N / 39
    assert out["faiss-hnsw"]["chosen"]["recall10"] >= approx_peers.TARGET_RECALL  # easy at 3,000 codes


def test_usearch_peer_finds_the_neighbours_over_packed_bits(rng):
    pytest.importorskip("usearch")
    codes, q, exact, qps = _tiny(rng)
    recall, lines = {}, []
    out = approx_peers.approx_peers(codes, q, exact, qps, recall, threads=1, log=lines.append)
    entry = out["usearch-hnsw"]
    assert entry["params"]["metric"] == "hamming" and entry["params"]["dtype"] == "b1"
    assert recall["usearch-hnsw knn10"] >= approx_peers.TARGET_RECALL and qps["usearch-hnsw knn10 single"] > 0


def test_a_peer_whose_library_is_missing_is_skipped_with_a_line(rng, monkeypatch):
    def missing(codes, threads, rng):
        raise ImportError("No module named 'usearch'")

    monkeypatch.setattr(approx_peers, "APPROX_PEERS", {"usearch-hnsw": missing})
    codes, q, exact, qps = _tiny(rng)
    lines = []
    out = approx_peers.approx_peers(codes, q, exact, qps, {}, log=lines.append)
    assert "skipped" in out["usearch-hnsw"] and "usearch-hnsw knn10" not in qps
    assert any("usearch-hnsw: skipped" in line for line in lines)


@pytest.mark.parametrize("bits", [32, 64])
def test_bulk_add_is_measured_beside_a_raw_sqlite3_executemany_of_the_same_rows(rng, bits):
    lines = []
    row = bulk_add.bulk(2000, bits, rng, log=lines.append)  # asserts the raw peer's rows equal ours
    assert row["bulk_add_s"] > 0 and row["raw_sqlite_s"] > 0 and row["postgres"] is None
    assert row["bulk_add_vs_raw_sqlite"] == row["bulk_add_s"] / row["raw_sqlite_s"]
    assert any("raw sqlite3 executemany" in line and "ours / raw" in line for line in lines)


@needs_postgres
def test_bulk_add_into_postgres_is_measured_beside_a_raw_copy(rng):
    row = bulk_add.bulk(2000, 32, rng, postgres=postgres_url(POSTGRES), log=lambda line: None)
    pg = row["postgres"]
    assert pg["n"] == 2000 and pg["bulk_add_s"] > 0 and pg["raw_copy_s"] > 0 and "***" in pg["store"]


@needs_postgres
def test_bench_serve_loads_replicas_sharing_one_postgres_store(tmp_path):
    result = bench_serve.run(
        items=2000,
        clients=4,
        seconds=1,
        workers=(),
        out=tmp_path,
        log=lambda line: None,
        postgres=POSTGRES,
        replicas=(2,),
    )
    assert result["in_process"] is None and result["http"] == []
    rows = result["postgres"]["replicas"]
    assert [r["replicas"] for r in rows] == [2]  # (one replica: the same path)
    assert all(r["errors"] == 0 and r["requests"] > 0 and r["qps"] > 0 for r in rows)
    assert result["postgres"]["in_process"]["qps"] > 0 and (tmp_path / "serve.png").read_bytes()[:4] == b"\x89PNG"
