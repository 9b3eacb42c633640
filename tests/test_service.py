"""The HTTP service: the JSON API in-process (FastAPI's TestClient), property-based API testing
against its OpenAPI schema (schemathesis: no 5xx, responses as documented), and two real server
processes sharing one PostgreSQL store."""

import os

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from servers import free_port, png_bytes, start_server

from semhash.hashing.methods import make_hasher
from semhash.index_store.build import build_index
from semhash.index_store.http.service import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory, digits):
    """A 16-bit ITQ index of the digits training split, and a client of the service over it."""
    folder = tmp_path_factory.mktemp("service")
    model = make_hasher("itq", bits=16).fit(digits[0]).save(folder / "d16.semhash")
    build_index(folder / "items.db", model, digits[0], name="digits")
    app = create_app(str(folder / "items.db"))
    return folder, app, TestClient(app)


def test_health_and_index_statistics(served):
    _, _, client = served
    assert client.get("/health").json()["indexes"] == ["digits"]
    info = client.get("/indexes/digits").json()
    assert info["items"] == 1500 and info["bits"] == 16 and info["takes"]["shape"] == [1, 8, 8]
    assert client.get("/indexes").json() == [info]


def test_search_by_item_code_vector_and_image_agree(served, digits):
    _, _, client = served
    by_item = client.post("/indexes/digits/search/items", json={"keys": ["digits/train/7"], "k": 5}).json()
    hits = by_item["queries"][0]["hits"]
    assert len(hits) == 5 and hits[0]["distance"] == 0 and hits[0]["key"] == "digits/train/7"
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    x = digits[0].x[7]
    by_vector = client.post("/indexes/digits/search/vectors", json={"vectors": [x.ravel().tolist()], "k": 5}).json()
    by_image = client.post(
        "/indexes/digits/search/image", files={"image": ("seven.png", png_bytes(x[0]), "image/png")}, data={"k": "5"}
    ).json()
    for other in (by_vector, by_image):
        assert [h["key"] for h in other["queries"][0]["hits"]] == [h["key"] for h in hits]
    code = client.get("/indexes/digits/items", params={"key": "digits/train/7"}).json()
    assert code["key"] == "digits/train/7" and code["label"] == int(digits[0].labels[7])


def test_raw_codes_and_a_radius(served):
    _, _, client = served
    res = client.post("/indexes/digits/search", json={"codes": ["0000", "ffff"], "k": 1000, "radius": 3}).json()
    assert [q["query"] for q in res["queries"]] == ["0000", "ffff"]
    assert all(h["distance"] <= 3 for q in res["queries"] for h in q["hits"])


def test_add_find_and_remove_items(served, digits):
    _, _, client = served
    x = digits[1].x[:2].reshape(2, -1)
    added = client.post(
        "/indexes/digits/items",
        json={
            "items": [
                {"key": "new/0", "vector": x[0].tolist(), "label": 3, "meta": {"from": "test"}},
                {"key": "new/1", "vector": x[1].tolist()},
            ]
        },
    )
    assert added.status_code == 200 and added.json() == {"index": "digits", "changed": 2, "items": 1502}
    found = client.post("/indexes/digits/search/vectors", json={"vectors": [x[0].tolist()], "k": 3}).json()
    assert "new/0" in [h["key"] for h in found["queries"][0]["hits"] if h["distance"] == 0]
    assert client.get("/indexes/digits/items", params={"key": "new/0"}).json()["meta"] == {"from": "test"}
    again = client.post("/indexes/digits/items", json={"items": [{"key": "new/0", "vector": x[0].tolist()}]})
    assert again.status_code == 400 and "already in index" in again.json()["detail"]
    up = client.post(
        "/indexes/digits/items/image",
        files={"image": ("n.png", png_bytes(x[0].reshape(8, 8)), "image/png")},
        data={"key": "new/2", "label": "3"},
    )
    assert up.json()["items"] == 1503
    gone = client.delete("/indexes/digits/items", params={"key": ["new/0", "new/1", "new/2"]})
    assert gone.json() == {"index": "digits", "changed": 3, "items": 1500}
    assert client.get("/indexes/digits/items", params={"key": "new/0"}).status_code == 404


def test_thumbnails_and_the_browse_page(served):
    _, _, client = served
    png = client.get("/indexes/digits/thumbnail", params={"key": "digits/train/3"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    page = client.get("/")
    assert page.status_code == 200 and "semhash" in page.text and 'id="results"' in page.text


@pytest.mark.parametrize(
    "method, url, kwargs, status, message",
    [
        ("get", "/indexes/nope", {}, 404, "no index named 'nope'"),
        ("post", "/indexes/digits/search/items", {"json": {"keys": ["nope"]}}, 404, "no item 'nope'"),
        ("post", "/indexes/digits/search", {"json": {"codes": ["00"]}}, 400, "4 hex digits each"),
        ("post", "/indexes/digits/search", {"json": {"codes": ["zzzz"]}}, 422, ""),
        ("post", "/indexes/digits/search", {"json": {"codes": ["0000"], "k": 0}}, 422, ""),
        ("post", "/indexes/digits/search", {"json": {"codes": ["0000"], "radius": 17}}, 400, "code length 16"),
        ("post", "/indexes/digits/search/vectors", {"json": {"vectors": [[1.0, 2.0]]}}, 400, "64 values each"),
        ("post", "/indexes/digits/search/vectors", {"json": {"vectors": [[1.0] * 64, [1.0]]}}, 400, "64 values each"),
        (
            "post",
            "/indexes/digits/search/image",
            {"files": {"image": ("x.png", b"not a png", "image/png")}},
            400,
            "x.png: not a readable image",
        ),
        ("delete", "/indexes/digits/items", {"params": {"key": "nope"}}, 404, "nothing removed"),
        ("get", "/indexes/digits/thumbnail", {"params": {"key": "nope"}}, 404, "no item"),
    ],
)
def test_bad_requests_are_4xx_with_a_clear_message(served, method, url, kwargs, status, message):
    _, _, client = served
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status, r.text
    assert message in str(r.json()["detail"])


def test_the_api_never_fails_with_5xx_and_answers_as_documented(served):
    # every operation of the OpenAPI schema, with generated valid and invalid inputs (schemathesis):
    # no server error, and every response (status, content type, body) as the schema documents it
    schema = schemathesis.openapi.from_asgi("/openapi.json", served[1])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()


# --- two real server processes on one PostgreSQL store ---
def postgres_url() -> str:
    url = os.environ.get("SEMHASH_TEST_POSTGRES")
    if not url:
        if os.environ.get("SEMHASH_REQUIRE_POSTGRES") == "1":
            pytest.fail("SEMHASH_REQUIRE_POSTGRES=1 but SEMHASH_TEST_POSTGRES is not set")
        pytest.skip("no PostgreSQL (set SEMHASH_TEST_POSTGRES)")
    return url


def test_two_replicas_on_postgresql_see_each_others_additions(digits, tmp_path, index_name):
    url = postgres_url()
    model = make_hasher("itq", bits=16).fit(digits[0]).save(tmp_path / "d16.semhash")
    build_index(url, model, digits[0].subset(500), name=index_name)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    ports = [free_port(), free_port()]
    servers = [start_server(url, p, env) for p in ports]
    try:
        a, b = (f"http://127.0.0.1:{p}/indexes/{index_name}" for p in ports)
        assert httpx.get(b).json()["items"] == 500
        x = digits[1].x[:3].reshape(3, -1)
        added = httpx.post(
            f"{a}/items", json={"items": [{"key": f"r/{i}", "vector": v.tolist()} for i, v in enumerate(x)]}
        )
        assert added.status_code == 200, added.text
        assert httpx.get(b).json()["items"] == 503  # the other replica sees them at once
        hits = httpx.post(f"{b}/search/vectors", json={"vectors": [x[2].tolist()], "k": 5}).json()["queries"][0]["hits"]
        assert "r/2" in [h["key"] for h in hits if h["distance"] == 0]
        assert httpx.delete(f"{b}/items", params={"key": ["r/0", "r/1", "r/2"]}).json()["items"] == 500
        assert httpx.get(f"{a}/items", params={"key": "r/2"}).status_code == 404
    finally:
        for s in servers:
            s.terminate()
            s.wait(timeout=30)
