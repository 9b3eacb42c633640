"""Crashes, interruptions and concurrency, through the real `semhash` command in subprocesses.

kill -9 and Ctrl-C in the middle of `index build`: every committed batch is there, nothing
half-written is visible, and `--resume` finishes the job with the same results as an uninterrupted
build. Readers keep answering while another process writes. A second writer gets a clear error.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

ITEMS, BATCH, DIM = 40_000, 1_000, 24


def semhash(*args, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **kw,
    )


# The command with each committed batch followed by 20 ms of sleep: 40 batches of 1,000 items are
# stored in ~0.1 s, too fast to interrupt half-way; the pause is outside the transaction, so what
# is tested (whole batches survive) is the store's own behaviour.
SLOWED = (
    "import time; from semhash.index_store.storage.store import Store; add = Store.add_items; "
    "Store.add_items = lambda *a, **k: (add(*a, **k), time.sleep(0.02))[0]; "
    "from semhash.cli.main import main; main()"
)


def start(*args, env=None):
    """The command, started with its batches slowed (SLOWED), Ctrl-C reaching it even when this
    test runs in the background (where the shell starts it with SIGINT ignored, which a child keeps)."""
    return subprocess.Popen(
        [sys.executable, "-c", SLOWED, *map(str, args)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def counts(db) -> dict:
    """Rows actually committed, read straight from SQLite (WAL: readers never wait for the writer)."""
    with sqlite3.connect(db, timeout=30) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "items": q("SELECT count(*) FROM semhash_items"),
            "codes": q("SELECT count(code) FROM semhash_items"),
            "recorded": q("SELECT coalesce(sum(item_count), 0) FROM semhash_indexes"),
        }


def interrupt_after(db, proc, at_least: int, sig) -> int:
    """Send sig to the build once it has committed at_least items, while holding SQLite's write
    lock: the build cannot commit another batch (nor finish) between the count and the signal.
    The lock is taken only once items exist (the build has set WAL mode and made its tables: a
    lock held earlier would refuse it that switch). Returns the count seen."""
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, f"the build ended before it could be interrupted: {proc.stderr.read()}"
        try:
            stored = db.exists() and counts(db)["items"] > 0
        except sqlite3.OperationalError:  # tables not created yet
            stored = False
        if stored:
            conn = sqlite3.connect(db, timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # the build's next commit now waits for us
                n = conn.execute("SELECT count(*) FROM semhash_items").fetchone()[0]
                if n >= at_least:
                    assert proc.poll() is None, "the build finished before it could be interrupted"
                    proc.send_signal(sig)
                    return n
            finally:
                conn.close()  # rolls back: the build goes on (or dies) from where it waited
        time.sleep(0.005)
    raise AssertionError("the build never committed a batch")


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """Clustered float features, an LSH model of them, query vectors, and a reference index built
    without interruption."""
    folder = tmp_path_factory.mktemp("crash")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, DIM))
    x = (centres[rng.integers(0, 50, ITEMS)] + 0.3 * rng.normal(size=(ITEMS, DIM))).astype(np.float32)
    np.save(folder / "x.npy", x)
    np.save(folder / "q.npy", x[:5] + np.float32(0.01))
    assert (
        semhash(
            "train", "--dataset", folder / "x.npy", "--method", "lsh", "--bits", "32", "-o", folder / "m.semhash"
        ).returncode
        == 0
    )
    ref = semhash(
        "index",
        "build",
        folder / "ref.db",
        "--model",
        folder / "m.semhash",
        "--features",
        folder / "x.npy",
        "--batch-size",
        BATCH,
        "--json",
    )
    assert ref.returncode == 0, ref.stderr
    return folder


def neighbours(db, folder) -> list:
    out = semhash("search", db, "--vector", folder / "q.npy", "-k", "20", "--json")
    assert out.returncode == 0, out.stderr
    # (distance, set of keys at that distance) per query: tie order among equal distances may differ
    result = []
    for q in json.loads(out.stdout)["queries"]:
        by_d = {}
        for h in q["hits"]:
            by_d.setdefault(h["distance"], set()).add(h["key"])
        result.append(sorted((d, sorted(keys)) for d, keys in by_d.items())[:-1])  # the last tie is cut at k
    return result


def check_consistent(db) -> int:
    c = counts(db)
    assert c["items"] == c["codes"] == c["recorded"], c  # no item without its code, counter agrees
    assert c["items"] % BATCH == 0, c  # whole batches only
    return c["items"]


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_an_interrupted_build_keeps_whole_batches_and_resume_finishes_it(features, tmp_path, how):
    folder, db = features, tmp_path / "items.db"
    build = (
        "index",
        "build",
        db,
        "--model",
        folder / "m.semhash",
        "--features",
        folder / "x.npy",
        "--batch-size",
        BATCH,
    )
    proc = start(*build, "--json")
    interrupt_after(db, proc, 3 * BATCH, signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if how == "kill -9":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130 and err.strip() == "error: interrupted", err
    kept = check_consistent(db)
    assert 3 * BATCH <= kept < ITEMS

    # opening the half-built index works and searches what is committed
    info = semhash("index", "info", db, "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["items"] == kept
    again = semhash(*build)
    assert again.returncode == 1 and "--resume" in again.stderr  # no silent double build

    resumed = semhash(*build, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert check_consistent(db) == ITEMS
    verify = json.loads(semhash("index", "verify", db, "--json").stdout)
    assert verify["items"] == ITEMS and verify["derived_matched_sql"]
    assert neighbours(db, folder) == neighbours(folder / "ref.db", folder)


READER = """
import sys, time, numpy as np
from semhash.index_store.index import Index
db, stop, seen = sys.argv[1], sys.argv[2], []
q = np.load(sys.argv[3])
import os
from semhash.hashing.methods import load_hasher
idx = Index.open(db)
codes = load_hasher(sys.argv[4]).encode(q)
while not os.path.exists(stop) or len(seen) < 3:
    found = idx.search(codes, k=5)
    assert all(len(q["hits"]) == 5 for q in found["queries"])
    seen.append(len(idx.searcher))
print(len(seen), min(seen), max(seen))
"""


def test_readers_keep_answering_while_another_process_writes(features, tmp_path):
    folder, db = features, tmp_path / "items.db"
    x = np.load(folder / "x.npy")
    np.save(tmp_path / "first.npy", x[:10_000])
    np.save(tmp_path / "more.npy", x[10_000:30_000])
    model = folder / "m.semhash"
    assert semhash("index", "build", db, "--model", model, "--features", tmp_path / "first.npy").returncode == 0
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, db, stop, folder / "q.npy", model],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(1.0)  # the readers are answering before the writer starts
    # the added keys must differ from the first build's: a features file's keys are its name and row
    writer = semhash("index", "add", db, "--features", tmp_path / "more.npy", "--batch-size", BATCH)
    assert writer.returncode == 0, writer.stderr
    time.sleep(0.5)
    stop.touch()
    for r in readers:
        out, err = r.communicate(timeout=120)
        assert r.returncode == 0, err
        answered, smallest, largest = map(int, out.split())
        assert answered >= 3 and smallest == 10_000 and largest == 30_000  # saw the index before and after
    assert check_consistent(db) == 30_000


def test_a_second_writer_gets_a_clear_error_and_changes_nothing(features, tmp_path):
    folder, db = features, tmp_path / "items.db"
    assert (
        semhash(
            "index", "build", db, "--model", folder / "m.semhash", "--features", folder / "x.npy", "--limit", 2000
        ).returncode
        == 0
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import sqlite3, sys, time
conn = sqlite3.connect({str(db)!r}, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(30)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = {**os.environ, "SEMHASH_LOCK_TIMEOUT": "0.5"}
        proc = semhash("index", "remove", db, "x/0", env=env)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1
        assert "is locked by another writer" in proc.stderr and "Traceback" not in proc.stderr
        # readers are not blocked by the writer's lock
        assert semhash("index", "info", db, env=env).returncode == 0
    finally:
        holder.kill()
        holder.wait()
    assert counts(db)["items"] == 2000
