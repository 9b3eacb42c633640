"""The index store: items and codes in SQL (SQLite, and PostgreSQL when configured), derived search
structures rebuilt from SQL when missing, stale or corrupt, and search results that stay exact."""

import sqlite3
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semhash.hashing.codes import hamming
from semhash.hashing.errors import DataError, ItemNotFound
from semhash.index_store.index import Index
from semhash.index_store.query import item_codes
from semhash.index_store.storage import sqlite_bulk
from semhash.index_store.storage.store import Store, StoreError


def brute_force(index_codes, index_keys, queries, r):
    d = hamming(queries, index_codes)
    return [sorted((int(d[i, j]), index_keys[j]) for j in np.flatnonzero(d[i] <= r)) for i in range(len(queries))]


def as_pairs(found):
    """(distance, key) of each query's hits, in order of both: what brute_force gives."""
    return [sorted((h["distance"], h["key"]) for h in q["hits"]) for q in found["queries"]]


@pytest.fixture
def clustered(rng):
    """300 items of 32-bit codes around 5 centres, with keys and labels."""
    centres = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    which = rng.integers(0, 5, 300)
    flips = np.packbits(rng.random((300, 32)) < 0.06, axis=1, bitorder="little")
    return [f"item-{i}" for i in range(300)], centres[which] ^ flips, which


def test_build_search_and_read_back_metadata(store_target, index_name, clustered):
    keys, codes, labels = clustered
    idx = Index.create(store_target, index_name, bits=32)
    ids = idx.add(
        keys,
        codes,
        labels=labels,
        sources=[f"file://{k}.png" for k in keys],
        metas=[{"n": i} for i in range(300)],
        batch_size=64,
    )
    assert ids.tolist() == list(range(1, 301))
    found = idx.search(codes[:3], k=None, radius=3)
    assert as_pairs(found) == brute_force(codes, keys, codes[:3], 3)
    assert found["queries"][0]["query"] == codes[0].tobytes().hex()  # a query is named by its code
    first = found["queries"][0]["hits"][0]
    assert first["key"] == "item-0" and first["distance"] == 0 and first["label"] == labels[0]
    assert first["source"] == "file://item-0.png" and first["meta"] == {"n": 0}
    knn = [q["hits"] for q in idx.search(codes[:2], k=5, queries=["first", "second"])["queries"]]
    assert [len(q) for q in knn] == [5, 5] and [h["distance"] for h in knn[0]] == sorted(h["distance"] for h in knn[0])
    info = idx.info()
    assert info["items"] == 300 and info["bits"] == 32 and info["memory_bytes_per_item"] > 0


def test_reopen_uses_the_cache_and_detects_changes_by_another_writer(store_target, index_name, clustered):
    keys, codes, _ = clustered
    a = Index.create(store_target, index_name, bits=32)
    a.add(keys[:200], codes[:200])
    b = Index.open(store_target, index_name)
    assert len(b.searcher) == 200 and b.last_load == "cache"
    a.add(keys[200:250], codes[200:250])  # another writer, which refreshes the shared cache
    assert len(b.searcher) == 250 and b.last_load == "cache"
    Store(store_target).add(index_name, keys[250:], codes[250:])  # a writer that leaves the cache stale
    assert len(b.searcher) == 300 and b.last_load.startswith("rebuilt from SQL (stale")
    assert as_pairs(b.search(codes[:5], k=None, radius=2)) == brute_force(codes, keys, codes[:5], 2)


@pytest.mark.parametrize("damage", ["delete tables", "corrupt tables", "truncate manifest", "delete all"])
def test_a_damaged_cache_is_rebuilt_from_sql_with_unchanged_results(store_target, index_name, clustered, damage):
    keys, codes, _ = clustered
    idx = Index.create(store_target, index_name, bits=32)
    idx.add(keys, codes)
    before = idx.search(codes[:10], k=7)
    folder = idx.cache_folder
    if damage == "delete tables":
        (folder / "search.npz").unlink()
    elif damage == "corrupt tables":
        data = bytearray((folder / "search.npz").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / "search.npz").write_bytes(bytes(data))
    elif damage == "truncate manifest":
        (folder / "manifest.json").write_text("{")
    else:
        for f in folder.iterdir():
            f.unlink()
    again = Index.open(store_target, index_name)
    assert again.search(codes[:10], k=7) == before
    assert again.last_load.startswith("rebuilt from SQL")
    assert Index.open(store_target, index_name).searcher is not None  # and the cache is good again


def test_remove_items_incrementally(store_target, index_name, clustered):
    keys, codes, _ = clustered
    idx = Index.create(store_target, index_name, bits=32)
    idx.add(keys, codes)
    removed = idx.remove(keys[:100])
    assert len(removed) == 100 and idx.store.count(index_name) == 200
    assert as_pairs(idx.search(codes[:10], k=None, radius=4)) == brute_force(codes[100:], keys[100:], codes[:10], 4)
    with pytest.raises(StoreError, match="not in index.*nothing removed"):
        idx.remove(["item-150", "no-such-key"])
    assert idx.store.count(index_name) == 200


def test_a_failing_batch_leaves_nothing_behind(store_target, index_name, clustered):
    keys, codes, _ = clustered
    idx = Index.create(store_target, index_name, bits=32)
    idx.add(keys[:10], codes[:10])
    with pytest.raises(StoreError, match="already in index"):
        idx.add(keys[5:20], codes[5:20])  # keys 5..9 collide
    with pytest.raises(DataError, match="32-bit codes"):
        idx.add(["x"], np.zeros((1, 8), np.uint8))
    assert idx.store.count(index_name) == 10 and len(idx.searcher) == 10


def test_a_hand_edited_next_item_id_is_one_clear_error(tmp_path):
    """The id the next item gets is read with the index row (a build guesses its items' ids from
    it): a value that is no positive integer is a damaged index, for writers and readers alike."""
    db = tmp_path / "edited.db"
    Index.create(db, "first", bits=8).add(["a"], np.zeros((1, 1), np.uint8))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE semhash_indexes SET next_item = 'soon'")
    for mode in ("write", "read"):
        with pytest.raises(StoreError, match="index 'first' is damaged"):
            Index.open(db, "first", mode=mode)


def test_a_foreign_table_beside_ours_is_no_concern_of_the_reader(tmp_path):
    db = tmp_path / "shared.db"
    Index.create(db, "first", bits=8).add(["a"], np.zeros((1, 1), np.uint8))
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE "order lines" ("first column" TEXT)')
    assert (
        Index.open(db, "first", mode="read").search(np.zeros((1, 1), np.uint8), k=1)["queries"][0]["hits"][0]["key"]
        == "a"
    )


def test_ties_reranked_by_stored_vectors(store_target, index_name):
    idx = Index.create(store_target, index_name, bits=8)
    vectors = np.array([[3.0, 0], [1.0, 0], [2.0, 0]], np.float32)
    idx.add(["far", "near", "mid"], np.zeros((3, 1), np.uint8), vectors=vectors)
    hits = idx.search(np.zeros((1, 1), np.uint8), k=3, query_vectors=np.zeros((1, 2), np.float32))
    assert [h["key"] for h in hits["queries"][0]["hits"]] == ["near", "mid", "far"]


def test_missing_index_and_duplicate_index_are_clear_errors(store_target, index_name):
    with pytest.raises(StoreError, match=f"no index named '{index_name}'"):
        Index.open(store_target, index_name)
    Index.create(store_target, index_name, bits=16)
    with pytest.raises(StoreError, match="already exists"):
        Index.create(store_target, index_name, bits=16)


def test_unreachable_database_is_one_clear_error():
    with pytest.raises(StoreError, match="cannot open database"):
        Store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="folder .* does not exist"):
        Store("/no/such/folder/items.db")


def test_a_second_sqlite_writer_waits_then_fails_clearly(tmp_path, monkeypatch, clustered):
    import semhash.index_store.storage.sqlite_locks as locks

    keys, codes, _ = clustered
    monkeypatch.setattr(locks, "BUSY_TIMEOUT_MS", 200)
    idx = Index.create(str(tmp_path / "l.db"), "x", bits=32)
    holder = idx.store.engine.execution_options(semhash_write=True).connect()
    holder.begin()  # BEGIN IMMEDIATE: holds the write lock
    try:
        with pytest.raises(StoreError, match="locked by another writer"):
            Index.open(str(tmp_path / "l.db"), "x").add(keys[:3], codes[:3])
    finally:
        holder.rollback()
        holder.close()
    idx.add(keys[:3], codes[:3])
    assert idx.store.count("x") == 3


def test_a_writer_waits_for_the_lock_to_turn_wal_on(tmp_path, clustered):
    """Two servers start on a file a command left in rollback-journal mode and write at once: the
    second's first write waits for the first's, where SQLite alone refuses the switch to WAL at once."""
    keys, codes, _ = clustered
    target = str(tmp_path / "j.db")
    Index.create(target, "x", bits=32).store.checkpoint()
    mode = lambda: sqlite3.connect(target).execute("PRAGMA journal_mode").fetchone()[0]  # noqa: E731
    assert mode() == "delete"
    holder = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the other server's write, in flight
    threading.Timer(0.3, holder.execute, ("COMMIT",)).start()
    Index.open(target, "x").add(keys[:3], codes[:3])
    assert Store(target).count("x") == 3 and mode() == "wal"


def test_a_writer_between_batches_voids_the_structures_built_ahead(tmp_path, clustered):
    keys, codes, _ = clustered
    target = str(tmp_path / "w.db")
    idx = Index.create(target, "w", bits=32)
    idx.add(keys[:100], codes[:100])
    other = Store(target)

    def meanwhile(done):  # after the first batch: another writer takes the ids the rest expected
        if done == 50:
            other.add("w", keys[250:], codes[250:])

    ids = idx.add(keys[100:250], codes[100:250], batch_size=50, progress=meanwhile)
    assert ids.tolist() == list(range(101, 151)) + list(range(201, 301))
    assert idx.searcher.ids.tolist() == Store(target).load_codes("w")[0].tolist()
    assert as_pairs(idx.search(codes[:5], k=None, radius=2)) == brute_force(codes, keys, codes[:5], 2)


def test_structures_a_reader_installs_mid_write_are_not_updated_twice(tmp_path, clustered):
    keys, codes, _ = clustered
    target = str(tmp_path / "r.db")
    idx = Index.create(target, "r", bits=32)
    idx.add(keys[:100], codes[:100])
    other = Store(target)

    def meanwhile(done):  # ours is committed: a reader installs what SQL now holds, then another writer adds
        assert len(idx.searcher) == 101
        other.add("r", keys[200:201], codes[200:201])

    idx.add(keys[100:101], codes[100:101], progress=meanwhile)
    assert idx.searcher.ids.tolist() == Store(target).load_codes("r")[0].tolist() == list(range(1, 103))


operations = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "reopen"]), st.integers(1, 25)), min_size=1, max_size=6
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations, st.integers(0, 2**31))
def test_search_stays_exact_through_adds_removes_and_rebuilds(tmp_path_factory, ops, seed):
    rng = np.random.default_rng(seed)
    target = str(tmp_path_factory.mktemp("prop") / "p.db")
    idx = Index.create(target, "p", bits=16)
    alive: dict[str, np.ndarray] = {}
    counter = 0
    for op, n in ops:
        if op == "add":
            keys = [f"k{counter + i}" for i in range(n)]
            counter += n
            new = rng.integers(0, 256, (n, 2), dtype=np.uint8) & np.uint8(0x3F)  # dense: many hits
            idx.add(keys, new, batch_size=int(rng.integers(1, 30)))  # several batches: structures built ahead
            alive.update(zip(keys, new))
        elif op == "remove" and alive:
            gone = list(alive)[: min(n, len(alive))]
            idx.remove(gone)
            for k in gone:
                del alive[k]
        else:
            idx = Index.open(target, "p")
        queries = rng.integers(0, 256, (4, 2), dtype=np.uint8) & np.uint8(0x3F)
        keys = list(alive)
        codes = np.array([alive[k] for k in keys], dtype=np.uint8).reshape(-1, 2)
        assert as_pairs(idx.search(queries, k=None, radius=3)) == brute_force(codes, keys, queries, 3)
    idx.rebuild()
    assert as_pairs(idx.search(queries, k=None, radius=3)) == brute_force(codes, keys, queries, 3)


def test_a_cache_serves_only_the_index_it_was_built_from(tmp_path):
    """Names that would share a folder (x/y, x_y) do not, and a cache copied in from another index
    - or a manifest that is valid JSON but no object - is rebuilt from SQL, never trusted."""
    import shutil

    rng = np.random.default_rng(5)
    db = str(tmp_path / "two.db")
    a, b = Index.create(db, "x/y", bits=16), Index.create(db, "x_y", bits=16)
    a.add([f"a{i}" for i in range(50)], rng.integers(0, 256, (50, 2), dtype=np.uint8))
    b.add([f"b{i}" for i in range(50)], rng.integers(0, 256, (50, 2), dtype=np.uint8))
    assert a.cache_folder != b.cache_folder
    q = rng.integers(0, 256, (3, 2), dtype=np.uint8)
    assert {h["key"][0] for query in Index.open(db, "x/y").search(q, k=5)["queries"] for h in query["hits"]} == {"a"}

    shutil.rmtree(a.cache_folder)
    shutil.copytree(b.cache_folder, a.cache_folder)  # the other index's structures, same generation
    again = Index.open(db, "x/y")
    assert {h["key"][0] for query in again.search(q, k=5)["queries"] for h in query["hits"]} == {"a"}
    assert again.last_load.startswith("rebuilt") and "another index" in again.last_load

    (a.cache_folder / "manifest.json").write_text("[]")
    third = Index.open(db, "x/y")
    assert len(third.searcher) == 50 and third.last_load.startswith("rebuilt")


item_values = st.lists(
    st.tuples(
        # key: text of at least one character, none a control character (validate.py)
        st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=12).filter(lambda k: k != "first"),
        st.one_of(st.none(), st.integers(-(2**40), 2**40)),  # label
        st.one_of(st.none(), st.text(max_size=8)),  # source
        st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)),  # meta
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda row: row[0],
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=item_values, some=st.sampled_from(["all", "keys", "int labels"]), ordered=st.booleans())
def test_sqlite_column_bulk_path_stores_what_executemany_stores(tmp_path_factory, rows, some, ordered):
    """SQLite's bulk path (whole columns cut apart inside SQLite) writes exactly the rows the driver's
    row-by-row executemany writes: any Unicode key, quotes, None among labels, big and negative
    labels, sources, metadata, vectors (and NUL characters in sources, which send rows the other way); keys in
    any order, or ascending (then rows go in as given, ids numbered inside SQLite)."""
    if ordered:
        rows = sorted(rows)
    keys = [r[0] for r in rows]
    labels = [r[1] for r in rows] if some == "all" else None
    if some == "int labels":
        labels = np.array([r[1] or 0 for r in rows], dtype=np.int64)
    sources = [r[2] for r in rows] if some == "all" else None
    metas = [r[3] for r in rows] if some == "all" else None
    rng = np.random.default_rng(len(rows))
    codes = rng.integers(0, 256, (len(rows), 2), dtype=np.uint8)
    vectors = rng.normal(size=(len(rows), 3)).astype(np.float32)
    dumps = []
    for bulk in (True, False):
        path = tmp_path_factory.mktemp("bulk") / "s.db"
        store = Store(path)
        store.create_index("x", 16)
        store.add("x", ["first"], codes[:1])  # ids continue from an earlier batch
        with pytest.MonkeyPatch.context() as patch:
            if not bulk:  # the generic path: the driver's executemany, a row a time
                patch.setattr(sqlite_bulk, "available", lambda: False)
            patch.setattr(sqlite_bulk, "CHUNK_ROWS", 7)  # several statements per column
            patch.setattr(sqlite_bulk, "CHUNK_BYTES", 16)
            store.add("x", keys, codes, labels, sources, metas, vectors)
        with sqlite3.connect(path) as conn:
            dumps.append(
                [
                    conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                    for t in ("semhash_items", "semhash_vectors")
                ]
            )
    assert dumps[0] == dumps[1]


def test_bulk_add_into_a_utf16_database_and_refused_labels(tmp_path):
    """A database created UTF-16 by another tool reads the same ids and labels back; labels that are
    not 64-bit integers are refused in one line (DataError), before anything is written."""
    path = tmp_path / "utf16.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA encoding='UTF-16le'")
        conn.execute("CREATE TABLE other (x)")
    store = Store(path)
    store.create_index("x", 16)
    codes = np.arange(6, dtype=np.uint8).reshape(3, 2)
    assert store.add("x", ["a", "b", "c"], codes, labels=[10, None, 30]).tolist() == [1, 2, 3]
    assert [store.items("x", [i])[i]["label"] for i in (1, 2, 3)] == [10, None, 30]
    for bad in ([2**64, 1, 2], np.array([2**63, 1, 2], dtype=np.uint64), ["one", 1, 2], [0.5, 1, 2]):
        with pytest.raises(DataError, match="labels must"):
            store.add("x", ["d", "e", "f"], codes, labels=bad)
    assert store.count("x") == 3


def test_codes_of_stored_items_come_from_sql_whatever_another_writer_did(tmp_path):
    """Searching by stored items reads their codes from SQL with their keys, in one snapshot: an
    item that another writer (a second replica) removed and added again under a new code is asked
    with its new code, though this process's searcher still holds the old one; never a stale or a
    neighbour's code. The SQLite reader of read-only commands answers the same."""
    from semhash.index_store.storage.sqlite_reader import SqliteReader

    codes = np.array([[1, 0], [2, 0], [3, 0]], dtype=np.uint8)
    here = Index.create(tmp_path / "i.db", "x", 16)
    here.add(["a", "b", "c"], codes)
    assert here.searcher.codes.tolist() == codes.tolist()  # this replica's structures, held in memory
    other = Index.open(tmp_path / "i.db", "x")
    other.remove(["b"])
    other.add(["b"], np.array([[9, 9]], dtype=np.uint8))
    # a replica whose structures lag behind SQL (taken as current): they are not asked for the codes
    here._current = (here._current[0], here.store.get_index("x").stamp)
    np.testing.assert_array_equal(item_codes(here, ["c", "b", "c"]), [[3, 0], [9, 9], [3, 0]])
    reader = SqliteReader(f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "i.db")
    assert reader.codes_of("x", ["b", "a", "zz"]) == here.store.codes_of("x", ["b", "a", "zz"])
    assert here.store.codes_of("x", ["b", "a", "zz"]) == {"b": bytes([9, 9]), "a": bytes([1, 0])}
    with pytest.raises(ItemNotFound, match="no item 'zz'"):
        item_codes(here, ["a", "zz"])


def test_stored_blobs_are_stacked_as_read_and_refused_when_their_widths_differ():
    from semhash.index_store.storage.records import stacked_blobs

    ids, flat = stacked_blobs(iter([(3, b"ab"), (7, b"cd")]), 2)
    assert ids.tolist() == [3, 7] and flat.tolist() == [[97, 98], [99, 100]]
    assert stacked_blobs(iter([(3, b"ab"), (7, b"cde")]), 2)[1] is None
    assert stacked_blobs(iter([]), 0)[1] is None
