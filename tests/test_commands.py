"""The commands a retrieval user reaches for, through real subprocesses: several queries in one call
(repeated, a folder, a glob, standard input), every output format parsed back, radius semantics,
near-duplicate groups against a brute-force grouping, and index list / export / drop."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import semhash
from semhash.hashing.codes import hamming


def semhash_cli(*args, stdin=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("commands")
    model = semhash.make_hasher("itq", bits=16).fit(digits[0]).save(folder / "d16.semhash")
    semhash.build_index(str(folder / "items.db"), model, digits[0])
    images = folder / "queries"
    for i in range(3):
        semhash.load_dataset  # noqa: B018  (the data set's own PNG export below)
        from semhash.hashing.inputs.images import save_image

        save_image(digits[1], i, images / f"q{i}.png")
    return folder, folder / "items.db", images


def test_several_image_queries_in_one_call_and_from_stdin(built):
    folder, db, images = built
    out = semhash_cli("search", db, "--image", images, "--image", images / "q1.png", "-k", 3, "--format", "json")
    assert out.returncode == 0, out.stderr
    queries = json.loads(out.stdout)["queries"]
    assert [q["query"].split("/")[-1] for q in queries] == ["q0.png", "q1.png", "q2.png", "q1.png"]
    piped = semhash_cli(
        "search", db, "--image", "-", "-k", 3, "--format", "json", stdin=(images / "q1.png").read_bytes()
    )
    assert json.loads(piped.stdout)["queries"][0]["hits"] == queries[1]["hits"]
    globbed = semhash_cli("search", db, "--image", images / "q*.png", "-k", 1, "--format", "jsonl")
    assert len(globbed.stdout.decode().splitlines()) == 3


def test_every_format_reads_back_to_the_same_hits(built):
    folder, db, _ = built
    args = ("search", db, "--item", "digits/train/0", "--item", "digits/train/1", "-k", 4)
    hits = json.loads(semhash_cli(*args, "--format", "json").stdout)["queries"]
    lines = [json.loads(line) for line in semhash_cli(*args, "--format", "jsonl").stdout.decode().splitlines()]
    rows = list(csv.DictReader(io.StringIO(semhash_cli(*args, "--format", "csv").stdout.decode())))
    expected = [(q["query"], h["key"], h["distance"]) for q in hits for h in q["hits"]]
    assert [(r["query"], r["key"], r["distance"]) for r in lines] == expected
    assert [(r["query"], r["key"], int(r["distance"])) for r in rows] == expected
    table = semhash_cli(*args).stdout.decode()  # piped: every value whole, never cut
    assert all(h["key"] in table for q in hits for h in q["hits"])
    assert all(h["source"] is None for q in hits for h in q["hits"])  # a named data set's key names the row


def test_a_radius_returns_everything_within_it_unless_k_caps_it(built, digits):
    folder, db, _ = built
    codes = semhash.load_hasher(folder / "d16.semhash").encode(digits[0])
    within = int((hamming(codes[:1], codes)[0] <= 3).sum())
    assert within > 10  # more than the default k, so a cap would show
    everything = semhash.search(str(db), items=["digits/train/0"], radius=3)["queries"][0]["hits"]
    assert len(everything) == within
    capped = semhash.search(str(db), items=["digits/train/0"], radius=3, k=5)["queries"][0]["hits"]
    assert len(capped) == 5 and len(semhash.search(str(db), items=["digits/train/0"])["queries"][0]["hits"]) == 10


def brute_pairs(codes: np.ndarray, keys: list[str], radius: int) -> set[frozenset]:
    """Every pair of items whose codes are within the radius, from the whole distance matrix."""
    i, j = np.nonzero(np.triu(hamming(codes, codes) <= radius, 1))
    return {frozenset((keys[a], keys[b])) for a, b in zip(i, j)}


@pytest.mark.parametrize("radius", [0, 1])
def test_dedup_candidates_equal_every_pair_within_the_radius(built, digits, radius):
    folder, db, _ = built
    codes = semhash.load_hasher(folder / "d16.semhash").encode(digits[0])
    keys = [f"digits/train/{i}" for i in range(len(codes))]
    # a threshold every pair holds (correlation >= -1): the verified pairs are the candidates: every
    # pair within the radius, and those the images' signatures propose beyond it (Verifier.propose)
    out = semhash_cli("dedup", db, "--radius", radius, "--threshold", -1, "--pairs", "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    pairs = [frozenset((p["a"], p["b"])) for p in result["pairs"]]
    within = {pair for pair, p in zip(pairs, result["pairs"]) if p["distance"] <= radius}
    assert within == brute_pairs(codes, keys, radius) and len(set(pairs)) == len(pairs)
    assert len(pairs) > len(within)  # the signatures' own proposals, each pair once
    assert result["candidates"] == result["verified"] == len(result["pairs"])


def test_index_list_export_and_drop(built, tmp_path):
    import shutil

    folder, db, _ = built
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    listed = json.loads(semhash_cli("index", "list", copy, "--format", "json").stdout)
    assert [(i["name"], i["bits"], i["items"]) for i in listed] == [("default", 16, 1500)]
    assert semhash_cli("index", "export", copy, "-o", tmp_path / "all.npz").returncode == 0
    exported = np.load(tmp_path / "all.npz")
    assert exported["codes"].shape == (1500, 2) and exported["keys"][0] == "digits/train/0"
    refused = semhash_cli("index", "drop", copy)
    assert refused.returncode == 1 and b"--yes" in refused.stderr
    assert semhash_cli("index", "drop", copy, "--yes").returncode == 0
    assert json.loads(semhash_cli("index", "list", copy, "--format", "json").stdout) == []


def test_encode_prints_and_saves_the_codes_the_model_gives(built, tmp_path):
    from semhash.index_store.query import input_codes

    folder, db, images = built
    model = semhash.load_hasher(folder / "d16.semhash")
    out = semhash_cli(
        "encode", "--model", folder / "d16.semhash", "--image", images, "-o", tmp_path / "c.npy", "--format", "csv"
    )
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout.decode())))
    expected = input_codes(model, "images", sorted(images.glob("*.png")))
    assert [r["code"] for r in rows] == [c.tobytes().hex() for c in expected]
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), expected)
    none = semhash_cli("encode", "--model", folder / "d16.semhash")
    assert none.returncode == 1 and none.stderr.decode().count("\n") == 1
