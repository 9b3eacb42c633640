"""Bad input from Python (`import semhash`): each case a semhash.SemhashError with a one-line message
and no other exception type, and the store folder as it was (tests/bad_input.py says the contract
and builds the world the cases share); then the same on every store (SQLite, and PostgreSQL where
SEMHASH_TEST_POSTGRES is set), and a hand-edited database read as the index's damage.

    semhash.search("items.db", items=["digits/train/0"], k=np.int64(3))   # a numpy integer is a count
    semhash.search("items.db", images=123)    # DataError: an image query is a path, ... not int
"""

import io

import numpy as np
import pytest
from bad_input import ITEMS, one_line, storage_problems, valid_query_problems

import semhash
from semhash.hashing.errors import SemhashError, StoreError
from semhash.index_store import item_rows
from semhash.index_store.storage.records import safe_url

PG_PORT = "postgresql+psycopg://user:secret@127.0.0.1:70000/db"
PG_DRIVER = "postgresql+nodriver://user:secret@host/db"
NOT_A_PORT = "postgresql+psycopg://user:secret@127.0.0.1:notaport/db"
AT_IN_PASSWORD = "postgresql+psycopg://user:se@cret@127.0.0.1:1/db"  # unescaped: SQLAlchemy's host would be cret@...
SECRET = {"excludes": "secret"}


def _search(**kw):
    return lambda x: semhash.search(x.db, **kw)


def _items(**kw):
    return _search(items=["digits/train/0"], **kw)


def _vectors(v):
    return lambda x: semhash.search(x.db, vectors=v)


def _file(name):
    return lambda x: semhash.search(x.db, vectors=x.i / name)


def _image(name):
    return lambda x: semhash.search(x.db, images=[x.i / name])


def _hasher(name):
    return lambda x: semhash.load_hasher(x.m / name)


def _dataset(name, **kw):
    return lambda x: semhash.load_dataset(str(x.i / name), **kw)


def _train(method="itq", **kw):
    return lambda x: semhash.train(method, kw.pop("data", "digits"), x.d / "x.semhash", **kw)


def _ae(**kw):
    return _train("ae", bits=16, epochs=1, limit=64, **kw)


def _build(target, model, data="digits", **kw):
    return lambda x: semhash.build_index(x.d / target, x.m / model if model else None, data, **kw)


def _labelled(x, labels):
    return semhash.load_dataset(str(x.i / "feats.npy"), labels=x.i / labels)


def _build_features(x, model, features):
    return semhash.build_index(x.d / "new.db", x.m / model, str(x.i / features))


def _remove(keys):
    return lambda x: semhash.Index.open(x.db).remove(keys)


def _add(keys, width=2):
    return lambda x: semhash.Index.open(x.db).add(keys, np.zeros((len(keys), width), np.uint8))


def _export(name, **kw):
    return lambda x: semhash.export_index(x.db, "default", x.d / name, **kw)


def _search_stored(db, key):
    """Search for a stored item's code through the SQLAlchemy store (what a server reads with)."""
    index = semhash.Index.open(db)
    try:
        return index.search(index.store.codes_of("default", [key])[key], k=None, radius=0)
    finally:
        index.store.engine.dispose()


API_CASES = [
    # index files
    ("open-mistyped-path", lambda x: semhash.Index.open(x.d / "typo.db"), {}),
    ("search-mistyped-path", lambda x: semhash.search(x.d / "typo.db", items=["digits/train/0"]), {}),
    ("create_app-mistyped-path", lambda x: semhash.create_app(str(x.d / "typo.db")), {}),
    ("open-in-a-missing-folder", lambda x: semhash.Index.open(x.d / "nofolder" / "items.db"), {}),
    ("open-random-bytes", lambda x: semhash.Index.open(x.d / "garbage.db"), {}),
    ("open-empty-file", lambda x: semhash.Index.open(x.d / "empty.db"), {}),
    ("open-text-file", lambda x: semhash.Index.open(x.d / "text.db"), {}),
    ("open-truncated-sqlite", lambda x: semhash.Index.open(x.d / "truncated.db"), {}),
    ("search-truncated-sqlite", lambda x: semhash.search(x.d / "truncated.db", codes=["0000"]), {}),
    ("open-foreign-sqlite", lambda x: semhash.Index.open(x.d / "foreign.db"), {}),
    ("open-table-named-like-ours", lambda x: semhash.Index.open(x.d / "clash.db"), {}),
    ("open-a-folder", lambda x: semhash.Index.open(x.d / "dir.db"), {}),
    ("create_app-random-bytes", lambda x: semhash.create_app(str(x.d / "garbage.db")), {}),
    ("create_app-foreign-sqlite", lambda x: semhash.create_app(str(x.d / "foreign.db")), {}),
    ("open-postgres-bad-port", lambda x: semhash.Index.open(PG_PORT), SECRET),
    ("open-unknown-driver", lambda x: semhash.Index.open(PG_DRIVER), SECRET),
    ("search-unknown-driver", lambda x: semhash.search(PG_DRIVER, codes=["0000"]), SECRET),
    ("open-postgres-port-not-a-number", lambda x: semhash.Index.open(NOT_A_PORT), SECRET),
    ("search-postgres-port-not-a-number", lambda x: semhash.search(NOT_A_PORT, codes=["0000"]), SECRET),
    ("list-postgres-port-not-a-number", lambda x: semhash.list_indexes(NOT_A_PORT), SECRET),
    (
        "build-postgres-port-not-a-number",
        lambda x: semhash.build_index(NOT_A_PORT, x.m / "d16.semhash", "digits"),
        SECRET,
    ),
    ("create_app-postgres-port-not-a-number", lambda x: semhash.create_app(NOT_A_PORT), SECRET),
    ("open-postgres-password-with-an-at-sign", lambda x: semhash.Index.open(AT_IN_PASSWORD), {"excludes": "cret"}),
    # a hand-edited database (damaged.db: a label stored as text, metadata that is no JSON)
    ("search-label-stored-as-text", lambda x: semhash.search(x.d / "damaged.db", items=["digits/train/1"]), {}),
    ("export-label-stored-as-text", lambda x: semhash.export_index(x.d / "damaged.db", "default", x.d / "o.jsonl"), {}),
    ("search-metadata-not-json", lambda x: semhash.search(x.d / "damaged.db", items=["digits/train/2"]), {}),
    ("search-metadata-not-json-with-sqlalchemy", lambda x: _search_stored(x.d / "damaged.db", "digits/train/2"), {}),
    ("open-unknown-index-name", lambda x: semhash.Index.open(x.db, "nope"), {}),
    # model files
    ("load_hasher-missing", _hasher("missing.semhash"), {}),
    ("load_hasher-truncated", _hasher("truncated.semhash"), {}),
    ("load_hasher-truncated-tail", _hasher("truncated-tail.semhash"), {}),
    ("load_hasher-garbled-header", _hasher("garbled.semhash"), {}),
    ("load_hasher-empty", _hasher("empty.semhash"), {}),
    ("load_hasher-text", _hasher("text.semhash"), {}),
    ("load_hasher-a-png", _hasher("png.semhash"), {}),
    ("load_hasher-huge-header-length", _hasher("huge-header.semhash"), {}),
    ("load_hasher-a-folder", _hasher("folder.semhash"), {}),
    ("load_hasher-foreign-safetensors", _hasher("foreign.semhash"), {}),
    ("load_hasher-unknown-method", _hasher("unknown-method.semhash"), {}),
    ("load_hasher-itq-without-its-tensors", _hasher("itq-without-tensors.semhash"), {}),
    ("search-model-of-32-bits", lambda x: semhash.search(x.db, dataset="digits", model=x.m / "d32.semhash"), {}),
    ("search-another-16-bit-model", lambda x: semhash.search(x.db, dataset="digits", model=x.m / "lsh16.semhash"), {}),
    (
        "search-truncated-model",
        lambda x: semhash.search(x.db, dataset="digits", model=x.m / "truncated-tail.semhash"),
        {},
    ),
    # data sets and feature files
    ("load_dataset-unknown-name", lambda x: semhash.load_dataset("nosuchset"), {}),
    ("load_dataset-unknown-split", lambda x: semhash.load_dataset("digits", "dev"), {}),
    ("load_dataset-npz-without-x", _dataset("nox.npz"), {}),
    ("load_dataset-truncated-npz", _dataset("short.npz"), {}),
    ("load_dataset-object-npy", _dataset("object.npy"), {}),
    ("load_dataset-complex-npy", _dataset("complex.npy"), {}),
    ("load_dataset-strings-npy", _dataset("strings.npy"), {}),
    ("load_dataset-empty-npy", _dataset("empty.npy"), {}),
    ("load_dataset-3-d-npy", _dataset("feats_3d.npy"), {}),
    ("load_dataset-nan-features", _dataset("feats_nan.npy"), {}),
    ("load_dataset-not-numpy", _dataset("notnpy.npy"), {}),
    ("load_dataset-labels-wrong-length", lambda x: _labelled(x, "labels_short.npy"), {}),
    ("load_dataset-float-labels", lambda x: _labelled(x, "labels_float.npy"), {}),
    # images
    ("image-missing", _image("missing.png"), {}),
    ("image-not-an-image", _image("notimage.png"), {}),
    ("image-empty-file", _image("empty.png"), {}),
    ("image-truncated-png", _image("truncated.png"), {}),
    ("image-13000x13000-png", _image("bomb.png"), {}),
    ("image-over-10-MiB", _image("big.png"), {}),
    ("image-garbage-bytes", lambda x: semhash.search(x.db, images=[b"\x89PNG garbage"]), {}),
    # vectors
    ("vectors-wrong-length", _vectors(np.zeros((2, 63), np.float32)), {}),
    ("vectors-nan", _vectors(np.full(64, np.nan)), {}),
    ("vectors-inf", _vectors(np.full((1, 64), -np.inf)), {}),
    ("vectors-beyond-float32", _vectors(np.full((1, 64), 1e39)), {}),
    ("vectors-complex", _vectors(np.zeros((1, 64), np.complex128)), {}),
    ("vectors-object-array", _vectors(np.array([[object()] * 64], dtype=object)), {}),
    ("vectors-strings", _vectors([["0.5"] * 64]), {}),
    ("vectors-3-d", _vectors(np.zeros((2, 8, 8), np.float32)), {}),
    ("vectors-ragged", _vectors([[0.0] * 64, [0.0] * 63]), {}),
    ("vectors-file-wrong-length", _file("v63.npy"), {}),
    ("vectors-file-inf", _file("inf.npy"), {}),
    ("vectors-file-complex", _file("complex.npy"), {}),
    ("vectors-file-strings", _file("strings.npy"), {}),
    ("vectors-file-empty", _file("empty.npy"), {}),
    ("vectors-file-3-d", _file("cube.npy"), {}),
    ("vectors-file-missing", _file("missing.npy"), {}),
    ("vectors-file-not-numpy", _file("notnpy.npy"), {}),
    # parameters, codes, keys
    ("k-0", _items(k=0), {}),
    ("k-minus-1", _items(k=-1), {}),
    ("k-fractional", _items(k=2.5), {}),
    ("radius-minus-1", _items(radius=-1), {}),
    ("radius-over-bits", _items(radius=17), {}),
    ("code-wrong-length", _search(codes=["00"]), {}),
    ("code-not-hex", _search(codes=["zzzz"]), {}),
    ("code-with-a-space", _search(codes=["00 0"]), {}),
    ("limit-0", _search(dataset="digits", limit=0), {}),
    ("unknown-data-set-as-query", _search(dataset="nosuchset"), {}),
    ("no-query", _search(), {}),
    ("two-kinds-of-query", _search(items=["digits/train/0"], codes=["0000"]), {}),
    ("unknown-item-key", _search(items=["nope"]), {}),
    ("nul-byte-in-a-key", _search(items=["digits/train/\x000"]), {}),
    ("unknown-index-name", _search(items=["digits/train/0"], name="nope"), {}),
    ("vectors-a-0-d-array", _vectors(np.array(5.0)), {}),
    ("images-a-number", lambda x: semhash.search(x.db, images=123), {}),
    ("limit-text", _search(dataset="digits", limit="2"), {}),
    ("k-text", _items(k="3"), {}),
    # exports
    ("export-over-an-existing-file", _export("exported.jsonl"), {}),
    ("export-into-a-missing-folder", _export("nofolder/out.jsonl"), {}),
    ("export-unknown-suffix", _export("out.txt"), {}),
    ("export-unknown-format", _export("out.txt", fmt="xml"), {}),
    ("export-jsonl-into-a-csv-name", _export("out.csv", fmt="jsonl"), {}),
    ("export-a-stream-as-npz", lambda x: semhash.export_index(x.db, "default", io.StringIO(), fmt="npz"), {}),
    # building and adding
    ("build-batch-size-0", _build("new.db", "d16.semhash", batch_size=0), {}),
    ("build-limit-0", _build("new.db", "d16.semhash", limit=0), {}),
    ("build-missing-model", _build("new.db", "missing.semhash"), {}),
    ("build-garbled-model", _build("new.db", "garbled.semhash"), {}),
    ("build-unknown-data-set", _build("new.db", "d16.semhash", "nosuchset"), {}),
    ("build-nan-features", lambda x: _build_features(x, "f16.semhash", "feats_nan.npy"), {}),
    ("build-features-for-an-image-model", lambda x: _build_features(x, "d16.semhash", "feats.npy"), {}),
    ("build-into-a-full-index", _build("items.db", "d16.semhash"), {}),
    ("add-keys-already-there", _build("items.db", None, adding=True, limit=5), {}),
    ("add-with-a-model-of-32-bits", _build("items.db", "d32.semhash", adding=True, split="test"), {}),
    ("add-to-an-unknown-index", _build("items.db", None, adding=True, split="test", name="nope"), {}),
    ("add-the-same-key-twice", _add(["new/0", "new/0"]), {}),
    ("add-an-existing-key", _add(["digits/train/0"]), {}),
    ("add-codes-of-the-wrong-width", _add(["new/0"], width=4), {}),
    ("remove-an-unknown-key", _remove(["no-such-key"]), {}),
    ("remove-a-known-and-an-unknown-key", _remove(["digits/train/0", "no-such-key"]), {}),
    # training
    ("train-bits-12", _train(bits=12), {}),
    ("train-bits-1024", _train(bits=1024), {}),
    ("train-unknown-method", _train("zzz", bits=16), {}),
    ("train-one-item", _train(bits=16, limit=1), {}),
    ("train-unknown-data-set", _train(bits=16, data="nosuchset"), {}),
    ("train-ae-bottleneck-zzz", _ae(bottleneck="zzz"), {}),
    ("train-ae-device-xyz", _ae(device="xyz"), {}),
    ("train-ae-device-cuda-without-gpu", _ae(device="cuda"), {}),
    ("train-ae-resume-without-checkpoint", _ae(resume=True), {}),
    ("train-ae-unknown-option", _ae(colour="red"), {}),
]


@pytest.mark.parametrize("call, checks", [pytest.param(c, k, id=n) for n, c, k in API_CASES])
def test_python_api_bad_input(sandbox, call, checks):
    problems, outcome = [], None
    try:
        outcome = call(sandbox)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001  (the contract is about which types escape)
        message = str(exc)
        if not isinstance(exc, SemhashError):
            problems.append(
                f"raised {type(exc).__module__}.{type(exc).__qualname__}, not a SemhashError: {message[:500]!r}"
            )
        elif not one_line(message):
            problems.append(f"{type(exc).__name__} with a message that is not one line: {message[:500]!r}")
        if checks.get("excludes") and checks["excludes"] in message:
            problems.append(f"the message shows {checks['excludes']!r}: {message!r}")
    else:
        problems.append(f"no error; returned {str(outcome)[:200]!r}")
    problems += storage_problems(sandbox)
    assert not problems, "; ".join(problems)


def _top_keys(result) -> list[str]:
    return [h["key"] for h in result["queries"][0]["hits"]]


API_ACCEPTS = [
    ("image-16-bit-png", lambda x: semhash.search(x.db, images=[x.i / "png16.png"], k=5), 5),
    ("image-rgba", lambda x: semhash.search(x.db, images=[x.i / "rgba.png"], k=5), 5),
    ("image-palette", lambda x: semhash.search(x.db, images=[x.i / "palette.png"], k=5), 5),
    ("huge-k-is-capped", _items(k=10**9), ITEMS),
    ("radius-equal-to-bits", _items(k=None, radius=16), ITEMS),
    ("neither-k-nor-radius-is-the-10-nearest", _items(k=None), 10),
    ("vectors-of-ints", _vectors([[1] * 64]), 10),
    ("k-a-numpy-integer", _items(k=np.int64(3)), 3),
    ("radius-a-numpy-integer", _items(k=None, radius=np.int64(16)), ITEMS),
]


@pytest.mark.parametrize("call, hits", [pytest.param(c, h, id=n) for n, c, h in API_ACCEPTS])
def test_python_api_accepts_odd_but_valid_input(sandbox, call, hits):
    result = call(sandbox)
    assert len(result["queries"][0]["hits"]) == hits
    assert valid_query_problems(sandbox) == []


def test_a_16_bit_png_is_the_same_query_as_its_8_bit_original(sandbox):
    x = sandbox
    same = semhash.search(x.db, images=[x.i / "png16.png", x.i / "q.png", x.i / "rgba.png"], k=5)
    first, *others = [[(h["key"], h["distance"]) for h in q["hits"]] for q in same["queries"]]
    assert first[0][1] == 0 and all(o == first for o in others)


# --- the same contract on every store (SQLite, and PostgreSQL where SEMHASH_TEST_POSTGRES is set) --
def sql_state(target, name) -> tuple:
    """Everything an index holds in SQL: generation, count, ids, codes and each item's metadata."""
    from semhash.index_store.storage.store import Store

    store = Store(target, "read")
    try:
        row = store.get_index(name)
        ids, codes, _ = store.load_codes(name)
        meta = store.items(name, ids)
        items = sorted((i, m["key"], m["label"], m["source"]) for i, m in meta.items())
        return row.generation, row.item_count, ids.tobytes(), codes.tobytes(), items
    finally:
        store.engine.dispose()


STORE_CASES = [
    ("add-keys-already-there", lambda t, n, m, data: semhash.build_index(t, None, data.subset(5), name=n, adding=True)),
    ("build-into-a-full-index", lambda t, n, m, data: semhash.build_index(t, m, data, name=n)),
    (
        "add-the-same-key-twice",
        lambda t, n, m, data: semhash.Index.open(t, n).add(["a", "a"], np.zeros((2, 2), np.uint8)),
    ),
    (
        "add-codes-of-the-wrong-width",
        lambda t, n, m, data: semhash.Index.open(t, n).add(["a"], np.zeros((1, 4), np.uint8)),
    ),
    (
        "remove-a-known-and-an-unknown-key",
        lambda t, n, m, data: semhash.Index.open(t, n).remove(["digits/train/0", "nope"]),
    ),
    ("search-nul-byte-in-a-key", lambda t, n, m, data: semhash.search(t, n, items=["digits/train/\x000"])),
    ("search-unknown-index-name", lambda t, n, m, data: semhash.search(t, n + "-nope", items=["digits/train/0"])),
]


@pytest.mark.parametrize("call", [pytest.param(c, id=n) for n, c in STORE_CASES])
def test_bad_writes_change_nothing_on_any_store(bad_input_world, digits, store_target, index_name, call):
    world = bad_input_world
    data = digits[0].subset(200)
    semhash.build_index(store_target, world.m / "d16.semhash", data, name=index_name).store.engine.dispose()
    before = sql_state(store_target, index_name)
    problems = []
    try:
        outcome = call(store_target, index_name, world.m / "d16.semhash", data)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001
        if not isinstance(exc, SemhashError):
            problems.append(f"raised {type(exc).__module__}.{type(exc).__qualname__}, not a SemhashError: {exc!s:.500}")
        elif not one_line(str(exc)):
            problems.append(f"{type(exc).__name__} with a message that is not one line: {exc!s:.500}")
    else:
        problems.append(f"no error; returned {str(outcome)[:200]!r}")
    if sql_state(store_target, index_name) != before:
        problems.append("the index's SQL state changed")
    assert not problems, "; ".join(problems)


# --- a hand-edited or hostile database: its damage in one line, and no file outside its folder ------
def test_a_label_stored_as_text_is_the_damage_of_its_index(sandbox):
    with pytest.raises(StoreError, match=r"^index 'default' is damaged: item 'digits/train/1' has the label 'three'$"):
        semhash.search(sandbox.d / "damaged.db", items=["digits/train/1"])
    assert storage_problems(sandbox) == []


def test_a_stored_source_never_leads_out_of_the_image_folder(sandbox):
    # hostile.db records base/ as its image folder, and 'odd key' as ../../../../etc/hostname in it
    hits = semhash.search(sandbox.d / "hostile.db", items=["odd key"], k=None, radius=0)["queries"][0]["hits"]
    assert {h["key"]: h["source"] for h in hits}["odd key"] is None
    assert valid_query_problems(sandbox) == []


@pytest.mark.parametrize(
    "folder, source, seen",
    [
        ("/data/photos", "cats/1.png", "/data/photos/cats/1.png"),
        ("/data/photos", "cats/../dogs/2.png", "/data/photos/dogs/2.png"),
        ("/data/photos", "../../../../etc/hostname", None),
        ("/data/photos", "cats/../../photos2/x.png", None),  # a sibling that shares the folder's name
        ("/", "etc/hostname", "/etc/hostname"),
        (None, "cats/1.png", "cats/1.png"),  # no folder recorded: the source as stored
        (None, "cats/../../x.png", None),  # ... but never one that climbs out of wherever it is
    ],
)
def test_a_relative_source_is_resolved_inside_its_folder_or_not_at_all(folder, source, seen):
    assert item_rows.relative_path(source)
    assert item_rows.inside(folder, source) == seen


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+psycopg://u:secret@host:5432/db", "postgresql+psycopg://u:***@host:5432/db"),
        ("postgresql+psycopg://u:se@cr@et@host/db", "postgresql+psycopg://u:***@host/db"),  # @ unescaped
        ("postgresql+psycopg://u:se%40cret@host/db", "postgresql+psycopg://u:***@host/db"),
        ("sqlite:////data/a@b:c.db", "sqlite:////data/a@b:c.db"),  # no password in a path
    ],
)
def test_a_database_url_is_shown_with_its_whole_password_hidden(url, shown):
    assert safe_url(url) == shown
