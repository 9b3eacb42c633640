"""An index travels: copied with its model (and its image folder) anywhere, searched from any
folder; class names come back as labels; read-only commands start without torch or SQLAlchemy;
one flag vocabulary across commands, with the choices shell completion offers."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import semhash
from semhash.cli import options
from semhash.hashing.autoencoder.registry import BOTTLENECKS
from semhash.hashing.methods import METHODS
from semhash.index_store.index import Index
from semhash.index_store.storage.sqlite_reader import COLUMNS, META_COLUMNS, SqliteReader
from semhash.index_store.storage.store import Store

CLASSES = ["cat", "dog", "owl"]


def semhash_cli(*args, cwd=None):
    proc = subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def photos(tmp_path_factory, digits):
    """A class-per-folder RGB image collection (digits 0, 1, 2 named cat, dog, owl), its ITQ
    model and index, built from inside the build folder with relative paths, as a user would."""
    where = tmp_path_factory.mktemp("built")
    x, y = digits[0].x, digits[0].labels
    for i in np.flatnonzero(y < 3)[:150]:
        (where / "photos" / CLASSES[y[i]]).mkdir(parents=True, exist_ok=True)
        pixels = (np.repeat(x[i].reshape(8, 8, 1), 3, axis=2) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(where / "photos" / CLASSES[y[i]] / f"{i}.png")
    semhash_cli("train", "--images", "photos", "--method", "itq", "--bits", 16, "-o", "m.semhash", cwd=where)
    semhash_cli("index", "build", "idx.db", "--model", "m.semhash", "--images", "photos", cwd=where)
    return where


def search(db, *args, cwd):
    out = semhash_cli("search", db, *args, "--format", "json", cwd=cwd)
    return json.loads(out)["queries"]


def test_a_copied_index_and_model_work_from_any_folder(photos, tmp_path):
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for name in ("idx.db", "m.semhash"):
        shutil.copy(photos / name, copy / name)
    shutil.copytree(photos / "photos", copy / "photos")
    key = next(iter(sorted((photos / "photos" / "dog").iterdir()))).name
    here = search(photos / "idx.db", "--item", f"photos/dog/{key}", "-k", 5, cwd=photos)
    (photos / "m.semhash").rename(photos / "moved.semhash")  # the recorded model is gone,
    (photos / "photos").rename(photos / "moved-photos")  # and so is the recorded image folder
    try:
        there = search(copy / "idx.db", "--image", copy / "photos" / "dog" / key, "-k", 5, cwd=tmp_path)
    finally:
        (photos / "moved.semhash").rename(photos / "m.semhash")
        (photos / "moved-photos").rename(photos / "photos")
    assert [h["key"] for h in there[0]["hits"]] == [h["key"] for h in here[0]["hits"]]
    # sources resolve against the folder copied beside the database
    assert all(h["source"].startswith(str(copy / "photos")) for h in there[0]["hits"])
    assert all((copy / "photos" / h["key"].split("/", 1)[1]).is_file() for h in there[0]["hits"])


def test_sources_follow_a_moved_folder_when_told(photos, tmp_path):
    moved = tmp_path / "new-home"
    shutil.copytree(photos / "photos", moved)
    hits = search(photos / "idx.db", "--item", "photos/cat/0.png", "-k", 3, "--source-root", moved, cwd=tmp_path)
    assert all(
        h["source"].startswith(str(moved)) and (moved / h["source"][len(str(moved)) + 1 :]).is_file()
        for h in hits[0]["hits"]
    )


def test_folder_class_names_come_back_as_labels(photos):
    hits = search(photos / "idx.db", "--item", "photos/cat/0.png", "-k", 20, cwd=photos)[0]["hits"]
    assert {h["class"] for h in hits} <= set(CLASSES)
    assert all(h["class"] == CLASSES[h["label"]] for h in hits)
    info = json.loads(semhash_cli("index", "info", photos / "idx.db", "--json"))
    assert info["classes"] == CLASSES and info["source_root"] == str(photos / "photos")


def test_the_standard_library_reader_reads_what_the_store_wrote(photos):
    db = photos / "idx.db"
    store, reader = Store(db, "read"), SqliteReader(f"sqlite:///{db}", db)
    assert reader.get_index("default") == store.get_index("default")
    assert reader.index_names() == store.index_names()
    ids, codes, row = reader.load_codes("default")
    ids2, codes2, row2 = store.load_codes("default")
    assert (ids == ids2).all() and (codes == codes2).all() and row == row2
    assert reader.items("default", ids[:40]) == store.items("default", ids[:40])
    keys = [m["key"] for m in reader.items("default", ids[:5]).values()] + ["no-such-key"]
    assert reader.ids_of("default", keys) == store.ids_of("default", keys)
    assert reader.count("default") == store.count("default") == len(ids)


def test_the_reader_knows_the_schema_the_store_creates():
    from semhash.index_store.storage import schema

    for name, columns in COLUMNS.items():
        assert [c.name for c in schema.metadata.tables[name].columns] == columns
    assert [c.name for c in schema.index_meta.columns] == META_COLUMNS


PROBE = """
import sys, io, contextlib
sys.argv = ["semhash", *sys.argv[1:]]
from semhash.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
print(" ".join(m for m in ("torch", "sqlalchemy", "sklearn", "torchvision") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["search", "idx.db", "--item", "photos/cat/0.png"],
        ["search", "idx.db", "--image", "photos/cat/0.png"],  # an ITQ model needs no torch
        ["index", "info", "idx.db"],
        ["index", "list", "idx.db"],
        ["index", "verify", "idx.db"],
        ["--help"],
    ],
)
def test_read_only_commands_import_neither_torch_nor_sqlalchemy(photos, args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=photos)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_the_cli_choices_are_the_librarys():
    assert {m.value for m in options.Method} == set(METHODS) | {"auto"}
    assert {b.value for b in options.BottleneckName} == set(BOTTLENECKS)


def test_shell_completion_script_is_offered(monkeypatch):
    # the shell as named, not detected from the parent processes (none is a shell under nohup)
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    out = semhash_cli("--show-completion", "bash")
    assert "_semhash_completion" in out or "complete" in out


def test_train_and_index_build_take_the_same_data_flags(tmp_path, digits):
    x, y = digits[0].x.reshape(len(digits[0]), -1), digits[0].labels
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    flags = ["--features", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--limit", 400]
    summary = json.loads(
        semhash_cli("train", *flags, "--method", "pcah", "--bits", 16, "-o", "f.semhash", "--json", cwd=tmp_path)
    )
    assert summary["items"] == 400
    info = json.loads(semhash_cli("index", "build", "f.db", "--model", "f.semhash", *flags, "--json", cwd=tmp_path))
    assert info["items"] == 400
    hits = search(tmp_path / "f.db", "--vector", tmp_path / "x.npy", "--limit", 3, "-k", 2, cwd=tmp_path)
    assert len(hits) == 3 and all(h["hits"][0]["distance"] == 0 for h in hits)


def test_a_second_process_reuses_the_measured_plans(photos):
    search(photos / "idx.db", "--item", "photos/cat/0.png", "-k", 7, cwd=photos)
    plans = json.loads((photos / "idx.db.cache" / "default" / "plans.json").read_text())
    assert "7" in plans["plans"]["knn"]
    index = Index.open(photos / "idx.db", mode="read")
    searcher = index.searcher
    assert 7 in searcher._knn_plans and not searcher.new_plans
    assert semhash.search(photos / "idx.db", items=["photos/cat/0.png"], k=7)["queries"][0]["hits"]


BLOCKED = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if that extra were not installed
sys.argv = ["semhash", *sys.argv[2:]]
from semhash.cli.main import main
main()
"""


@pytest.mark.parametrize(
    "blocked, args, extra",
    [
        ("fastapi,uvicorn", ["serve", "idx.db", "--port", "0"], "serve"),
        ("psycopg", ["index", "info", "postgresql+psycopg://u:secret@127.0.0.1:1/db"], "postgres"),
    ],
)
def test_a_missing_extra_is_named_in_one_line(photos, blocked, args, extra):
    proc = subprocess.run([sys.executable, "-c", BLOCKED, blocked, *args], capture_output=True, text=True, cwd=photos)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and f"pip install 'semhash[{extra}]'" in proc.stderr, proc.stderr
    assert "secret" not in proc.stderr


def test_dedup_of_a_folder_groups_as_dedup_of_its_index(photos):
    folder = json.loads(
        semhash_cli("dedup", "photos", "--model", "m.semhash", "--radius", 1, "--format", "json", cwd=photos)
    )
    index = json.loads(semhash_cli("dedup", "idx.db", "--radius", 1, "--format", "json", cwd=photos))
    assert folder["groups"] == index["groups"] and folder["items"] == index["items"] == 150


def test_a_folder_beside_the_database_does_not_shadow_the_recorded_one(photos, tmp_path):
    copy = tmp_path / "copy"
    (copy / "photos" / "cat").mkdir(parents=True)
    shutil.copy(photos / "idx.db", copy / "idx.db")
    hits = search(copy / "idx.db", "--item", "photos/cat/0.png", "-k", 1, "--model", photos / "m.semhash", cwd=tmp_path)
    assert hits[0]["hits"][0]["source"] == str(photos / "photos" / "cat" / "0.png")  # the recorded folder is there


def test_refusals_of_the_new_options_are_one_line(photos, tmp_path):
    cases = [
        (["search", "idx.db", "--item", "photos/cat/0.png", "--source-root", tmp_path / "nowhere"], "no such folder"),
        (["train", "--dataset", "digits", "--labels", "y.npy", "-o", tmp_path / "x.semhash"], "go with a feature file"),
        (["dedup", "idx.db", "--model", "m.semhash"], "a model goes with a folder"),
        (["index", "list", tmp_path / "nope.db"], "no such database file"),
    ]
    for args, message in cases:
        proc = subprocess.run(
            [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=photos,
        )
        assert proc.returncode == 1 and proc.stdout == "", (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, (args, proc.stderr)


def test_a_second_folder_added_keeps_the_class_names_and_finds_its_files(photos, tmp_path):
    db = tmp_path / "x.db"
    shutil.copy(photos / "idx.db", db)
    more = tmp_path / "more pics"
    for name, cls in (("a.png", "owl"), ("b.png", "cat")):  # a subset of the classes, in another order
        (more / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(next(iter(sorted((photos / "photos" / cls).iterdir()))), more / cls / name)
    semhash_cli("index", "add", db, "--model", photos / "m.semhash", "--images", more, cwd=tmp_path)
    for key, cls in (("more pics/owl/a.png", "owl"), ("more pics/cat/b.png", "cat")):
        hit = search(db, "--item", key, "--radius", 0, cwd=tmp_path)[0]["hits"]
        mine = next(h for h in hit if h["key"] == key)
        assert mine["class"] == cls and os.path.isfile(mine["source"])
    strange = tmp_path / "strange"
    (strange / "fox").mkdir(parents=True)
    shutil.copy(more / "owl" / "a.png", strange / "fox" / "c.png")
    before = db.read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from semhash.cli.main import main; main()",
            "index",
            "add",
            str(db),
            "--model",
            str(photos / "m.semhash"),
            "--images",
            str(strange),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and "not among index" in proc.stderr and db.read_bytes() == before


@pytest.mark.parametrize("name", ["q?x.db", "r%20s.db", "with space#1.db"])
def test_a_path_names_that_very_file(photos, tmp_path, name):
    semhash_cli("index", "build", name, "--model", photos / "m.semhash", "--images", photos / "photos", cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name + ".cache"])
    assert search(tmp_path / name, "--item", "photos/cat/0.png", "-k", 1, cwd=tmp_path)[0]["hits"]


def test_a_locked_database_is_an_error_never_a_stale_answer(photos, tmp_path):
    import sqlite3

    db = tmp_path / "locked.db"
    shutil.copy(photos / "idx.db", db)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA locking_mode=EXCLUSIVE")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM semhash_vectors")  # any write: it takes the lock
    writer.execute("COMMIT")  # exclusive mode: the lock stays held after the commit
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from semhash.cli.main import main; main()", "index", "info", str(db)],
            capture_output=True,
            text=True,
            env={**os.environ, "SEMHASH_LOCK_TIMEOUT": "0.5"},
        )
    finally:
        writer.close()
    assert proc.returncode == 1 and proc.stdout == "" and "locked" in proc.stderr, proc.stderr
