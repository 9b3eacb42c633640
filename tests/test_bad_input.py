"""A corpus of bad input at the three entry points, each held to one contract.

- CLI (the real console entry point, in a subprocess): a non-zero exit, exactly one line on stderr
  that starts with "error: ", no traceback, nothing on stdout.
- HTTP (FastAPI's TestClient): a 4xx status, never 5xx, and a JSON body {"detail": "<one line>"}.
- Python API (`import semhash`): a semhash.SemhashError subclass with a one-line message, and no
  other exception type.
- Every case: the database file and its derived cache folder are byte-identical afterwards, and
  nothing new appears beside them (a mistyped path must not create a database).

A module-scoped index of scikit-learn's digits (16-bit ITQ) is built once; every file in the folder
that holds it is checksummed before and after each case (and put back when a case changed it). A
few "accepts" cases (16-bit, RGBA and palette images, a huge k) must succeed and change nothing.
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
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import semhash
from semhash.hashing.errors import SemhashError

ITEMS = 1503  # the digits training split plus the three odd keys the fixture adds
ODD_KEYS = ["digits/train/²", "digits/train/1500", "odd key"]  # (no NUL: an add refuses control characters)


# --- the module's data: models, an index, inputs good and bad -------------------------------------
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


@pytest.fixture(scope="module")
def world(tmp_path_factory, digits):
    """models/ (good and broken .semhash files), inputs/ (images, vectors, feature files) and base/:
    items.db (a 16-bit ITQ index of the digits training split, plus three odd keys) with its cache,
    beside bad database files."""
    root = tmp_path_factory.mktemp("bad-input")
    m, i, base = root / "models", root / "inputs", root / "base"
    for folder in (m, i, base):
        folder.mkdir()
    rng = np.random.default_rng(0)

    # inputs
    x8 = (digits[0].x[3, 0].numpy() * 255).round().astype(np.uint8)  # an 8x8 training digit
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

    # models
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

    # the index, and its cache, fully checkpointed (no WAL left) so that a byte copy is complete
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

    # bad database files beside it
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
    # the cache records which database it was built from (its path): cases share base/ and a case
    # that changed anything gets it back from this byte copy, at the same path
    shutil.copytree(base, root / "pristine")
    return SimpleNamespace(m=m, i=i, base=base, pristine=root / "pristine", clean=snapshot(base))


def restore(world) -> None:
    gc.collect()  # connections a failed case left open are closed before their files are replaced
    shutil.rmtree(world.base)
    shutil.copytree(world.pristine, world.base)


@pytest.fixture
def x(world, tmp_path, monkeypatch):
    """The shared store folder (d) as the module built it, its index (db), the models (m) and
    inputs (i); whatever a case changed there is put back afterwards."""
    if snapshot(world.base) != world.clean:
        restore(world)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SEMHASH_DATA", str(tmp_path / "data"))  # no data set is ever downloaded
    yield SimpleNamespace(
        d=world.base, db=str(world.base / "items.db"), m=world.m, i=world.i, tmp=tmp_path, before=world.clean
    )
    if snapshot(world.base) != world.clean:
        restore(world)


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


SECRET = {"excludes": "secret"}
SEARCH = ["search", "{db}", "--item", "digits/train/0"]
AE = ["train", "--dataset", "digits", "--epochs", "1", "--limit", "64", "-o", "{d}/x.semhash"]

CLI_CASES = [
    # index files: mistyped, garbage, foreign
    ("info-mistyped-path", ["index", "info", "{d}/typo.db"], {}),
    ("verify-mistyped-path", ["index", "verify", "{d}/typo.db"], {}),
    ("search-mistyped-path", ["search", "{d}/typo.db", "--item", "digits/train/0"], {}),
    ("info-random-bytes", ["index", "info", "{d}/garbage.db"], {}),
    ("info-truncated-sqlite", ["index", "info", "{d}/truncated.db"], {}),
    ("search-foreign-sqlite", ["search", "{d}/foreign.db", "--code", "0000"], {}),
    ("verify-table-named-like-ours", ["index", "verify", "{d}/clash.db"], {}),
    ("info-postgres-bad-port", ["index", "info", "postgresql+psycopg://user:secret@127.0.0.1:70000/db"], SECRET),
    ("info-unknown-driver", ["index", "info", "postgresql+nodriver://user:secret@host/db"], SECRET),
    # model files
    ("search-missing-model", ["search", "{db}", "--dataset", "digits", "--model", "{m}/missing.semhash"], {}),
    (
        "build-garbled-model",
        ["index", "build", "{d}/new.db", "--model", "{m}/garbled.semhash", "--dataset", "digits"],
        {},
    ),
    ("search-model-of-32-bits", ["search", "{db}", "--dataset", "digits", "--model", "{m}/d32.semhash"], {}),
    ("search-another-16-bit-model", ["search", "{db}", "--dataset", "digits", "--model", "{m}/lsh16.semhash"], {}),
    # images and vectors
    ("image-missing", ["search", "{db}", "--image", "{i}/missing.png"], {}),
    ("image-not-an-image", ["search", "{db}", "--image", "{i}/notimage.png"], {}),
    ("image-truncated-png", ["search", "{db}", "--image", "{i}/truncated.png"], {}),
    ("image-13000x13000-png", ["search", "{db}", "--image", "{i}/bomb.png"], {}),
    ("vector-wrong-length", ["search", "{db}", "--vector", "{i}/v63.npy"], {}),
    ("vector-nan", ["search", "{db}", "--vector", "{i}/nan.npy"], {}),
    ("vector-empty", ["search", "{db}", "--vector", "{i}/empty.npy"], {}),
    (
        "build-labels-wrong-length",
        [
            "index",
            "build",
            "{d}/new.db",
            "--model",
            "{m}/f16.semhash",
            "--features",
            "{i}/feats.npy",
            "--labels",
            "{i}/labels_short.npy",
        ],
        {},
    ),
    # absurd parameters
    ("k-0", [*SEARCH, "-k", "0"], {}),
    ("radius-over-bits", [*SEARCH, "--radius", "17"], {}),
    ("limit-0", ["search", "{db}", "--dataset", "digits", "--limit", "0"], {}),
    ("batch-size-0", ["index", "add", "{db}", "--dataset", "digits", "--split", "test", "--batch-size", "0"], {}),
    ("bits-12", ["train", "--dataset", "digits", "--method", "itq", "--bits", "12", "-o", "{d}/x.semhash"], {}),
    ("unknown-method", ["train", "--dataset", "digits", "--method", "zzz", "-o", "{d}/x.semhash"], {}),
    ("bottleneck-zzz", [*AE, "--bottleneck", "zzz"], {}),
    ("device-xyz", [*AE, "--device", "xyz"], {}),
    ("device-cuda-without-gpu", [*AE, "--device", "cuda"], {}),
    ("resume-without-checkpoint", [*AE, "--resume"], {}),
    ("serve-workers-0", ["serve", "{db}", "--workers", "0"], {}),
    ("serve-port-70000", ["serve", "{db}", "--port", "70000"], {}),
    # names and keys
    ("remove-a-known-and-an-unknown-key", ["index", "remove", "{db}", "digits/train/0", "no-such-key"], {}),
    ("add-keys-already-there", ["index", "add", "{db}", "--dataset", "digits", "--limit", "5"], {}),
]


@pytest.mark.parametrize("args, checks", [pytest.param(a, c, id=n) for n, a, c in CLI_CASES])
def test_cli_bad_input(x, args, checks):
    proc = semhash_cli(x, *args, timeout=60 if args[0] == "serve" else 120)
    problems = []
    lines = proc.stderr.splitlines()
    if proc.returncode == 0 or proc.returncode == "timeout":
        problems.append(f"exit code {proc.returncode}")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"stderr is {len(lines)} line(s), not one 'error: ' line")
    if "Traceback" in proc.stderr:
        problems.append("a traceback on stderr")
    if proc.stdout:
        problems.append("output on stdout")
    if checks.get("excludes") and checks["excludes"] in proc.stderr + proc.stdout:
        problems.append(f"the output shows {checks['excludes']!r}")
    problems += storage_problems(x)
    assert not problems, (
        f"{'; '.join(problems)}\nrc={proc.returncode}\nstdout={proc.stdout[-1500:]!r}\nstderr={proc.stderr[-3000:]}"
    )


CLI_ACCEPTS = [
    ("image-16-bit-png", ["search", "{db}", "--image", "{i}/png16.png", "-k", "3", "--json"], 3),
    ("huge-k-is-capped", [*SEARCH, "-k", "1000000000", "--json"], ITEMS),
]


@pytest.mark.parametrize("args, hits", [pytest.param(a, h, id=n) for n, a, h in CLI_ACCEPTS])
def test_cli_accepts_odd_but_valid_input(x, args, hits):
    proc = semhash_cli(x, *args)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["queries"][0]["hits"]) == hits
    assert valid_query_problems(x) == []


# --- the Python API --------------------------------------------------------------------------------
PG_PORT = "postgresql+psycopg://user:secret@127.0.0.1:70000/db"
PG_DRIVER = "postgresql+nodriver://user:secret@host/db"


def _search(**kw):
    return lambda x: semhash.search(x.db, **kw)


def _items(**kw):
    return _search(items=["digits/train/0"], **kw)


def _vectors(v):
    return lambda x: semhash.search(x.db, vectors=v)


def _file(name):
    return lambda x: semhash.search(x.db, vectors=x.i / name)


def _image(name):
    return lambda x: semhash.search(x.db, images=[x.i / name])


def _hasher(name):
    return lambda x: semhash.load_hasher(x.m / name)


def _dataset(name, **kw):
    return lambda x: semhash.load_dataset(str(x.i / name), **kw)


def _train(method="itq", **kw):
    return lambda x: semhash.train(method, kw.pop("data", "digits"), x.d / "x.semhash", **kw)


def _ae(**kw):
    return _train("ae", bits=16, epochs=1, limit=64, **kw)


def _build(target, model, data="digits", **kw):
    return lambda x: semhash.build_index(x.d / target, x.m / model if model else None, data, **kw)


def _labelled(x, labels):
    return semhash.load_dataset(str(x.i / "feats.npy"), labels=x.i / labels)


def _build_features(x, model, features):
    return semhash.build_index(x.d / "new.db", x.m / model, str(x.i / features))


def _remove(keys):
    return lambda x: semhash.Index.open(x.db).remove(keys)


def _add(keys, width=2):
    return lambda x: semhash.Index.open(x.db).add(keys, np.zeros((len(keys), width), np.uint8))


API_CASES = [
    # index files
    ("open-mistyped-path", lambda x: semhash.Index.open(x.d / "typo.db"), {}),
    ("search-mistyped-path", lambda x: semhash.search(x.d / "typo.db", items=["digits/train/0"]), {}),
    ("create_app-mistyped-path", lambda x: semhash.create_app(str(x.d / "typo.db")), {}),
    ("open-in-a-missing-folder", lambda x: semhash.Index.open(x.d / "nofolder" / "items.db"), {}),
    ("open-random-bytes", lambda x: semhash.Index.open(x.d / "garbage.db"), {}),
    ("open-empty-file", lambda x: semhash.Index.open(x.d / "empty.db"), {}),
    ("open-text-file", lambda x: semhash.Index.open(x.d / "text.db"), {}),
    ("open-truncated-sqlite", lambda x: semhash.Index.open(x.d / "truncated.db"), {}),
    ("search-truncated-sqlite", lambda x: semhash.search(x.d / "truncated.db", codes=["0000"]), {}),
    ("open-foreign-sqlite", lambda x: semhash.Index.open(x.d / "foreign.db"), {}),
    ("open-table-named-like-ours", lambda x: semhash.Index.open(x.d / "clash.db"), {}),
    ("open-a-folder", lambda x: semhash.Index.open(x.d / "dir.db"), {}),
    ("create_app-random-bytes", lambda x: semhash.create_app(str(x.d / "garbage.db")), {}),
    ("create_app-foreign-sqlite", lambda x: semhash.create_app(str(x.d / "foreign.db")), {}),
    ("open-postgres-bad-port", lambda x: semhash.Index.open(PG_PORT), SECRET),
    ("open-unknown-driver", lambda x: semhash.Index.open(PG_DRIVER), SECRET),
    ("search-unknown-driver", lambda x: semhash.search(PG_DRIVER, codes=["0000"]), SECRET),
    ("open-unknown-index-name", lambda x: semhash.Index.open(x.db, "nope"), {}),
    # model files
    ("load_hasher-missing", _hasher("missing.semhash"), {}),
    ("load_hasher-truncated", _hasher("truncated.semhash"), {}),
    ("load_hasher-truncated-tail", _hasher("truncated-tail.semhash"), {}),
    ("load_hasher-garbled-header", _hasher("garbled.semhash"), {}),
    ("load_hasher-empty", _hasher("empty.semhash"), {}),
    ("load_hasher-text", _hasher("text.semhash"), {}),
    ("load_hasher-a-png", _hasher("png.semhash"), {}),
    ("load_hasher-huge-header-length", _hasher("huge-header.semhash"), {}),
    ("load_hasher-a-folder", _hasher("folder.semhash"), {}),
    ("load_hasher-foreign-safetensors", _hasher("foreign.semhash"), {}),
    ("load_hasher-unknown-method", _hasher("unknown-method.semhash"), {}),
    ("load_hasher-itq-without-its-tensors", _hasher("itq-without-tensors.semhash"), {}),
    ("search-model-of-32-bits", lambda x: semhash.search(x.db, dataset="digits", model=x.m / "d32.semhash"), {}),
    ("search-another-16-bit-model", lambda x: semhash.search(x.db, dataset="digits", model=x.m / "lsh16.semhash"), {}),
    (
        "search-truncated-model",
        lambda x: semhash.search(x.db, dataset="digits", model=x.m / "truncated-tail.semhash"),
        {},
    ),
    # data sets and feature files
    ("load_dataset-unknown-name", lambda x: semhash.load_dataset("nosuchset"), {}),
    ("load_dataset-unknown-split", lambda x: semhash.load_dataset("digits", "dev"), {}),
    ("load_dataset-npz-without-x", _dataset("nox.npz"), {}),
    ("load_dataset-truncated-npz", _dataset("short.npz"), {}),
    ("load_dataset-object-npy", _dataset("object.npy"), {}),
    ("load_dataset-complex-npy", _dataset("complex.npy"), {}),
    ("load_dataset-strings-npy", _dataset("strings.npy"), {}),
    ("load_dataset-empty-npy", _dataset("empty.npy"), {}),
    ("load_dataset-3-d-npy", _dataset("feats_3d.npy"), {}),
    ("load_dataset-nan-features", _dataset("feats_nan.npy"), {}),
    ("load_dataset-not-numpy", _dataset("notnpy.npy"), {}),
    ("load_dataset-labels-wrong-length", lambda x: _labelled(x, "labels_short.npy"), {}),
    ("load_dataset-float-labels", lambda x: _labelled(x, "labels_float.npy"), {}),
    # images
    ("image-missing", _image("missing.png"), {}),
    ("image-not-an-image", _image("notimage.png"), {}),
    ("image-empty-file", _image("empty.png"), {}),
    ("image-truncated-png", _image("truncated.png"), {}),
    ("image-13000x13000-png", _image("bomb.png"), {}),
    ("image-over-10-MiB", _image("big.png"), {}),
    ("image-garbage-bytes", lambda x: semhash.search(x.db, images=[b"\x89PNG garbage"]), {}),
    # vectors
    ("vectors-wrong-length", _vectors(np.zeros((2, 63), np.float32)), {}),
    ("vectors-nan", _vectors(np.full(64, np.nan)), {}),
    ("vectors-inf", _vectors(np.full((1, 64), -np.inf)), {}),
    ("vectors-beyond-float32", _vectors(np.full((1, 64), 1e39)), {}),
    ("vectors-complex", _vectors(np.zeros((1, 64), np.complex128)), {}),
    ("vectors-object-array", _vectors(np.array([[object()] * 64], dtype=object)), {}),
    ("vectors-strings", _vectors([["0.5"] * 64]), {}),
    ("vectors-3-d", _vectors(np.zeros((2, 8, 8), np.float32)), {}),
    ("vectors-ragged", _vectors([[0.0] * 64, [0.0] * 63]), {}),
    ("vectors-file-wrong-length", _file("v63.npy"), {}),
    ("vectors-file-inf", _file("inf.npy"), {}),
    ("vectors-file-complex", _file("complex.npy"), {}),
    ("vectors-file-strings", _file("strings.npy"), {}),
    ("vectors-file-empty", _file("empty.npy"), {}),
    ("vectors-file-3-d", _file("cube.npy"), {}),
    ("vectors-file-missing", _file("missing.npy"), {}),
    ("vectors-file-not-numpy", _file("notnpy.npy"), {}),
    # parameters, codes, keys
    ("k-0", _items(k=0), {}),
    ("k-minus-1", _items(k=-1), {}),
    ("k-fractional", _items(k=2.5), {}),
    ("radius-minus-1", _items(radius=-1), {}),
    ("radius-over-bits", _items(radius=17), {}),
    ("code-wrong-length", _search(codes=["00"]), {}),
    ("code-not-hex", _search(codes=["zzzz"]), {}),
    ("code-with-a-space", _search(codes=["00 0"]), {}),
    ("limit-0", _search(dataset="digits", limit=0), {}),
    ("unknown-data-set-as-query", _search(dataset="nosuchset"), {}),
    ("no-query", _search(), {}),
    ("two-kinds-of-query", _search(items=["digits/train/0"], codes=["0000"]), {}),
    ("unknown-item-key", _search(items=["nope"]), {}),
    ("nul-byte-in-a-key", _search(items=["digits/train/\x000"]), {}),
    ("unknown-index-name", _search(items=["digits/train/0"], name="nope"), {}),
    # building and adding
    ("build-batch-size-0", _build("new.db", "d16.semhash", batch_size=0), {}),
    ("build-limit-0", _build("new.db", "d16.semhash", limit=0), {}),
    ("build-missing-model", _build("new.db", "missing.semhash"), {}),
    ("build-garbled-model", _build("new.db", "garbled.semhash"), {}),
    ("build-unknown-data-set", _build("new.db", "d16.semhash", "nosuchset"), {}),
    ("build-nan-features", lambda x: _build_features(x, "f16.semhash", "feats_nan.npy"), {}),
    ("build-features-for-an-image-model", lambda x: _build_features(x, "d16.semhash", "feats.npy"), {}),
    ("build-into-a-full-index", _build("items.db", "d16.semhash"), {}),
    ("add-keys-already-there", _build("items.db", None, adding=True, limit=5), {}),
    ("add-with-a-model-of-32-bits", _build("items.db", "d32.semhash", adding=True, split="test"), {}),
    ("add-to-an-unknown-index", _build("items.db", None, adding=True, split="test", name="nope"), {}),
    ("add-the-same-key-twice", _add(["new/0", "new/0"]), {}),
    ("add-an-existing-key", _add(["digits/train/0"]), {}),
    ("add-codes-of-the-wrong-width", _add(["new/0"], width=4), {}),
    ("remove-an-unknown-key", _remove(["no-such-key"]), {}),
    ("remove-a-known-and-an-unknown-key", _remove(["digits/train/0", "no-such-key"]), {}),
    # training
    ("train-bits-12", _train(bits=12), {}),
    ("train-bits-1024", _train(bits=1024), {}),
    ("train-unknown-method", _train("zzz", bits=16), {}),
    ("train-one-item", _train(bits=16, limit=1), {}),
    ("train-unknown-data-set", _train(bits=16, data="nosuchset"), {}),
    ("train-ae-bottleneck-zzz", _ae(bottleneck="zzz"), {}),
    ("train-ae-device-xyz", _ae(device="xyz"), {}),
    ("train-ae-device-cuda-without-gpu", _ae(device="cuda"), {}),
    ("train-ae-resume-without-checkpoint", _ae(resume=True), {}),
    ("train-ae-unknown-option", _ae(colour="red"), {}),
]


@pytest.mark.parametrize("call, checks", [pytest.param(c, k, id=n) for n, c, k in API_CASES])
def test_python_api_bad_input(x, call, checks):
    problems, outcome = [], None
    try:
        outcome = call(x)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001  (the contract is about which types escape)
        message = str(exc)
        if not isinstance(exc, SemhashError):
            problems.append(
                f"raised {type(exc).__module__}.{type(exc).__qualname__}, not a SemhashError: {message[:500]!r}"
            )
        elif not one_line(message):
            problems.append(f"{type(exc).__name__} with a message that is not one line: {message[:500]!r}")
        if checks.get("excludes") and checks["excludes"] in message:
            problems.append(f"the message shows {checks['excludes']!r}: {message!r}")
    else:
        problems.append(f"no error; returned {str(outcome)[:200]!r}")
    problems += storage_problems(x)
    assert not problems, "; ".join(problems)


def _top_keys(result) -> list[str]:
    return [h["key"] for h in result["queries"][0]["hits"]]


API_ACCEPTS = [
    ("image-16-bit-png", lambda x: semhash.search(x.db, images=[x.i / "png16.png"], k=5), 5),
    ("image-rgba", lambda x: semhash.search(x.db, images=[x.i / "rgba.png"], k=5), 5),
    ("image-palette", lambda x: semhash.search(x.db, images=[x.i / "palette.png"], k=5), 5),
    ("huge-k-is-capped", _items(k=10**9), ITEMS),
    ("radius-equal-to-bits", _items(k=None, radius=16), ITEMS),
    ("neither-k-nor-radius-is-the-10-nearest", _items(k=None), 10),
    ("vectors-of-ints", _vectors([[1] * 64]), 10),
]


@pytest.mark.parametrize("call, hits", [pytest.param(c, h, id=n) for n, c, h in API_ACCEPTS])
def test_python_api_accepts_odd_but_valid_input(x, call, hits):
    result = call(x)
    assert len(result["queries"][0]["hits"]) == hits
    assert valid_query_problems(x) == []


def test_a_16_bit_png_is_the_same_query_as_its_8_bit_original(x):
    same = semhash.search(x.db, images=[x.i / "png16.png", x.i / "q.png", x.i / "rgba.png"], k=5)
    first, *others = [[(h["key"], h["distance"]) for h in q["hits"]] for q in same["queries"]]
    assert first[0][1] == 0 and all(o == first for o in others)


# --- the same contract on every store (SQLite, and PostgreSQL where SEMHASH_TEST_POSTGRES is set) --
def sql_state(target, name) -> tuple:
    """Everything an index holds in SQL: generation, count, ids, codes and each item's metadata."""
    from semhash.index_store.storage.store import Store

    store = Store(target, "read")
    try:
        row = store.get_index(name)
        ids, codes, _ = store.load_codes(name)
        meta = store.items(name, ids)
        items = sorted((i, m["key"], m["label"], m["source"]) for i, m in meta.items())
        return row.generation, row.item_count, ids.tobytes(), codes.tobytes(), items
    finally:
        store.engine.dispose()


STORE_CASES = [
    ("add-keys-already-there", lambda t, n, m, data: semhash.build_index(t, None, data.subset(5), name=n, adding=True)),
    ("build-into-a-full-index", lambda t, n, m, data: semhash.build_index(t, m, data, name=n)),
    (
        "add-the-same-key-twice",
        lambda t, n, m, data: semhash.Index.open(t, n).add(["a", "a"], np.zeros((2, 2), np.uint8)),
    ),
    (
        "add-codes-of-the-wrong-width",
        lambda t, n, m, data: semhash.Index.open(t, n).add(["a"], np.zeros((1, 4), np.uint8)),
    ),
    (
        "remove-a-known-and-an-unknown-key",
        lambda t, n, m, data: semhash.Index.open(t, n).remove(["digits/train/0", "nope"]),
    ),
    ("search-nul-byte-in-a-key", lambda t, n, m, data: semhash.search(t, n, items=["digits/train/\x000"])),
    ("search-unknown-index-name", lambda t, n, m, data: semhash.search(t, n + "-nope", items=["digits/train/0"])),
]


@pytest.mark.parametrize("call", [pytest.param(c, id=n) for n, c in STORE_CASES])
def test_bad_writes_change_nothing_on_any_store(world, digits, store_target, index_name, call):
    data = digits[0].subset(200)
    semhash.build_index(store_target, world.m / "d16.semhash", data, name=index_name).store.engine.dispose()
    before = sql_state(store_target, index_name)
    problems = []
    try:
        outcome = call(store_target, index_name, world.m / "d16.semhash", data)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001
        if not isinstance(exc, SemhashError):
            problems.append(f"raised {type(exc).__module__}.{type(exc).__qualname__}, not a SemhashError: {exc!s:.500}")
        elif not one_line(str(exc)):
            problems.append(f"{type(exc).__name__} with a message that is not one line: {exc!s:.500}")
    else:
        problems.append(f"no error; returned {str(outcome)[:200]!r}")
    if sql_state(store_target, index_name) != before:
        problems.append("the index's SQL state changed")
    assert not problems, "; ".join(problems)


# --- HTTP --------------------------------------------------------------------------------------
U = "/indexes/default"
V64 = [0.5] * 64


NAN64 = "[" + ", ".join(["NaN"] * 64) + "]"
INF64 = "[" + ", ".join(["Infinity"] * 64) + "]"


def _get(url, **params):
    return lambda c, x: c.get(url, params=params)


def _post(url, body):
    return lambda c, x: c.post(url, json=body)


def _raw(url, text):
    return lambda c, x: c.post(url, content=text.encode(), headers={"content-type": "application/json"})


def _upload(url, name=None, data=None, form=None, filename="q.png"):
    def send(c, x):
        content = (x.i / name).read_bytes() if name else data
        return c.post(url, files={"image": (filename, content, "image/png")}, data=form or {})

    return send


def _delete(**params):
    return lambda c, x: c.delete(f"{U}/items", params=params)


NOT_FOUND = {"status": 404}

HTTP_CASES = [
    # names and keys
    ("unknown-index", _get("/indexes/nope"), NOT_FOUND),
    ("search-unknown-index", _post("/indexes/nope/search", {"codes": ["0000"]}), NOT_FOUND),
    ("unknown-item-key", _get(f"{U}/items", key="nope"), NOT_FOUND),
    ("nul-byte-in-a-key", _get(f"{U}/items", key="digits/train/\x000"), NOT_FOUND),
    ("item-without-a-key", _get(f"{U}/items"), {}),
    ("item-key-over-500-characters", _get(f"{U}/items", key="k" * 501), {}),
    ("thumbnail-unknown-key", _get(f"{U}/thumbnail", key="nope"), NOT_FOUND),
    ("thumbnail-unknown-unicode-key", _get(f"{U}/thumbnail", key="mnist/train/²"), NOT_FOUND),
    ("thumbnail-stored-superscript-key", _get(f"{U}/thumbnail", key="digits/train/²"), NOT_FOUND),
    ("thumbnail-stored-row-out-of-range", _get(f"{U}/thumbnail", key="digits/train/1500"), NOT_FOUND),
    ("thumbnail-stored-key-of-no-data-set", _get(f"{U}/thumbnail", key="odd key"), NOT_FOUND),
    ("search-unknown-item-key", _post(f"{U}/search/items", {"keys": ["nope"]}), NOT_FOUND),
    ("sample-n-0", _get(f"{U}/sample", n=0), {}),
    ("sample-seed-negative", _get(f"{U}/sample", seed=-1), {}),
    # codes
    ("code-wrong-length", _post(f"{U}/search", {"codes": ["00"]}), {}),
    ("code-not-hex", _post(f"{U}/search", {"codes": ["zzzz"]}), {}),
    ("codes-empty-list", _post(f"{U}/search", {"codes": []}), {}),
    ("codes-a-string-not-a-list", _post(f"{U}/search", {"codes": "0000"}), {}),
    ("codes-numbers", _post(f"{U}/search", {"codes": [1234]}), {}),
    ("k-0", _post(f"{U}/search", {"codes": ["0000"], "k": 0}), {}),
    ("k-minus-1", _post(f"{U}/search", {"codes": ["0000"], "k": -1}), {}),
    ("k-huge", _post(f"{U}/search", {"codes": ["0000"], "k": 10**12}), {}),
    ("k-a-word", _post(f"{U}/search", {"codes": ["0000"], "k": "ten"}), {}),
    ("k-fractional", _post(f"{U}/search", {"codes": ["0000"], "k": 2.5}), {}),
    ("radius-minus-1", _post(f"{U}/search", {"codes": ["0000"], "radius": -1}), {}),
    ("radius-over-bits", _post(f"{U}/search", {"codes": ["0000"], "radius": 17}), {}),
    ("body-not-json", _raw(f"{U}/search", "{codes: "), {}),
    ("body-a-list", _raw(f"{U}/search", "[]"), {}),
    ("body-null", _raw(f"{U}/search", "null"), {}),
    # vectors
    ("vectors-wrong-length", _post(f"{U}/search/vectors", {"vectors": [[1.0, 2.0]]}), {}),
    ("vectors-ragged", _post(f"{U}/search/vectors", {"vectors": [V64, [1.0]]}), {}),
    ("vectors-nan", _raw(f"{U}/search/vectors", f'{{"vectors": [{NAN64}]}}'), {}),
    ("vectors-infinity", _raw(f"{U}/search/vectors", f'{{"vectors": [{INF64}]}}'), {}),
    ("vectors-beyond-float32", _post(f"{U}/search/vectors", {"vectors": [[1e39] * 64]}), {}),
    ("vectors-strings", _post(f"{U}/search/vectors", {"vectors": [["a"] * 64]}), {}),
    ("vectors-empty", _post(f"{U}/search/vectors", {"vectors": []}), {}),
    ("vectors-3-d", _post(f"{U}/search/vectors", {"vectors": [[V64]]}), {}),
    ("keys-empty-list", _post(f"{U}/search/items", {"keys": []}), {}),
    ("keys-numbers", _post(f"{U}/search/items", {"keys": [7]}), {}),
    # images
    ("image-not-an-image", _upload(f"{U}/search/image", "notimage.png"), {}),
    ("image-empty", _upload(f"{U}/search/image", "empty.png"), {}),
    ("image-truncated-png", _upload(f"{U}/search/image", "truncated.png"), {}),
    ("image-13000x13000-png", _upload(f"{U}/search/image", "bomb.png"), {}),
    ("image-over-10-MiB", _upload(f"{U}/search/image", "big.png"), {}),
    ("image-missing-from-the-form", lambda c, x: c.post(f"{U}/search/image", data={"k": "5"}), {}),
    ("image-k-0", _upload(f"{U}/search/image", "q.png", form={"k": "0"}), {}),
    ("image-radius-a-word", _upload(f"{U}/search/image", "q.png", form={"radius": "far"}), {}),
    # adding and removing
    ("add-an-existing-key", _post(f"{U}/items", {"items": [{"key": "digits/train/0", "vector": V64}]}), {}),
    (
        "add-the-same-key-twice",
        _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64}, {"key": "new/0", "vector": V64}]}),
        {},
    ),
    ("add-wrong-vector-length", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": [0.5] * 63}]}), {}),
    ("add-nan-vector", _raw(f"{U}/items", f'{{"items": [{{"key": "new/0", "vector": {NAN64}}}]}}'), {}),
    ("add-empty-key", _post(f"{U}/items", {"items": [{"key": "", "vector": V64}]}), {}),
    ("add-label-a-word", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64, "label": "three"}]}), {}),
    ("add-label-over-32-bits", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64, "label": 2**40}]}), {}),
    ("add-meta-not-an-object", _post(f"{U}/items", {"items": [{"key": "new/0", "vector": V64, "meta": "x"}]}), {}),
    ("add-items-not-a-list", _post(f"{U}/items", {"items": {"key": "new/0", "vector": V64}}), {}),
    ("add-image-existing-key", _upload(f"{U}/items/image", "q.png", form={"key": "digits/train/0"}), {}),
    ("add-image-not-an-image", _upload(f"{U}/items/image", "notimage.png", form={"key": "new/0"}), {}),
    ("add-image-over-10-MiB", _upload(f"{U}/items/image", "big.png", form={"key": "new/0"}), {}),
    ("add-image-label-a-word", _upload(f"{U}/items/image", "q.png", form={"key": "new/0", "label": "abc"}), {}),
    ("remove-an-unknown-key", _delete(key="no-such-key"), NOT_FOUND),
    ("remove-a-known-and-an-unknown-key", _delete(key=["digits/train/0", "no-such-key"]), NOT_FOUND),
    ("remove-without-a-key", _delete(), {}),
]


@pytest.fixture
def client(x):
    from semhash.index_store.http.service import create_app

    app = create_app(x.db)
    yield TestClient(app, raise_server_exceptions=False)
    app.state.service.store.engine.dispose()


@pytest.mark.parametrize("send, checks", [pytest.param(s, c, id=n) for n, s, c in HTTP_CASES])
def test_http_bad_input(x, client, send, checks):
    r = send(client, x)
    problems = []
    if not 400 <= r.status_code < 500:
        problems.append(f"status {r.status_code}")
    elif checks.get("status") and r.status_code != checks["status"]:
        problems.append(f"status {r.status_code}, not {checks['status']}")
    try:
        body = r.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and set(body) == {"detail"} and one_line(body["detail"])):
        problems.append("the body is not {'detail': '<one line>'}")
    problems += storage_problems(x)
    assert not problems, f"{'; '.join(problems)}\nstatus={r.status_code}\nbody={r.text[:1500]}"


HTTP_ACCEPTS = [
    ("image-16-bit-png", _upload(f"{U}/search/image", "png16.png", form={"k": "5"}), 5),
    ("image-rgba", _upload(f"{U}/search/image", "rgba.png", form={"k": "5"}), 5),
    ("image-palette", _upload(f"{U}/search/image", "palette.png", form={"k": "5"}), 5),
    ("k-at-the-limit", _post(f"{U}/search", {"codes": ["0000"], "k": 1000}), 1000),
]


@pytest.mark.parametrize("send, hits", [pytest.param(s, h, id=n) for n, s, h in HTTP_ACCEPTS])
def test_http_accepts_odd_but_valid_input(x, client, send, hits):
    r = send(client, x)
    assert r.status_code == 200, r.text
    assert len(r.json()["queries"][0]["hits"]) == hits
    assert valid_query_problems(x) == []
