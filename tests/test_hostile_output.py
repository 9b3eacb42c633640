"""A key never acts on whoever reads the output: in a table, rich markup in a key is text and a
control character is shown escaped (never sent to the terminal); in CSV (search, dedup, index
export), no cell starts a spreadsheet formula and a cell holding a CR stays in its row.

The keys come from a database another tool wrote (today's writers refuse control characters in
keys) and from file names, which may hold anything but / and NUL."""

import csv
import io
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from semhash.hashing.methods import make_hasher
from semhash.index_store.build import build_index

HOSTILE = ["[/]", "[link=http://evil.example]click[/link]", "=1+1", "\x1b]0;x\x07", "a\rb", "cats [draft]/a [v2].png"]
# as a table shows each: control characters written as in a Python string literal, the rest as is
SHOWN = ["[/]", "[link=http://evil.example]click[/link]", "=1+1", "\\x1b]0;x\\x07", "a\\rb", "cats [draft]/a [v2].png"]
# as a CSV cell holds each: a formula neutralised by a leading ', the rest exactly
IN_CSV = ["[/]", "[link=http://evil.example]click[/link]", "'=1+1", "\x1b]0;x\x07", "a\rb", "cats [draft]/a [v2].png"]
INDEX_NAME = "[link=http://evil.example]x[/link]\x1b[31m"
FILES = ["[/].png", "=1+1.png", "\x1b]0;x\x07.png", "a\rb.png"]  # "[/].png": a file "].png" in a folder "["


def semhash_cli(*args, cwd=None):
    proc = subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc.stdout.decode()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, digits):
    """A store whose index "hostile" holds the six keys and whose second index has a hostile name;
    a folder q of images with hostile file names; the model."""
    folder = tmp_path_factory.mktemp("hostile")
    model = make_hasher("itq", bits=16).fit(digits[0]).save(folder / "m.semhash")
    db = folder / "h.db"
    build_index(str(db), model, digits[0].subset(len(HOSTILE)), name="hostile")
    build_index(str(db), model, digits[0].subset(2), name="other")
    con = sqlite3.connect(db)
    with con:
        for i, key in enumerate(HOSTILE):
            con.execute("UPDATE semhash_items SET key = ? WHERE key = ?", (key, f"digits/train/{i}"))
        con.execute("UPDATE semhash_indexes SET name = ? WHERE name = 'other'", (INDEX_NAME,))
    con.close()
    (folder / "q" / "[").mkdir(parents=True)
    pixels = (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)
    for name in FILES:
        Image.fromarray(pixels).save(folder / "q" / name)
    return folder, db, model


def column(table: str, i: int) -> list[str]:
    """The cells of column i of a rich table printed to a pipe (its rows between │ borders)."""
    return [line.split("│")[i + 1].strip() for line in table.splitlines() if line.startswith("│")]


def assert_inert(text: str) -> None:
    """Nothing a terminal would obey: no escape, bell or carriage return."""
    assert not {"\x1b", "\x07", "\r"} & set(text), repr(text)


@pytest.mark.parametrize("query", [0, 3], ids=["markup", "escape"])
def test_search_tables_show_keys_as_text(hostile, query):
    _, db, _ = hostile
    out = semhash_cli("search", db, "--name", "hostile", "--item", HOSTILE[query], "-k", len(HOSTILE))
    assert_inert(out)
    assert out.splitlines()[0] == f"query {SHOWN[query]}: {len(HOSTILE)} neighbour(s)"
    assert sorted(column(out, 0)) == sorted(SHOWN)


def test_dedup_index_list_and_encode_tables_show_names_as_text(hostile):
    folder, db, model = hostile
    groups = semhash_cli("dedup", db, "--name", "hostile", "--radius", 16, "--threshold", -1)
    assert_inert(groups)
    assert sorted(column(groups, 2)) == sorted(SHOWN)
    listed = semhash_cli("index", "list", db)
    assert_inert(listed)
    assert sorted(column(listed, 0)) == sorted(["hostile", "[link=http://evil.example]x[/link]\\x1b[31m"])
    encoded = semhash_cli("encode", "--model", model, "--image", "q", cwd=folder)
    assert_inert(encoded)
    assert sorted(column(encoded, 0)) == sorted(["q/[/].png", "q/=1+1.png", "q/\\x1b]0;x\\x07.png", "q/a\\rb.png"])


def test_search_and_dedup_csv_neutralise_formulas_and_keep_rows_whole(hostile):
    _, db, _ = hostile
    out = semhash_cli("search", db, "--name", "hostile", "--item", "=1+1", "-k", len(HOSTILE), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert sorted(r["key"] for r in rows) == sorted(IN_CSV)  # six rows: the CR split none
    assert {r["query"] for r in rows} == {"'=1+1"}
    assert "\n'=1+1,1,'=1+1," in out and ',"a\rb",' in out  # neutralised; the CR quoted
    out = semhash_cli("dedup", db, "--name", "hostile", "--radius", 16, "--threshold", -1, "--format", "csv")
    assert sorted(r["key"] for r in csv.DictReader(io.StringIO(out, newline=""))) == sorted(IN_CSV)


def test_index_export_csv_neutralises_formulas_and_keeps_rows_whole(hostile):
    folder, db, _ = hostile
    semhash_cli("index", "export", db, "--name", "hostile", "-o", folder / "e.csv")
    text = (folder / "e.csv").read_bytes().decode()
    assert text.startswith("key,label,code,class,source,meta\r\n")
    assert "\r\n'=1+1,2," in text and '\r\n"a\rb",4,' in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["key"] for r in rows] == IN_CSV


@pytest.mark.parametrize(
    "args", [["--name", "hostile", "--item", "\x1b]0;gone\x07"], ["--name", "gone", "--item", "a"]]
)
def test_an_error_naming_a_hostile_key_or_index_is_one_inert_line(hostile, args):
    _, db, _ = hostile
    proc = subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", "search", str(db), *args],
        capture_output=True,
        timeout=120,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert_inert(err)  # the second names the store's indexes, the hostile one among them
