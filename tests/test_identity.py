"""Derived structures answer only for the SQL they were built from: each index has a uid that is
never reused, each committed change writes a fresh random state, and every user of derived state
- the disk cache, an open Index, a server's per-request check - compares (uid, state) with SQL.

Two ways an identity by counters failed: an index dropped and built again under its name (with as
many items, at the same generation, and on SQLite the same row id) was answered from the dropped
one's structures; and two copies of a store, changed apart by one write each, shared a generation,
so a copy put back in place of the other was answered from the other's cache."""

import shutil

import httpx
import numpy as np
import pytest
from servers import free_port, start_server

import semhash
from semhash.index_store.index import Index
from semhash.index_store.storage.store import Store

OLD = {f"old-{i}": [i, 0] for i in range(8)}  # key -> its 16-bit code
NEW = {f"new-{i}": [7 - i, 0] for i in range(8)}  # the same codes, other keys, in the other order
ZERO = np.zeros((1, 2), np.uint8)  # the query: "0000", old-0's code and new-7's


def codes_of(items: dict) -> np.ndarray:
    return np.array(list(items.values()), np.uint8)


def build_again(target, name: str) -> None:
    """Drop index `name` and build another under that name from NEW, by the store alone: one write
    for the items, as the dropped one had (so the same generation and item ids), and no cache
    written (so the one left from the dropped index is there to be refused)."""
    store = Store(target, "write")
    store.drop_index(name)
    store.create_index(name, 16)
    store.add(name, list(NEW), codes_of(NEW))
    store.engine.dispose()


def exact(hits: list[dict]) -> set[str]:
    return {h["key"] for h in hits if h["distance"] == 0}


def test_a_server_serves_the_index_built_again_under_its_name(own_schema, index_name):
    Index.create(own_schema, index_name, bits=16).add(list(OLD), codes_of(OLD))
    port = free_port()
    server = start_server(own_schema, port)  # its cache folder: the test's XDG_CACHE_HOME, as ours

    def search() -> set[str]:
        body = {"codes": ["0000"], "k": 10, "radius": 0}
        r = httpx.post(f"http://127.0.0.1:{port}/indexes/{index_name}/search", json=body, timeout=30)
        assert r.status_code == 200, r.text
        return exact(r.json()["queries"][0]["hits"])

    try:
        assert search() == {"old-0"}
        build_again(own_schema, index_name)
        assert search() == {"new-7"}
    finally:
        server.terminate()
        server.wait(30)


def test_an_open_index_answers_for_the_index_built_again_under_its_name(store_target, index_name):
    Index.create(store_target, index_name, bits=16).add(list(OLD), codes_of(OLD))
    opened = Index.open(store_target, index_name)
    assert exact(opened.search(ZERO, k=3)["queries"][0]["hits"]) == {"old-0"} and opened.last_load == "cache"
    build_again(store_target, index_name)
    assert exact(opened.search(ZERO, k=3)["queries"][0]["hits"]) == {"new-7"}
    assert opened.last_load == "rebuilt from SQL (built from another index or database)"


@pytest.fixture
def diverged(tmp_path):
    """a.db and its copy a2.db, then one item added to each: the same generation, item count, row
    ids and name, other contents. Each file alone holds all of its items (checkpointed)."""
    a, a2 = tmp_path / "a.db", tmp_path / "a2.db"
    index = Index.create(a, "x", bits=16)
    index.add(list(OLD), codes_of(OLD))
    index.store.checkpoint()
    index.store.engine.dispose()
    shutil.copyfile(a, a2)
    for path, key, code in ((a, "only-in-a", 0xAA), (a2, "only-in-a2", 0x55)):
        store = Store(path, "write")
        store.add("x", [key], np.full((1, 2), code, np.uint8))
        store.checkpoint()
        store.engine.dispose()
    return a, a2


QUERY = np.full((1, 2), 0xAA, np.uint8)  # only-in-a's code; in a2, old-2 is nearest (7 bits away)


def test_a_copy_changed_apart_and_put_back_is_never_answered_from_the_others_cache(diverged):
    a, a2 = diverged

    def nearest() -> tuple[str, int]:
        hit = semhash.search(a, "x", codes=["aaaa"], k=1)["queries"][0]["hits"][0]
        return hit["key"], hit["distance"]

    assert nearest() == ("only-in-a", 0)
    assert (a.parent / "a.db.cache" / "x" / "manifest.json").is_file()  # a.db's structures, cached
    shutil.copyfile(a2, a)  # cp a2.db a.db: the same file name, the other history
    assert nearest() == ("old-2", 7)


def test_an_open_index_notices_its_file_replaced_by_a_copy_changed_apart(diverged):
    """The structures an Index holds in memory are checked like the cache's. (Its connections are
    closed before the copy: SQLite keeps the pages a connection has read while the file's change
    counter stays the same, which it can in a copy changed apart; overwriting a file that a
    connection has open is outside what SQLite supports. A connection opened after reads the copy.)"""
    a, a2 = diverged
    opened = Index.open(a, "x")
    assert [(h["key"], h["distance"]) for h in opened.search(QUERY, k=1)["queries"][0]["hits"]] == [("only-in-a", 0)]
    opened.store.engine.dispose()
    shutil.copyfile(a2, a)
    assert [(h["key"], h["distance"]) for h in opened.search(QUERY, k=1)["queries"][0]["hits"]] == [("old-2", 7)]


def test_uids_and_row_ids_are_never_reused_and_every_write_writes_a_new_state(tmp_path):
    store = Store(tmp_path / "s.db")
    rows, states = [], set()
    for _ in range(3):  # made, changed three times, dropped; again under the same name
        rows.append(store.create_index("x", 16))
        store.add("x", ["a"], ZERO)
        states.add(store.get_index("x").state)
        store.add("x", ["b"], ZERO)
        states.add(store.get_index("x").state)
        store.remove("x", ["a"])
        states.add(store.get_index("x").state)
        store.drop_index("x")
    assert len({r.uid for r in rows}) == 3 and len({r.id for r in rows}) == 3
    assert len(states | {r.state for r in rows}) == 12
