"""A live server and the store under it: what it lists and answers for is the store as it is now.

    semhash serve items.db                # every index of the store: one built after the start is
                                          # listed and searched, one dropped is gone (404)
    semhash serve items.db --name mnist   # only the named ones, while they are there

Each test starts a real server (tests/servers.py) on SQLite, and on PostgreSQL where
SEMHASH_TEST_POSTGRES is set, then drops and builds indexes beside it, as another process would.
"""

import httpx
import pytest
from servers import free_port, start_server

import semhash
from semhash.hashing.methods import make_hasher


@pytest.fixture
def model(digits, tmp_path):
    return make_hasher("itq", bits=16).fit(digits[0]).save(tmp_path / "d16.semhash")


def build(target, model, data, name: str, n: int) -> None:
    semhash.build_index(target, model, data.subset(n), name=name).store.engine.dispose()


def stop(server) -> None:
    server.terminate()
    server.wait(timeout=30)


def assert_not_found(response, name: str) -> None:
    """404, with one line that names the index."""
    detail = response.json()["detail"]
    assert response.status_code == 404 and "\n" not in detail and repr(name) in detail, response.text


def test_a_server_of_every_index_lists_and_serves_the_store_as_it_is_now(own_schema, digits, model):
    build(own_schema, model, digits[0], "kept", 50)
    build(own_schema, model, digits[0], "dropped", 50)
    port = free_port()
    server = start_server(own_schema, port)
    try:
        url = f"http://127.0.0.1:{port}"
        # while it runs, another process drops one index and builds another
        semhash.drop_index(own_schema, "dropped")
        build(own_schema, model, digits[0], "new", 30)

        listed = httpx.get(f"{url}/indexes", timeout=30)
        assert listed.status_code == 200, listed.text
        assert [(i["name"], i["items"]) for i in listed.json()] == [("kept", 50), ("new", 30)]
        assert httpx.get(f"{url}/health", timeout=30).json()["indexes"] == ["kept", "new"]
        found = httpx.post(f"{url}/indexes/new/search/items", json={"keys": ["digits/train/7"], "k": 1}, timeout=30)
        assert found.status_code == 200, found.text
        assert found.json()["queries"][0]["hits"][0]["distance"] == 0

        assert_not_found(httpx.get(f"{url}/indexes/dropped", timeout=30), "dropped")
        assert_not_found(httpx.post(f"{url}/indexes/dropped/search", json={"codes": ["0000"]}, timeout=30), "dropped")
    finally:
        stop(server)


def test_a_server_of_named_indexes_serves_those_while_they_are_there(own_schema, digits, model):
    build(own_schema, model, digits[0], "kept", 50)
    build(own_schema, model, digits[0], "dropped", 50)
    port = free_port()
    server = start_server(own_schema, port, names=["kept", "dropped"])
    try:
        url = f"http://127.0.0.1:{port}"
        semhash.drop_index(own_schema, "dropped")
        build(own_schema, model, digits[0], "other", 30)

        listed = httpx.get(f"{url}/indexes", timeout=30)
        assert listed.status_code == 200, listed.text
        assert [i["name"] for i in listed.json()] == ["kept"]
        assert httpx.get(f"{url}/health", timeout=30).json()["indexes"] == ["kept"]
        assert_not_found(httpx.get(f"{url}/indexes/dropped", timeout=30), "dropped")
        assert_not_found(httpx.get(f"{url}/indexes/other", timeout=30), "other")  # built, but not one it serves
    finally:
        stop(server)
