"""`semhash index sync` keeps an index equal to a folder that changes: new files are added, deleted
ones removed, edited ones re-encoded; files of the same name in other folders never collide."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import semhash
from semhash.hashing.baselines import ITQ


def semhash_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def album(tmp_path):
    """A folder of 20 pictures and an 16-bit ITQ model of them."""
    folder = tmp_path / "album"
    folder.mkdir()
    for i in range(20):
        picture(i).save(folder / f"{i:02d}.png")
    ITQ(bits=16).fit(semhash.load_dataset(str(folder))).save(tmp_path / "m.semhash")
    return folder


def keys_of(db) -> set[str]:
    semhash.export_index(db, "default", db.parent / "keys.npz")
    return set(np.load(db.parent / "keys.npz")["keys"].tolist())


def test_sync_adds_removes_and_re_encodes_what_changed(album, tmp_path):
    db = tmp_path / "album.db"
    semhash.build_index(db, tmp_path / "m.semhash", str(album))
    picture(100).save(album / "new.png")
    (album / "03.png").unlink()
    picture(200).save(album / "07.png")  # edited in place: another picture under the same name
    done = semhash_cli("index", "sync", db, "--images", album, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "index": "default",
        "added": 1,
        "removed": 1,
        "changed": 1,
        "unchanged": 18,
        "skipped": 0,
    }
    assert keys_of(db) == {f"album/{i:02d}.png" for i in range(20) if i != 3} | {"album/new.png"}
    hits = semhash.search(db, images=[str(album / "07.png")], k=None, radius=0)["queries"][0]["hits"]
    assert "album/07.png" in {h["key"] for h in hits}
    again = semhash_cli("index", "sync", db, "--images", album, "--json")
    assert json.loads(again.stdout)["unchanged"] == 20 and json.loads(again.stdout)["added"] == 0


def test_a_file_that_cannot_be_read_is_kept_as_indexed_and_named(album, tmp_path):
    db = tmp_path / "album.db"
    semhash.build_index(db, tmp_path / "m.semhash", str(album))
    (album / "05.png").write_bytes(b"truncated")
    done = semhash_cli("index", "sync", db, "--images", album)
    assert done.returncode == 0 and "skipped 1 unreadable file(s) of album: 05.png" in done.stderr
    assert "album/05.png" in keys_of(db)


def test_same_file_names_in_other_folders_never_collide(album, tmp_path):
    other = tmp_path / "2024" / "album-2024"
    other.mkdir(parents=True)
    for i in range(5):
        picture(50 + i).save(other / f"{i:02d}.png")  # the same names as the first album's
    db = tmp_path / "both.db"
    semhash.build_index(db, tmp_path / "m.semhash", str(album))
    added = semhash_cli("index", "add", db, "--images", other)
    assert added.returncode == 0, added.stderr
    assert len(keys_of(db)) == 25
