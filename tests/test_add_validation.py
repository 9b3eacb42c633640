"""What an add accepts: one check (index_store/storage/validate.py) behind every way in - Index.add,
Store.add, the HTTP add routes - that refuses, in one line and before anything is stored, codes
that are not uint8 of exactly (n, bits/8), keys that are not short printable text, and metadata
that is not JSON with finite numbers."""

import json
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from semhash.hashing.errors import DataError
from semhash.hashing.methods import make_hasher
from semhash.index_store.build import build_index
from semhash.index_store.http.service import create_app
from semhash.index_store.index import Index
from semhash.index_store.storage.store import Store
from semhash.index_store.storage.validate import MAX_KEY

CODE = np.zeros((1, 2), np.uint8)  # one 16-bit code


@pytest.fixture
def index(store_target, index_name):
    """A 16-bit index holding one item, "first"."""
    idx = Index.create(store_target, index_name, bits=16)
    idx.add(["first"], np.array([[1, 2]], np.uint8))
    return idx


def stored(idx: Index) -> tuple:
    """What SQL holds of the index: its items and the state its last write left."""
    row = idx.store.get_index(idx.name)
    ids, codes, _ = idx.store.load_codes(idx.name)
    return row.state, row.item_count, ids.tolist(), codes.tolist()


def add_both_ways(idx: Index, keys, codes, **columns) -> list[DataError]:
    """The error of Index.add and of Store.add for the same items; each must store nothing."""
    before, errors = stored(idx), []
    for add in (idx.add, lambda *a, **kw: idx.store.add(idx.name, *a, **kw)):
        with pytest.raises(DataError) as caught:
            add(keys, codes, **columns)
        errors.append(caught.value)
        assert "\n" not in str(caught.value)
        assert stored(idx) == before
    return errors


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.array([[300, 0]]), "got int64"),  # was stored as 0x2C: 300 mod 256
        (np.array([[-1, 0]], np.int8), "got int8"),  # was stored as 0xFF
        (np.array([[0.5, 0]]), "got float64"),  # was stored as 0
        ([[1, 2]], "got int64"),  # a list: numbers, not bytes
        (np.zeros((1, 3), np.uint8), r"16-bit codes: codes of shape \(1, 2\) for 1 keys, got \(1, 3\)"),
        (np.zeros((2, 2), np.uint8), r"of shape \(1, 2\) for 1 keys, got \(2, 2\)"),
        (np.zeros(2, np.uint8), r"of shape \(1, 2\) for 1 keys, got \(2,\)"),
    ],
)
def test_codes_must_be_uint8_of_exactly_n_by_bits_over_8(index, codes, message):
    for error in add_both_ways(index, ["new"], codes):
        assert re.search(message, str(error)), error


@pytest.mark.parametrize(
    "key, message",
    [
        (None, "keys must be text"),  # was stored as 'None'
        (7, "keys must be text"),
        ("", "a key is empty"),
        ("k" * (MAX_KEY + 1), f"is {MAX_KEY + 1} characters long; at most {MAX_KEY}"),
        ("a\x00b", "control character"),
        ("tab\tkey", "control character"),
        ("line\nbreak", "control character"),
        ("bad\ud800", "not valid Unicode"),  # a file name undecodable in UTF-8
    ],
)
def test_keys_must_be_short_printable_text(index, key, message):
    for error in add_both_ways(index, [key], CODE):
        assert message in str(error)


def test_a_key_of_the_longest_length_and_any_printable_unicode_is_stored(index):
    keys = ["k" * MAX_KEY, "digits/train/²", "ключ с пробелом", "🙂"]
    index.add(keys, np.zeros((4, 2), np.uint8))
    assert set(index.store.ids_of(index.name, keys)) == set(keys)


@pytest.mark.parametrize(
    "meta",
    [float("nan"), {"x": float("inf")}, {"x": [1, float("-inf")]}, {"x": object()}, {"x": np.float32(1)}],
    ids=["nan", "inf", "nested-minus-inf", "an-object", "a-numpy-number"],
)
def test_metadata_must_be_json_with_finite_numbers(index, meta):
    for error in add_both_ways(index, ["new"], CODE, metas=[meta]):
        assert str(error).startswith("the metadata of item 'new' is not JSON")


def test_columns_must_have_one_value_per_item(index):
    (error, _) = add_both_ways(index, ["a", "b"], np.zeros((2, 2), np.uint8), labels=[1])
    assert str(error) == "1 labels for 2 items"
    (error, _) = add_both_ways(index, ["a"], CODE, sources=[b"bytes"])
    assert "sources must be text" in str(error)
    (error, _) = add_both_ways(index, ["a", "a"], np.zeros((2, 2), np.uint8))
    assert "appears twice" in str(error)


def test_a_bad_item_in_a_later_batch_stores_no_batch(index):
    keys = ["a", "b", "c", "d\x07"]
    before = stored(index)
    with pytest.raises(DataError, match="control character"):
        index.add(keys, np.zeros((4, 2), np.uint8), batch_size=2)
    assert stored(index) == before


@pytest.fixture(scope="module")
def client(tmp_path_factory, digits):
    """The HTTP service over a 16-bit ITQ index of 50 digits, "d"."""
    folder = tmp_path_factory.mktemp("add-validation")
    model = make_hasher("itq", bits=16).fit(digits[0]).save(folder / "d16.semhash")
    build_index(folder / "items.db", model, digits[0].subset(50), name="d")
    return TestClient(create_app(str(folder / "items.db")))


@pytest.mark.parametrize(
    "item, message",
    [
        ('{"key": "n", "vector": V, "meta": {"x": NaN}}', "is not JSON (numbers must be finite)"),
        ('{"key": "n", "vector": V, "meta": {"x": 1e400}}', "is not JSON (numbers must be finite)"),
        ('{"key": "tab\\tkey", "vector": V}', "control character"),
        ('{"key": "nul\\u0000key", "vector": V}', "control character"),
    ],
)
def test_the_http_add_refuses_what_index_add_refuses(client, item, message):
    """Before the check, NaN metadata was stored, and every later search that found the item
    answered invalid JSON."""
    body = '{"items": [' + item.replace("V", json.dumps([0.5] * 64)) + "]}"
    before = client.get("/indexes/d").json()["items"]
    r = client.post("/indexes/d/items", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and message in r.json()["detail"], r.text
    assert client.get("/indexes/d").json()["items"] == before
    hits = client.post("/indexes/d/search", json={"codes": ["0000"], "k": 100}).json()["queries"][0]["hits"]
    assert all(h["key"] != "n" for h in hits)


def test_a_store_refuses_before_it_writes(tmp_path):
    """A refused add leaves a SQLite file as it was, to the byte (no transaction was begun)."""
    db = tmp_path / "s.db"
    store = Store(db)
    store.create_index("x", 16)
    store.checkpoint()
    before = db.read_bytes()
    with pytest.raises(DataError):
        Store(db, "write").add("x", ["a"], np.zeros((1, 2), np.int64))
    assert db.read_bytes() == before
