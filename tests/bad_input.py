"""The world the bad-input tests share, and the contract they hold each entry point to.

- CLI (the real console entry point, in a subprocess): a non-zero exit, exactly one line on stderr
  that starts with "error: ", no traceback, nothing on stdout.
- HTTP (FastAPI's TestClient, or a live server): a 4xx status, never 5xx, and a JSON body
  {"detail": "<one line>"}.
- Python API (`import semhash`): a semhash.SemhashError subclass with a one-line message, and no
  other exception type.
- Every case: the database file and its derived cache folder are byte-identical afterwards, and
  nothing new appears beside them (a mistyped path must not create a database).

The world (`build_world`, once a session through conftest.py's `bad_input_world`): models/ (good
and broken .semhash files), inputs/ (images, vectors, feature files good and bad) and base/: items.db,
a 16-bit ITQ index of scikit-learn's digits plus three odd keys, with its cache, beside bad database
files. Each case gets it through the `sandbox` fixture, and what a case changed there is put back
from a byte copy (pristine/).

    def test_x(sandbox):                       # sandbox.d: base/, .db: items.db, .m: models/, .i: inputs/
        proc = semhash_cli(sandbox, "search", "{db}", "--image", "{i}/bomb.png")
        assert storage_problems(sandbox) == []
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

import semhash

ITEMS = 1503  # the digits training split plus the three odd keys the world adds
ODD_KEYS = ["digits/train/²", "digits/train/1500", "odd key"]  # (no NUL: an add refuses control characters)


# --- the world: models, an index, inputs good and bad ----------------------------------------------
def _png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format="PNG") if mode else Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _bomb_png(side: int = 13_000) -> bytes:
    """A valid 8-bit grey PNG that declares side x side pixels: zlib-compressed zero rows (~165 KB)."""
    comp, row = zlib.compressobj(9), b"\0" * (side + 1)  # filter byte 0, then the pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def build_world(root: Path, digits) -> SimpleNamespace:
    """models/, inputs/ and base/ under root, and base/'s byte copy pristine/ (see the module's
    docstring): SimpleNamespace(m, i, base, pristine, clean: base/'s snapshot)."""
    m, i, base = root / "models", root / "inputs", root / "base"
    for folder in (m, i, base):
        folder.mkdir()
    rng = np.random.default_rng(0)
    make_images(i, digits, rng)
    make_arrays(i, rng)
    make_models(m, i)
    make_index(base, m)
    make_bad_databases(base, rng)
    make_hand_edited(base)
    (base / "exported.jsonl").write_text('{"a file": "an export must not replace"}\n')
    # the cache records which database it was built from (its path): cases share base/ and a case
    # that changed anything gets it back from this byte copy, at the same path
    shutil.copytree(base, root / "pristine")
    return SimpleNamespace(m=m, i=i, base=base, pristine=root / "pristine", clean=snapshot(base))


def make_images(i: Path, digits, rng) -> None:
    """A training digit as an 8-bit, 16-bit, RGBA and palette PNG; files that are no image, a
    truncated PNG, a decompression bomb and one over the byte limit."""
    x8 = (digits[0].x[3, 0] * 255).round().astype(np.uint8)  # an 8x8 training digit
    (i / "q.png").write_bytes(_png(x8))
    (i / "png16.png").write_bytes(_png(x8.astype(np.uint16) * 257))  # the same digit, 16-bit grey
    Image.fromarray(x8).convert("RGBA").save(i / "rgba.png")
    Image.fromarray(x8).convert("RGB").resize((32, 32)).convert("P").save(i / "palette.png")
    (i / "notimage.png").write_bytes(b"this is not an image\n" * 10)
    (i / "empty.png").write_bytes(b"")
    noise = _png(rng.integers(0, 256, (64, 64), dtype=np.uint8))
    (i / "truncated.png").write_bytes(noise[: len(noise) // 2])
    (i / "bomb.png").write_bytes(_bomb_png())
    (i / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (10 << 20))  # 10 MiB + 8 bytes


def make_arrays(i: Path, rng) -> None:
    """Query vectors of the wrong length, type and shape; feature files good and bad."""
    np.save(i / "v63.npy", rng.random((2, 63)).astype(np.float32))
    np.save(i / "nan.npy", np.full((1, 64), np.nan, np.float32))
    np.save(i / "inf.npy", np.full((1, 64), np.inf, np.float32))
    np.save(i / "complex.npy", (rng.random((2, 64)) + 1j).astype(np.complex64))
    np.save(i / "object.npy", np.array([[0.5] * 64], dtype=object), allow_pickle=True)
    np.save(i / "strings.npy", np.array([["a"] * 64] * 2))
    np.save(i / "empty.npy", np.zeros((0, 64), np.float32))
    np.save(i / "cube.npy", rng.random((2, 8, 8)).astype(np.float32))
    (i / "notnpy.npy").write_bytes(b"not numpy at all\n")
    feats = rng.normal(size=(300, 24)).astype(np.float32)
    np.save(i / "feats.npy", feats)
    np.save(i / "feats_nan.npy", np.where(np.arange(24) == 5, np.nan, feats))
    np.save(i / "feats_3d.npy", feats.reshape(300, 4, 6))
    np.save(i / "labels_short.npy", np.arange(299))
    np.save(i / "labels_float.npy", np.linspace(0, 1, 300))
    np.savez(i / "nox.npz", y=np.arange(300))
    buf = io.BytesIO()
    np.savez(buf, x=feats, y=np.arange(300))
    (i / "short.npz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def make_models(m: Path, i: Path) -> None:
    """Good models (16 and 32 bits of the digits, 16 of the features) and broken .semhash files."""
    semhash.train("itq", "digits", m / "d16.semhash", bits=16)
    semhash.train("itq", "digits", m / "d32.semhash", bits=32)
    semhash.train("lsh", "digits", m / "lsh16.semhash", bits=16)
    semhash.train("itq", str(i / "feats.npy"), m / "f16.semhash", bits=16)
    good = (m / "d16.semhash").read_bytes()
    (m / "truncated.semhash").write_bytes(good[:50])
    (m / "truncated-tail.semhash").write_bytes(good[:-100])
    (m / "garbled.semhash").write_bytes(good[:8] + b"\xff" * 40 + good[48:])
    (m / "empty.semhash").write_bytes(b"")
    (m / "text.semhash").write_bytes(b"hello, I am a model\n")
    (m / "png.semhash").write_bytes((i / "q.png").read_bytes())
    (m / "huge-header.semhash").write_bytes(b"\xff" * 8 + b"{}")
    (m / "folder.semhash").mkdir()
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(m / "foreign.semhash"))  # safetensors, no semhash header
    header = json.loads(json.loads(good[8 : 8 + int.from_bytes(good[:8], "little")])["__metadata__"]["semhash"])
    save_file(
        {"w": np.zeros(3, np.float32)},
        str(m / "unknown-method.semhash"),
        metadata={"semhash": json.dumps({**header, "method": "zzz"})},
    )
    save_file(
        {"w": np.zeros(3, np.float32)},
        str(m / "itq-without-tensors.semhash"),
        metadata={"semhash": json.dumps(header)},
    )


def make_index(base: Path, m: Path) -> None:
    """items.db and its cache, fully checkpointed (no WAL left) so that a byte copy is complete."""
    index = semhash.build_index(base / "items.db", m / "d16.semhash", "digits")
    codes = index.searcher.codes[:3].copy()
    index.add(ODD_KEYS, codes)
    index.store.engine.dispose()
    del index
    gc.collect()
    assert not (base / "items.db-wal").exists() or (base / "items.db-wal").stat().st_size == 0
    check = semhash.Index.open(base / "items.db")
    assert len(check.searcher) == ITEMS and check.last_load == "cache"
    check.store.engine.dispose()
    del check
    gc.collect()


def make_bad_databases(base: Path, rng) -> None:
    """Random bytes, an empty and a text file, a truncated copy of items.db, another application's
    SQLite file, one with a table named like ours, and a folder named like a database."""
    (base / "garbage.db").write_bytes(rng.integers(0, 256, 8192, dtype=np.uint8).tobytes())
    (base / "empty.db").write_bytes(b"")
    (base / "text.db").write_bytes(b"not a database\n" * 100)
    db_bytes = (base / "items.db").read_bytes()
    (base / "truncated.db").write_bytes(db_bytes[: len(db_bytes) // 3])
    with sqlite3.connect(base / "foreign.db") as conn:  # another application's database
        conn.execute("CREATE TABLE people (name TEXT, age INTEGER)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [("ada", 36), ("alan", 41)])
    conn.close()
    with sqlite3.connect(base / "clash.db") as conn:  # a table named like ours, with other columns
        conn.execute("CREATE TABLE semhash_indexes (id INTEGER PRIMARY KEY, colour TEXT)")
        conn.execute("INSERT INTO semhash_indexes VALUES (1, 'red')")
    conn.close()
    (base / "dir.db").mkdir()
    for leftover in base.glob("*-shm"):
        leftover.unlink()


def make_hand_edited(base: Path) -> None:
    """Copies of items.db as a hand, or a hostile sender, edited them: damaged.db, where item
    digits/train/1's label is text and digits/train/2's metadata is no JSON; hostile.db, whose index
    records base/ as its image folder and whose item 'odd key' has the source ../../../../etc/hostname.
    Each gets its cache and k=10 plans first: a raw edit leaves the index's state, so they stay valid."""
    edits = {
        "damaged.db": [
            "UPDATE semhash_items SET label = 'three' WHERE key = 'digits/train/1'",
            "UPDATE semhash_items SET meta = '{broken' WHERE key = 'digits/train/2'",
        ],
        "hostile.db": [
            f"INSERT INTO semhash_index_meta (index_id, source_root) VALUES (1, '{base}')"
            " ON CONFLICT (index_id) DO UPDATE SET source_root = excluded.source_root",
            "UPDATE semhash_items SET source = '../../../../etc/hostname' WHERE key = 'odd key'",
        ],
    }
    for name, statements in edits.items():
        shutil.copy(base / "items.db", base / name)
        semhash.search(base / name, items=["digits/train/0"])  # the cache and plans a search makes
        gc.collect()  # the search's connection closed: the edit below is the file's only one
        with sqlite3.connect(base / name) as conn:
            for sql in statements:
                conn.execute(sql)
        conn.execute("PRAGMA journal_mode=DELETE")  # the edit in the file itself, no log beside it
        conn.close()
    for leftover in base.glob("*-shm"):
        leftover.unlink()


def restore(world) -> None:
    """base/ as pristine/ holds it."""
    gc.collect()  # connections a failed case left open are closed before their files are replaced
    shutil.rmtree(world.base)
    shutil.copytree(world.pristine, world.base)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file (SHA-256) and folder under `folder`. SQLite's shared-memory index (-shm) is not
    data; an empty write-ahead log (-wal), or one that vanishes while being read, is the same as none."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_dir():
            out[rel + "/"] = "folder"
        elif not p.name.endswith("-shm"):
            try:
                data = p.read_bytes()
            except FileNotFoundError:  # a log SQLite removed as a connection closed meanwhile
                continue
            if not (p.name.endswith("-wal") and not data):
                out[rel] = hashlib.sha256(data).hexdigest()
    return out


def storage_problems(x) -> list[str]:
    """What changed under x.d. A write still in a connection's write-ahead log shows as a -wal file
    with content, a checkpointed one as a changed database file: no need to close connections."""
    after = snapshot(x.d)
    problems = []
    for rel in sorted(set(after) - set(x.before)):
        problems.append(f"created {rel}")
    for rel in sorted(set(x.before) - set(after)):
        problems.append(f"removed {rel}")
    for rel in sorted(set(after) & set(x.before)):
        if after[rel] != x.before[rel]:
            problems.append(f"changed {rel}")
    return problems


def valid_query_problems(x) -> list[str]:
    """storage_problems, less the planner's measurements (plans.json beside the cache), which a
    valid query keeps so that the next process does not time its plan again."""
    return [p for p in storage_problems(x) if not p.endswith("plans.json")]


def one_line(text) -> bool:
    return isinstance(text, str) and text.strip() != "" and "\n" not in text and "\r" not in text


# --- the CLI -------------------------------------------------------------------------------------
def semhash_cli(x, *args, timeout=120):
    env = {**os.environ, "XDG_CACHE_HOME": str(x.tmp / "xdg"), "SEMHASH_DATA": str(x.tmp / "data")}
    argv = [a.format(d=x.d, db=x.db, m=x.m, i=x.i) for a in args]
    try:
        return subprocess.run(
            [sys.executable, "-c", "from semhash.cli.main import main; main()", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=x.tmp,
        )
    except subprocess.TimeoutExpired as exc:
        return SimpleNamespace(returncode="timeout", stdout=str(exc.stdout), stderr=str(exc.stderr))
