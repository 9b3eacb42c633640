"""Bad requests to the HTTP service (FastAPI's TestClient): each case a 4xx status, never a 5xx, a
JSON body {"detail": "<one line>"}, and the store folder as it was (tests/bad_input.py says the
contract and builds the world the cases share).

    POST /indexes/default/search {"codes": ["00"]}    400 {"detail": "the index holds 16-bit codes: 4 hex ..."}
    GET /indexes/default/items?key=digits/train/1     400 on damaged.db: "index 'default' is damaged: ..."
"""

import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from bad_input import one_line, storage_problems, valid_query_problems
from fastapi.testclient import TestClient

import semhash

U = "/indexes/default"
V64 = [0.5] * 64


NAN64 = "[" + ", ".join(["NaN"] * 64) + "]"
INF64 = "[" + ", ".join(["Infinity"] * 64) + "]"


def _get(url, **params):
    return lambda c, x: c.get(url, params=params)


def _post(url, body):
    return lambda c, x: c.post(url, json=body)


def _raw(url, text):
    return lambda c, x: c.post(url, content=text.encode(), headers={"content-type": "application/json"})


def _upload(url, name=None, data=None, form=None, filename="q.png"):
    def send(c, x):
        content = (x.i / name).read_bytes() if name else data
        return c.post(url, files={"image": (filename, content, "image/png")}, data=form or {})

    return send


def _delete(**params):
    return lambda c, x: c.delete(f"{U}/items", params=params)


NOT_FOUND = {"status": 404}
DAMAGED = {"db": "damaged.db", "status": 400, "mentions": "index 'default' is damaged"}
HOSTILE = {"db": "hostile.db", "status": 404, "excludes": "hostname"}

HTTP_CASES = [
    # names and keys
    ("unknown-index", _get("/indexes/nope"), NOT_FOUND),
    ("search-unknown-index", _post("/indexes/nope/search", {"codes": ["0000"]}), NOT_FOUND),
    ("unknown-item-key", _get(f"{U}/items", key="nope"), NOT_FOUND),
    ("nul-byte-in-a-key", _get(f"{U}/items", key="digits/train/\x000"), NOT_FOUND),
    ("item-without-a-key", _get(f"{U}/items"), {}),
    ("item-key-over-500-characters", _get(f"{U}/items", key="k" * 501), {}),
    ("thumbnail-unknown-key", _get(f"{U}/thumbnail", key="nope"), NOT_FOUND),
    ("thumbnail-unknown-unicode-key", _get(f"{U}/thumbnail", key="mnist/train/²"), NOT_FOUND),
    ("thumbnail-stored-superscript-key", _get(f"{U}/thumbnail", key="digits/train/²"), NOT_FOUND),
    ("thumbnail-stored-row-out-of-range", _get(f"{U}/thumbnail", key="digits/train/1500"), NOT_FOUND),
    ("thumbnail-stored-key-of-no-data-set", _get(f"{U}/thumbnail", key="odd key"), NOT_FOUND),
    ("search-unknown-item-key", _post(f"{U}/search/items", {"keys": ["nope"]}), NOT_FOUND),
    ("sample-n-0", _get(f"{U}/sample", n=0), {}),
    ("sample-seed-negative", _get(f"{U}/sample", seed=-1), {}),
    # codes
    ("code-wrong-length", _post(f"{U}/search", {"codes": ["00"]}), {}),
    ("code-not-hex", _post(f"{U}/search", {"codes": ["zzzz"]}), {}),
    ("codes-empty-list", _post(f"{U}/search", {"codes": []}), {}),
    ("codes-a-string-not-a-list", _post(f"{U}/search", {"codes": "0000"}), {}),
    ("codes-numbers", _post(f"{U}/search", {"codes": [1234]}), {}),
    ("k-0", _post(f"{U}/search", {"codes": ["0000"], "k": 0}), {}),
    ("k-minus-1", _post(f"{U}/search", {"codes": ["0000"], "k": -1}), {}),
    ("k-huge", _post(f"{U}/search", {"codes": ["0000"], "k": 10**12}), {}),
    ("k-a-word", _post(f"{U}/search", {"codes": ["0000"], "k": "ten"}), {}),
    ("k-fractional", _post(f"{U}/search", {"codes": ["0000"], "k": 2.5}), {}),
    ("radius-minus-1", _post(f"{U}/search", {"codes": ["0000"], "radius": -1}), {}),
    ("radius-over-bits", _post(f"{U}/search", {"codes": ["0000"], "radius": 17}), {}),
    ("body-not-json", _raw(f"{U}/search", "{codes: "), {}),
    ("body-a-list", _raw(f"{U}/search", "[]"), {}),
    ("body-null", _raw(f"{U}/search", "null"), {}),
    # vectors
    ("vectors-wrong-length", _post(f"{U}/search/vectors", {"vectors": [[1.0, 2.0]]}), {}),
    ("vectors-ragged", _post(f"{U}/search/vectors", {"vectors": [V64, [1.0]]}), {}),
    ("vectors-nan", _raw(f"{U}/search/vectors", f'{{"vectors": [{NAN64}]}}'), {}),
    ("vectors-infinity", _raw(f"{U}/search/vectors", f'{{"vectors": [{INF64}]}}'), {}),
    ("vectors-beyond-float32", _post(f"{U}/search/vectors", {"vectors": [[1e39] * 64]}), {}),
    ("vectors-strings", _post(f"{U}/search/vectors", {"vectors": [["a"] * 64]}), {}),
    ("vectors-empty", _post(f"{U}/search/vectors", {"vectors": []}), {}),
    ("vectors-3-d", _post(f"{U}/search/vectors", {"vectors": [[V64]]}), {}),
    ("keys-empty-list", _post(f"{U}/search/items", {"keys": []}), {}),
    ("keys-numbers", _post(f"{U}/search/items", {"keys": [7]}), {}),
    # images
    ("image-not-an-image", _upload(f"{U}/search/image", "notimage.png"), {}),
    ("image-empty", _upload(f"{U}/search/image", "empty.png"), {}),
    ("image-truncated-png", _upload(f"{U}/search/image", "truncated.png"), {}),
    ("image-13000x13000-png", _upload(f"{U}/search/image", "bomb.png"), {}),
    ("image-over-10-MiB", _upload(f"{U}/search/image", "big.png"), {}),
    ("image-missing-from-the-form", lambda c, x: c.post(f"{U}/search/image", data={"k": "5"}), {}),
    ("image-k-0", _upload(f"{U}/search/image", "q.png", form={"k": "0"}), {}),
    ("image-radius-a-word", _upload(f"{U}/search/image", "q.png", form={"radius": "far"}), {}),
    # adding and removing
    ("add-an-existing-key", _post(f"{U}/items", {"items": [{"key": "digits/train/0", "vector": V64}]}), {}),
    (
        "add-the-same-key-twice",
        _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64}, {"key": "new/0", "vector": V64}]}),
        {},
    ),
    ("add-wrong-vector-length", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": [0.5] * 63}]}), {}),
    ("add-nan-vector", _raw(f"{U}/items", f'{{"items": [{{"key": "new/0", "vector": {NAN64}}}]}}'), {}),
    ("add-empty-key", _post(f"{U}/items", {"items": [{"key": "", "vector": V64}]}), {}),
    ("add-label-a-word", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64, "label": "three"}]}), {}),
    ("add-label-over-32-bits", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64, "label": 2**40}]}), {}),
    ("add-meta-not-an-object", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64, "meta": "x"}]}), {}),
    ("add-items-not-a-list", _post(f"{U}/items", {"items": {"key": "new/0", "vector": V64}}), {}),
    ("add-image-existing-key", _upload(f"{U}/items/image", "q.png", form={"key": "digits/train/0"}), {}),
    ("add-image-not-an-image", _upload(f"{U}/items/image", "notimage.png", form={"key": "new/0"}), {}),
    ("add-image-over-10-MiB", _upload(f"{U}/items/image", "big.png", form={"key": "new/0"}), {}),
    ("add-image-label-a-word", _upload(f"{U}/items/image", "q.png", form={"key": "new/0", "label": "abc"}), {}),
    ("remove-an-unknown-key", _delete(key="no-such-key"), NOT_FOUND),
    ("remove-a-known-and-an-unknown-key", _delete(key=["digits/train/0", "no-such-key"]), NOT_FOUND),
    ("remove-without-a-key", _delete(), {}),
    # a hand-edited database (damaged.db): the index's damage in one line, never a 500
    ("item-label-stored-as-text", _get(f"{U}/items", key="digits/train/1"), DAMAGED),
    ("search-label-stored-as-text", _post(f"{U}/search/items", {"keys": ["digits/train/1"]}), DAMAGED),
    ("item-metadata-not-json", _get(f"{U}/items", key="digits/train/2"), DAMAGED),
    # a hostile one (hostile.db): 'odd key' has the source ../../../../etc/hostname in the image folder
    ("thumbnail-of-a-source-out-of-the-image-folder", _get(f"{U}/thumbnail", key="odd key"), HOSTILE),
]


@contextmanager
def serving(db):
    """A TestClient of the app serving every index of db; its connections closed afterwards."""
    from semhash.index_store.http.service import create_app

    app = create_app(str(db))
    try:
        yield TestClient(app, raise_server_exceptions=False)
    finally:
        app.state.service.store.engine.dispose()


@pytest.fixture
def client(sandbox):
    with serving(sandbox.db) as served:
        yield served


@pytest.mark.parametrize("send, checks", [pytest.param(s, c, id=n) for n, s, c in HTTP_CASES])
def test_http_bad_input(sandbox, send, checks):
    with serving(sandbox.d / checks.get("db", "items.db")) as client:
        r = send(client, sandbox)
    problems = []
    if not 400 <= r.status_code < 500:
        problems.append(f"status {r.status_code}")
    elif checks.get("status") and r.status_code != checks["status"]:
        problems.append(f"status {r.status_code}, not {checks['status']}")
    try:
        body = r.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and set(body) == {"detail"} and one_line(body["detail"])):
        problems.append("the body is not {'detail': '<one line>'}")
    elif checks.get("mentions") and checks["mentions"] not in body["detail"]:
        problems.append(f"the detail does not say {checks['mentions']!r}")
    elif checks.get("excludes") and checks["excludes"] in body["detail"]:
        problems.append(f"the detail shows {checks['excludes']!r}")
    problems += storage_problems(sandbox)
    assert not problems, f"{'; '.join(problems)}\nstatus={r.status_code}\nbody={r.text[:1500]}"


HTTP_ACCEPTS = [
    ("image-16-bit-png", _upload(f"{U}/search/image", "png16.png", form={"k": "5"}), 5),
    ("image-rgba", _upload(f"{U}/search/image", "rgba.png", form={"k": "5"}), 5),
    ("image-palette", _upload(f"{U}/search/image", "palette.png", form={"k": "5"}), 5),
    ("k-at-the-limit", _post(f"{U}/search", {"codes": ["0000"], "k": 1000}), 1000),
]


@pytest.mark.parametrize("send, hits", [pytest.param(s, h, id=n) for n, s, h in HTTP_ACCEPTS])
def test_http_accepts_odd_but_valid_input(sandbox, client, send, hits):
    r = send(client, sandbox)
    assert r.status_code == 200, r.text
    assert len(r.json()["queries"][0]["hits"]) == hits
    assert valid_query_problems(sandbox) == []


# The limit on keys is the store's one (storage.validate.MAX_KEY): a server whose store took keys of
# at most 40 characters refuses longer ones in every route that takes a key, a query's or a form's.
LIMITED = """
import sys
from semhash.index_store.storage import validate
validate.MAX_KEY = 40
from fastapi.testclient import TestClient
from semhash.index_store.http.service import create_app
c = TestClient(create_app(sys.argv[1]), raise_server_exceptions=False)
long = "k" * 41
print(c.get("/indexes/default/items", params={"key": long}).status_code)
print(c.get("/indexes/default/thumbnail", params={"key": long}).status_code)
print(c.post("/indexes/default/items/image", files={"image": ("q.png", b"x")}, data={"key": long}).status_code)
print(c.post("/indexes/default/search/items", json={"keys": [long]}).status_code)
"""


def test_every_route_that_takes_a_key_keeps_the_stores_one_limit(sandbox):
    env = {**os.environ, "SEMHASH_DATA": str(sandbox.tmp / "data")}
    proc = subprocess.run([sys.executable, "-c", LIMITED, sandbox.db], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["422"] * 4
    assert storage_problems(sandbox) == []


def test_metadata_of_any_json_shape_is_served_as_it_was_stored(tmp_path):
    # the Python API stores any JSON as an item's metadata; the HTTP bodies must carry it, not fail
    index = semhash.Index.create(tmp_path / "items.db", "default", bits=16)
    metas = [[1, 2], "text", 3.5, None, {"a": [True]}]
    index.add([f"k{i}" for i in range(5)], np.zeros((5, 2), np.uint8), metas=metas)
    index.store.engine.dispose()
    with serving(tmp_path / "items.db") as client:
        served = [client.get(f"{U}/items", params={"key": f"k{i}"}) for i in range(5)]
        sample = client.get(f"{U}/sample", params={"n": 5})
    assert [r.status_code for r in served] == [200] * 5 and sample.status_code == 200
    assert [r.json()["meta"] for r in served] == metas
