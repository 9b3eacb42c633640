"""Folders of real-world photos go into an index: any size, mode and orientation, each file decoded
once at the model's input size, unreadable files left out and named (or refused with --strict)."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import semhash
from semhash.hashing.baselines import ITQ
from semhash.hashing.errors import SkippedItems
from semhash.index_store.query import input_codes


def semhash_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A 16-bit ITQ model of 12x12 RGB images, trained on a folder of small generated photos."""
    folder, rng = tmp_path_factory.mktemp("train"), np.random.default_rng(2)
    for i in range(80):
        photo(rng, 12, 12).save(folder / f"{i}.png")
    path = folder / "photos.semhash"
    ITQ(bits=16).fit(semhash.load_dataset(str(folder))).save(path)
    return path


def photo(rng, width, height):
    """A smooth colour picture: a few blobs on a gradient (compresses like a photo, not like noise)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [np.sin(xx * rng.uniform(2, 9) + rng.uniform(0, 6)) + np.cos(yy * rng.uniform(2, 9)) for _ in range(3)]
    return Image.fromarray((np.stack(channels, -1) * 60 + 128).clip(0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def mixed(tmp_path):
    """A folder of every kind of file a phone or a camera roll holds, and two that are not images."""
    rng, folder = np.random.default_rng(0), tmp_path / "roll"
    folder.mkdir()
    photo(rng, 2000, 1500).save(folder / "big.jpg", quality=85)
    photo(rng, 56, 56).save(folder / "a-first-small.png")  # first in order: its size must not matter
    photo(rng, 640, 480).convert("RGBA").save(folder / "rgba.png")
    photo(rng, 300, 200).convert("L").save(folder / "grey.png")
    photo(rng, 300, 200).convert("P").save(folder / "palette.png")
    photo(rng, 400, 300).convert("CMYK").save(folder / "cmyk.jpg")
    sixteen = (np.asarray(photo(rng, 120, 90).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "sixteen.png")  # 16-bit grey
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    return folder


def test_a_mixed_folder_is_indexed_and_its_unreadable_files_are_named(model, mixed, tmp_path):
    built = semhash_cli("index", "build", tmp_path / "roll.db", "--model", model, "--images", mixed, "--json")
    assert built.returncode == 0, built.stderr
    assert "skipped 2 unreadable file(s) of roll: broken.jpg, empty.png" in built.stderr
    semhash.export_index(tmp_path / "roll.db", "default", tmp_path / "roll.npz")
    keys = set(np.load(tmp_path / "roll.npz")["keys"].tolist())
    assert keys == {
        f"roll/{f}"
        for f in ("a-first-small.png", "big.jpg", "cmyk.jpg", "grey.png", "palette.png", "rgba.png", "sixteen.png")
    }


def test_strict_refuses_the_folder_on_its_first_unreadable_file_and_stores_nothing(model, mixed, tmp_path):
    built = semhash_cli("index", "build", tmp_path / "roll.db", "--model", model, "--images", mixed, "--strict")
    assert built.returncode == 1 and built.stderr.startswith("error: ") and "broken.jpg" in built.stderr
    assert len(built.stderr.strip().splitlines()) == 1


def test_each_indexed_photo_finds_itself_at_distance_zero(model, mixed, tmp_path):
    with pytest.warns(SkippedItems, match="broken.jpg, empty.png"):
        semhash.build_index(tmp_path / "roll.db", model, str(mixed))
    for f in ("big.jpg", "cmyk.jpg", "rgba.png", "sixteen.png"):
        hits = semhash.search(tmp_path / "roll.db", images=[str(mixed / f)], k=None, radius=0)["queries"][0]["hits"]
        assert f"roll/{f}" in {h["key"] for h in hits}


def test_a_photo_is_read_the_way_its_exif_orientation_shows_it(model, tmp_path):
    upright = photo(np.random.default_rng(1), 64, 48).convert("L")
    upright.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the pixels are stored turned left
    upright.rotate(90, expand=True).save(tmp_path / "turned.png", exif=exif)
    hasher = semhash.load_hasher(model)
    assert (
        input_codes(hasher, "images", [tmp_path / "turned.png"])
        == input_codes(hasher, "images", [tmp_path / "upright.png"])
    ).all()


def test_a_list_of_images_brings_its_own_keys_classes_and_metadata(model, mixed, tmp_path):
    import csv

    with open(mixed / "list.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "key", "label", "taken by"])
        writer.writerow(["big.jpg", "trip/0001", "beach", "ana"])
        writer.writerow(["grey.png", "trip/0002", "city", "bo"])
        writer.writerow(["broken.jpg", "trip/0003", "city", "bo"])
    with pytest.warns(SkippedItems, match="skipped 1 unreadable file"):
        semhash.build_index(tmp_path / "trip.db", model, str(mixed / "list.csv"))
    hits = semhash.search(tmp_path / "trip.db", items=["trip/0001"], k=None, radius=0)["queries"][0]["hits"]
    own = next(h for h in hits if h["key"] == "trip/0001")
    assert own["class"] == "beach" and own["meta"] == {"taken by": "ana"}
    assert own["source"] == str(mixed / "big.jpg")


def test_paths_piped_one_a_line_are_queries_as_an_image_piped_is(model, mixed):
    paths = "\n".join(str(mixed / f) for f in ("grey.png", "rgba.png")) + "\n"
    piped = subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", "encode", "--model", str(model)]
        + ["--image", "-", "--format", "csv"],
        input=paths.encode(),
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    named = semhash_cli(
        "encode", "--model", model, "--image", mixed / "grey.png", "--image", mixed / "rgba.png", "--format", "csv"
    )
    assert piped.stdout.decode() == named.stdout
