"""semhash in a pipeline: output into a pipe whose reader left (`| head -1`) ends quietly with
exit 0; `--item -` and `--code -` read one key or hex code a line from standard input, bounded."""

import json
import subprocess
import sys

import pytest

from semhash.hashing.methods import make_hasher
from semhash.index_store.build import build_index

SEMHASH = [sys.executable, "-c", "from semhash.cli.main import main; main()"]


@pytest.fixture(scope="module")
def db(tmp_path_factory, digits):
    """The 1,500 digits' 16-bit ITQ index; and its model, which encodes queries."""
    folder = tmp_path_factory.mktemp("pipes")
    model = make_hasher("itq", bits=16).fit(digits[0])
    build_index(str(folder / "items.db"), model.save(folder / "m.semhash"), digits[0])
    return folder / "items.db", model


def run(*args, stdin: bytes = b""):
    return subprocess.run([*SEMHASH, *map(str, args)], input=stdin, capture_output=True, timeout=120)


def queries(out: bytes) -> list[tuple[str, str, int]]:
    """(query, key, distance) of each JSON line."""
    return [(r["query"], r["key"], r["distance"]) for r in map(json.loads, out.decode().splitlines())]


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "jsonl"])
def test_output_into_a_closed_pipe_ends_quietly(db, fmt):
    path, _ = db
    proc = subprocess.Popen(
        [*SEMHASH, "search", str(path), "--item", "digits/train/0", "--format", fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first write
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


def test_head_takes_the_first_line_and_semhash_exits_0(db):
    path, _ = db
    line = [*SEMHASH, "search", str(path), "--item", "digits/train/0", "-k", "1500", "--format", "json"]
    pipeline = " ".join(f"'{part}'" for part in line) + " | head -1; echo ${PIPESTATUS[0]}"
    proc = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines() == ["{", "0"]  # of 230 KB, more than a pipe holds: a write failed
    assert proc.stderr == ""


def test_item_dash_reads_one_key_a_line(db):
    path, _ = db
    stdin = b"digits/train/0\r\n\ndigits/train/1\n"  # a CR before the newline and a blank line: neither a key
    piped = run("search", path, "--item", "digits/train/2", "--item", "-", "-k", 3, "--format", "jsonl", stdin=stdin)
    keys = ["digits/train/2", "digits/train/0", "digits/train/1"]
    typed = run("search", path, *(a for key in keys for a in ("--item", key)), "-k", 3, "--format", "jsonl")
    assert piped.returncode == 0, piped.stderr
    assert queries(piped.stdout) == queries(typed.stdout)
    assert [q for q, _, _ in queries(piped.stdout)][::3] == keys


def test_code_dash_reads_one_hex_code_a_line(db, digits):
    path, model = db
    codes = [c.tobytes().hex() for c in model.encode(digits[1].subset(2))]
    piped = run(
        "search", path, "--code", "-", "-k", 2, "--format", "jsonl", stdin=f" {codes[0]} \n{codes[1]}\n".encode()
    )
    typed = run("search", path, "--code", codes[0], "--code", codes[1], "-k", 2, "--format", "jsonl")
    assert piped.returncode == 0, piped.stderr
    assert queries(piped.stdout) == queries(typed.stdout) and len(queries(typed.stdout)) == 4


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["--item", "-"], b"k\n" * (2 * 2**20 + 1), "error: --item -: standard input holds more than 4 MiB"),
        (["--item", "-"], b"\xff\n", "error: --item -: standard input is not UTF-8 text"),
        (["--code", "-"], b"\n \n", "error: --code -: standard input holds no line"),
        (["--item", "-", "--item", "-"], b"k\n", "error: --item - reads standard input once"),
    ],
)
def test_standard_input_beyond_its_bounds_is_one_line(db, args, stdin, message):
    path, _ = db
    proc = run("search", path, *args, stdin=stdin)
    assert proc.returncode == 1 and proc.stdout == b""
    err = proc.stderr.decode()
    assert err.startswith(message) and err.count("\n") == 1, err
