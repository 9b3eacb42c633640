"""A user's own embeddings go in with their own keys, labels and metadata, from the files they
have: .npz with keys, rows of .jsonl / .csv, or a folder of .npy shards with a keys file."""

import json

import numpy as np
import pytest

import semhash
from semhash.hashing.baselines import ITQ
from semhash.hashing.errors import DataError


@pytest.fixture
def vectors(rng):
    """60 vectors in 3 clusters of 24 dimensions, their keys, classes and metadata."""
    centres = rng.normal(0, 10, (3, 24))
    x = np.concatenate([c + rng.normal(0, 0.3, (20, 24)) for c in centres]).astype(np.float32)
    keys = [f"doc-{i:03d}" for i in range(60)]
    classes = ["cat", "dog", "owl"]
    labels = [classes[i // 20] for i in range(60)]
    metas = [{"title": f"item {i}", "year": 2000 + i} for i in range(60)]
    return x, keys, labels, metas


@pytest.fixture
def model(vectors, tmp_path):
    path = tmp_path / "own.semhash"
    ITQ(bits=16).fit(vectors[0]).save(path)
    return path


def stored(db, key):
    """The item with this key as a search of its own code sees it."""
    hits = semhash.search(db, items=[key], k=None, radius=0)["queries"][0]["hits"]
    return next(h for h in hits if h["key"] == key)


def check_round_trip(db, vectors):
    x, keys, labels, metas = vectors
    for i in (0, 25, 59):
        hit = stored(db, keys[i])
        assert hit["class"] == labels[i] and hit["meta"] == metas[i]


def test_jsonl_rows_keep_their_keys_class_names_and_metadata(vectors, model, tmp_path):
    x, keys, labels, metas = vectors
    with open(tmp_path / "items.jsonl", "w") as f:
        for v, k, lab, m in zip(x, keys, labels, metas):
            f.write(json.dumps({"key": k, "vector": v.tolist(), "label": lab, **m}) + "\n")
    semhash.build_index(tmp_path / "items.db", model, str(tmp_path / "items.jsonl"))
    check_round_trip(tmp_path / "items.db", vectors)


def test_csv_rows_with_a_vector_column(vectors, model, tmp_path):
    import csv

    x, keys, labels, metas = vectors
    with open(tmp_path / "items.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["key", "vector", "label", "title", "year"])
        writer.writeheader()
        for v, k, lab, m in zip(x, keys, labels, metas):
            writer.writerow({"key": k, "vector": json.dumps(v.tolist()), "label": lab, **m})
    semhash.build_index(tmp_path / "items.db", model, str(tmp_path / "items.csv"))
    hit = stored(tmp_path / "items.db", keys[25])
    assert hit["class"] == "dog" and hit["meta"] == {"title": "item 25", "year": "2025"}  # CSV holds text


def test_an_npz_with_keys_and_class_names(vectors, model, tmp_path):
    x, keys, labels, _ = vectors
    np.savez(tmp_path / "items.npz", x=x, keys=np.array(keys), y=np.array(labels))
    semhash.build_index(tmp_path / "items.db", model, str(tmp_path / "items.npz"))
    assert stored(tmp_path / "items.db", keys[59])["class"] == "owl"


def test_a_folder_of_shards_with_keys_labels_and_metadata_is_read_in_parts(vectors, model, tmp_path):
    x, keys, labels, metas = vectors
    folder = tmp_path / "shards"
    folder.mkdir()
    for i, part in enumerate(np.array_split(x, 4)):
        np.save(folder / f"part-{i}.npy", part)
    (folder / "keys.txt").write_text("\n".join(keys) + "\n")
    np.save(folder / "labels.npy", np.array(labels))
    (folder / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas))
    semhash.build_index(tmp_path / "items.db", model, str(folder), batch_size=7)
    check_round_trip(tmp_path / "items.db", vectors)
    semhash.export_index(tmp_path / "items.db", "default", tmp_path / "out.npz")
    out = np.load(tmp_path / "out.npz")
    by_key = dict(zip(out["keys"].tolist(), out["codes"]))
    expected = semhash.load_hasher(model).encode(x)
    assert all((by_key[k] == c).all() for k, c in zip(keys, expected))


def test_own_keys_that_repeat_or_do_not_match_the_rows_are_one_clear_error(vectors, tmp_path):
    x, keys, _, _ = vectors
    np.savez(tmp_path / "twice.npz", x=x, keys=np.array(keys[:-1] + keys[:1]))
    with pytest.raises(DataError, match="the key 'doc-000' names two rows"):
        semhash.load_dataset(str(tmp_path / "twice.npz"))
    folder = tmp_path / "shards"
    folder.mkdir()
    np.save(folder / "a.npy", x)
    (folder / "keys.txt").write_text("\n".join(keys[:10]) + "\n")
    with pytest.raises(DataError, match="10 keys for 60 rows"):
        semhash.load_dataset(str(folder))
    (tmp_path / "bad.jsonl").write_text('{"vector": [1, 2]}\n{"key": "b"}\n')
    with pytest.raises(DataError, match="row 1: every row needs a `vector`"):
        semhash.load_dataset(str(tmp_path / "bad.jsonl"))


def test_an_item_searched_by_key_comes_first_among_the_items_sharing_its_code(vectors, tmp_path):
    """Twenty copies of one vector share a code; asked for 3 neighbours of the last of them, the
    search lists that item first, then 2 others at distance 0: the k nearest, as brute force has them."""
    x, keys, labels, metas = vectors
    x = x.copy()
    x[:20] = x[0]
    ITQ(bits=16).fit(x).save(tmp_path / "m.semhash")
    np.savez(tmp_path / "items.npz", x=x, keys=np.array(keys))
    db = tmp_path / "items.db"
    semhash.build_index(db, tmp_path / "m.semhash", str(tmp_path / "items.npz"))
    for key in (keys[19], keys[0]):
        hits = semhash.search(db, items=[key], k=3)["queries"][0]["hits"]
        assert [h["key"] for h in hits][0] == key
        assert [h["distance"] for h in hits] == [0, 0, 0]
        assert {h["key"] for h in hits} <= set(keys[:20])
    within = semhash.search(db, items=[keys[19]], radius=0)["queries"][0]["hits"]
    assert within[0]["key"] == keys[19] and {h["key"] for h in within} == set(keys[:20])
