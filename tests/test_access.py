"""Who may write to a served index, and what the service refuses before doing any work: a token
for writes, no cross-origin writes, no writes beyond loopback without a token, pinned Host headers,
bounded bodies, and images bounded in bytes and pixels."""

import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

import semhash
from semhash.index_store.http.service import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("access")
    model = semhash.make_hasher("itq", bits=16).fit(digits[0]).save(folder / "d16.semhash")
    semhash.build_index(str(folder / "items.db"), model, digits[0].subset(200))
    return str(folder / "items.db"), digits[0].x[:1].reshape(1, -1)


def new_item(x, key="new/0"):
    return {"items": [{"key": key, "vector": x[0].tolist(), "label": 1}]}


def test_writes_need_the_token_when_one_is_set(served):
    db, x = served
    client = TestClient(create_app(db, token="s3cret"))
    refused = client.post("/indexes/default/items", json=new_item(x))
    assert refused.status_code == 401 and "token" in refused.json()["detail"]
    wrong = client.post("/indexes/default/items", json=new_item(x), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    ok = client.post("/indexes/default/items", json=new_item(x), headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    gone = client.delete("/indexes/default/items", params={"key": "new/0"}, headers={"Authorization": "Bearer s3cret"})
    assert gone.status_code == 200
    assert client.post("/indexes/default/search/items", json={"keys": ["digits/train/0"]}).status_code == 200


def test_a_page_of_another_origin_cannot_write(served):
    db, x = served
    client = TestClient(create_app(db))
    foreign = client.post("/indexes/default/items", json=new_item(x), headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "origin" in foreign.json()["detail"]
    same = client.post("/indexes/default/items", json=new_item(x, "new/1"), headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_beyond_loopback_without_a_token_writes_are_refused(served):
    db, x = served
    client = TestClient(create_app(db, host="0.0.0.0"))
    refused = client.post("/indexes/default/items", json=new_item(x, "new/2"))
    assert refused.status_code == 403 and "without a token" in refused.json()["detail"]
    assert client.get("/indexes/default").status_code == 200  # reads stay open


def test_a_loopback_server_answers_only_its_own_host_names(served):
    db, _ = served
    client = TestClient(create_app(db, host="127.0.0.1"), base_url="http://127.0.0.1:8000")
    assert client.get("/health").status_code == 200
    rebound = client.get("/health", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400


def test_bodies_over_the_limit_are_refused_before_parsing(served):
    db, _ = served
    client = TestClient(create_app(db))
    body = b'{"vectors": [[' + b"0," * (7 << 20) + b"0]]}"  # 14 MB of JSON
    r = client.post("/indexes/default/search/vectors", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limited" in r.json()["detail"]


def declared_png(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height zero pixels: tiny on disk, huge once decoded."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00" * ((width + 1) * 64), 9)  # the first rows only: a decoder stops early
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(served):
    db, _ = served
    client = TestClient(create_app(db))
    r = client.post("/indexes/default/search/image", files={"image": ("bomb.png", declared_png(13_000, 13_000))})
    assert r.status_code == 400 and "pixels" in r.json()["detail"]


def test_sixteen_bit_images_are_scaled_not_saturated(tmp_path):
    from PIL import Image

    from semhash.hashing.inputs.images import to_array

    grey = np.full((8, 8), 32768, dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
        pixels = to_array(im, (8, 8), grey=True)
    assert abs(float(pixels.mean()) - 0.5) < 0.01  # not 1.0: 16-bit values keep their range
