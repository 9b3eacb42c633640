"""What users hand the CLI: images in any mode and size, vectors, URLs, broken caches, no network.

Images are converted the way the model's training images were (grey or RGB, size); whatever cannot
be converted, reached or read is one line on stderr and exit code 1.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from semhash.hashing.inputs.images import to_array
from semhash.hashing.methods import load_hasher
from semhash.index_store.query import input_codes


def semhash(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def fails_with(proc, message):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """A folder of 10x14 RGB images in three colour classes, a 16-bit model of it, and its index."""
    folder = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for name, colour in colours.items():
        (folder / "images" / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (10, 14, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / "images" / name / f"{i}.png")
    model, db = folder / "rgb.semhash", folder / "items.db"
    assert (
        semhash("train", "--dataset", folder / "images", "--method", "lsh", "--bits", "16", "-o", model).returncode == 0
    )
    out = semhash("index", "build", db, "--model", model, "--images", folder / "images")
    assert out.returncode == 0, out.stderr
    return folder, model, db


def hits(db, image, k=5):
    out = semhash("search", db, "--image", image, "-k", k, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["queries"][0]["hits"]


def test_an_indexed_image_finds_itself_first(rgb):
    folder, model, db = rgb
    item = folder / "images" / "green" / "3.png"
    found = hits(db, item)
    assert found[0]["distance"] == 0 and found[0]["label"] is not None
    # keys name the file within its folder, wherever the folder lies; sources where it is now
    assert "images/green/3.png" in {h["key"] for h in found if h["distance"] == 0}
    assert str(item) in {h["source"] for h in found if h["distance"] == 0}


def test_rgba_palette_and_grey_images_of_other_sizes_convert_to_the_models_input(rgb, tmp_path):
    folder, model, db = rgb
    hasher = load_hasher(model)
    item = Image.open(folder / "images" / "blue" / "5.png")
    expected = hasher.encode(to_array(item, (10, 14), grey=False)[None])
    item.convert("RGBA").save(tmp_path / "rgba.png")
    item.save(tmp_path / "same.jpg", quality=100)
    assert (input_codes(hasher, "images", [tmp_path / "rgba.png"]) == expected).all()  # alpha dropped, pixels kept
    # other modes and sizes are converted (to RGB, to 10x14) and answered
    item.convert("P").save(tmp_path / "palette.png")
    item.convert("L").resize((70, 50)).save(tmp_path / "grey-large.png")
    for name in ("rgba.png", "palette.png", "grey-large.png", "same.jpg"):
        assert len(hits(db, tmp_path / name)) == 5


def test_a_grey_model_takes_colour_images(tmp_path):
    model = tmp_path / "d.semhash"
    assert semhash("train", "--dataset", "digits", "--method", "itq", "--bits", "16", "-o", model).returncode == 0
    hasher = load_hasher(model)
    grey = Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8), "L")
    grey.convert("RGB").resize((32, 32), Image.NEAREST).save(tmp_path / "colour.png")
    grey.resize((32, 32), Image.NEAREST).save(tmp_path / "grey.png")
    assert (
        input_codes(hasher, "images", [tmp_path / "colour.png"])
        == input_codes(hasher, "images", [tmp_path / "grey.png"])
    ).all()


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    np.save(folder / "x.npy", np.random.default_rng(0).normal(size=(500, 24)).astype(np.float32))
    model, db = folder / "f.semhash", folder / "items.db"
    assert (
        semhash("train", "--dataset", folder / "x.npy", "--method", "itq", "--bits", "16", "-o", model).returncode == 0
    )
    assert semhash("index", "build", db, "--model", model, "--features", folder / "x.npy").returncode == 0
    return folder, model, db


def test_a_feature_model_refuses_an_image_and_a_vector_of_the_wrong_size(features, rgb):
    folder, model, db = features
    fails_with(semhash("search", db, "--image", rgb[0] / "images" / "red" / "0.png"), "query it with --vector")
    np.save(folder / "short.npy", np.zeros((2, 23), np.float32))
    fails_with(semhash("search", db, "--vector", folder / "short.npy"), "must have 24 values each")
    np.save(folder / "nan.npy", np.full(24, np.nan, np.float32))
    fails_with(semhash("search", db, "--vector", folder / "nan.npy"), "finite numbers")


def test_a_corrupt_or_deleted_cache_is_rebuilt_from_sql_with_the_same_results(features):
    folder, model, db = features
    np.save(folder / "q.npy", np.load(folder / "x.npy")[:3])
    before = semhash("search", db, "--vector", folder / "q.npy", "-k", "7", "--json").stdout
    cache = folder / "items.db.cache" / "default"
    with open(cache / "search.npz", "r+b") as f:
        f.seek(40)
        f.write(b"\xff" * 16)
    info = json.loads(semhash("index", "info", db, "--json").stdout)
    assert info["derived"] == "rebuilt from SQL (search.npz missing or corrupt)"
    assert semhash("search", db, "--vector", folder / "q.npy", "-k", "7", "--json").stdout == before
    (cache / "search.npz").unlink()
    info = json.loads(semhash("index", "info", db, "--json").stdout)
    assert info["derived"].startswith("rebuilt from SQL") and info["items"] == 500
    assert semhash("search", db, "--vector", folder / "q.npy", "-k", "7", "--json").stdout == before
    assert json.loads(semhash("index", "info", db, "--json").stdout)["derived"] == "cache"


def test_a_database_that_cannot_be_reached_is_one_line_without_the_password():
    proc = semhash("index", "info", "postgresql+psycopg://semhash:secret@127.0.0.1:9/none")
    fails_with(proc, "cannot open database postgresql+psycopg://semhash:***@127.0.0.1:9/none")
    fails_with(semhash("index", "info", "nosuchdriver://x/y"), "bad database URL")


def test_missing_data_without_a_network_is_one_line(tmp_path):
    # every download goes through a proxy that refuses connections: the network is down
    dead = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "http_proxy": dead,
        "https_proxy": dead,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "no_proxy": "",
    }
    proc = semhash("train", "--dataset", "mnist", "--data-root", tmp_path, "-o", tmp_path / "m.semhash", env=env)
    fails_with(proc, "the download failed")
    assert not (tmp_path / "m.semhash").exists()


def test_absurd_benchmark_parameters_are_refused(tmp_path):
    fails_with(semhash("bench", "search", "--n", "10", "--out", tmp_path), "at least 1,000")
    fails_with(semhash("bench", "train", "--ae-epochs", "0", "--dataset", "digits", "--out", tmp_path), "at least 1")
    fails_with(
        semhash("bench", "search", "--ae-model", tmp_path / "none.semhash", "--out", tmp_path), "no such model file"
    )


def test_serve_refuses_a_store_without_indexes_or_an_unknown_name(features, tmp_path):
    folder, model, db = features
    fails_with(semhash("serve", db, "--name", "nope"), "no index named 'nope'")
    from semhash.index_store.storage.store import Store

    Store(tmp_path / "empty.db")
    fails_with(semhash("serve", tmp_path / "empty.db"), "holds no index")
    fails_with(semhash("serve", db, "--workers", "0"), "--workers must be positive")
