"""Thumbnails (`GET /indexes/{name}/thumbnail`) and result grids (`search --show`) of items whose
image files are at hand: each file decoded once within the preview's bounds (pixels, JPEG draft,
PREVIEW_SIZE a side), its PNG kept per server process until the file changes, a file too large to
decode answered with a 400 of one line (thumbnail) or a tile saying so (grid), and never more
than DECODES_AT_ONCE decodes at a time."""

import io
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import semhash
from semhash.benchmarks.bench_hostile import declared_png
from semhash.index_store import grid
from semhash.index_store.build import build_index
from semhash.index_store.http import routes
from semhash.index_store.http.service import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An index "photos" of a folder of five pictures (one of them 3000 x 2000), built with a 16-bit
    model of 8 x 8 RGB pictures; big.png is replaced by a PNG declaring 13,000 x 13,000 pixels
    after the build (as a served folder's files change)."""
    folder = tmp_path_factory.mktemp("thumbnails")
    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in {"a.png": (40, 30), "b.jpg": (64, 48), "c.png": (20, 20), "big.png": (8, 8)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photos / name)
    Image.new("RGB", (3000, 2000), (200, 40, 40)).save(photos / "photo.jpg", quality=90)
    train = folder / "train"
    train.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(train / f"{i}.png")
    model = semhash.make_hasher("itq", bits=16).fit(semhash.load_dataset(str(train))).save(folder / "m.semhash")
    build_index(str(folder / "items.db"), model, str(photos), name="photos")
    (photos / "big.png").write_bytes(declared_png(13_000, 13_000))
    return folder, TestClient(create_app(str(folder / "items.db")))


def thumbnail(client, key):
    return client.get("/indexes/photos/thumbnail", params={"key": key})


@pytest.fixture
def decodes(monkeypatch):
    """The item keys decoded (grid.item_pixels called) while a test runs."""
    seen, real = [], grid.item_pixels
    monkeypatch.setattr(grid, "item_pixels", lambda key, *a: seen.append(key) or real(key, *a))
    return seen


def test_a_photo_gives_a_small_png_decoded_once(served, decodes):
    _, client = served
    first, again = thumbnail(client, "photos/photo.jpg"), thumbnail(client, "photos/photo.jpg")
    assert first.status_code == again.status_code == 200 and first.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(first.content)) as im:
        assert im.size == (256, 171)  # PREVIEW_SIZE on the longer side, the aspect kept
    assert again.content == first.content and decodes == ["photos/photo.jpg"]


def test_a_file_replaced_in_place_is_decoded_afresh(served, decodes):
    folder, client = served
    before = thumbnail(client, "photos/c.png").content
    Image.new("RGB", (30, 10), (0, 255, 0)).save(folder / "photos" / "c.png")
    after = thumbnail(client, "photos/c.png")
    assert after.status_code == 200 and after.content != before and decodes == ["photos/c.png"] * 2


def test_an_image_too_large_to_decode_is_a_400_of_one_line_refused_once(served, decodes):
    _, client = served
    answers = [thumbnail(client, "photos/big.png") for _ in range(3)]
    for r in answers:
        detail = r.json()["detail"]
        assert r.status_code == 400 and "\n" not in detail
        assert detail.startswith("item 'photos/big.png' has no thumbnail: ") and "13000x13000 pixels" in detail
    assert decodes == ["photos/big.png"]  # the refusal is kept too: asking again decodes nothing


def test_the_kept_pngs_are_bounded_in_entries_and_bytes(served):
    folder, _ = served
    files = [(f"photos/{n}", str(folder / "photos" / n)) for n in ("a.png", "b.jpg", "photo.jpg")]
    total = sum(len(routes.Thumbnails().png(key, path, None)) for key, path in files)
    few, small = routes.Thumbnails(entries=2), routes.Thumbnails(nbytes=total - 1)
    for kept in (few, small):
        for key, path in files:
            assert kept.png(key, path, None)[:4] == b"\x89PNG"
    assert len(few._kept) == 2 and [v[0] for v in few._kept] == [files[1][1], files[2][1]]  # the oldest went
    assert len(small._kept) == 2 and small.used <= total - 1


def test_no_more_than_two_decodes_run_at_once(served, monkeypatch):
    folder, _ = served
    running, most, lock = [0], [0], threading.Lock()

    def slow(key, source, data_root):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return np.zeros((4, 4))

    monkeypatch.setattr(grid, "item_pixels", slow)
    kept = routes.Thumbnails()
    paths = [str(p) for p in (folder / "photos").iterdir()]
    threads = [threading.Thread(target=kept.png, args=(f"k{i}", p, None)) for i, p in enumerate(paths * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == routes.DECODES_AT_ONCE == 2


def test_a_result_grid_shows_a_refused_image_as_a_tile_and_draws_the_rest(served):
    folder, _ = served
    result = semhash.search(
        str(folder / "items.db"), "photos", images=[str(folder / "photos" / "a.png")], k=5, show=folder / "grid.png"
    )
    assert "photos/big.png" in [h["key"] for h in result["queries"][0]["hits"]]
    with Image.open(result["grid"]) as im:
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert (224, 224, 224) in colours and (200, 40, 40) in {tuple(c) for c in colours}  # "no preview"; the photo
