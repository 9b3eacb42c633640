"""Bulk add of `semhash bench search`: N items into SQLite plus the derived structures, beside a
raw sqlite3 executemany of the same rows (and into PostgreSQL beside a raw COPY), then opening that
index and its memory per item."""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy.engine import make_url

from ..index_store.index import Index
from ..index_store.storage import schema as S
from ..index_store.storage.store import safe_url
from .postgres import in_schema, pg_schemas


def bulk(n: int, bits: int, rng, postgres: str | None = None, log=print) -> dict:
    """Bulk add of n items (keys, labels, codes) into SQLite plus the derived structures, then
    opening that index; beside it, in the same run, a raw sqlite3 executemany of the same rows into
    the same schema in one transaction; with postgres (a URL), the same pair into PostgreSQL (ours
    against a raw psycopg COPY)."""
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    keys = [f"item-{i}" for i in range(n)]
    labels = rng.integers(0, 10, n)
    folder = Path(tempfile.mkdtemp(prefix="semhash-bench-"))
    try:
        log(f"bulk add of {n:,} items into SQLite + derived structures, then open; a raw sqlite3 executemany beside:")
        row = bulk_sqlite(folder, keys, codes, labels)
        row["raw_sqlite_s"] = raw_sqlite(folder / "raw.db", keys, codes, labels)
        same_sqlite_rows(folder / "bench.db", folder / "raw.db", n)
        row["bulk_add_vs_raw_sqlite"] = row["bulk_add_s"] / row["raw_sqlite_s"]
        log(
            f"  add {row['bulk_add_s']:.1f} s (raw sqlite3 executemany of the same rows, one transaction: "
            f"{row['raw_sqlite_s']:.1f} s; ours / raw {row['bulk_add_vs_raw_sqlite']:.2f}x), "
            f"open {row['open_s']:.2f} s, {row['memory_bytes_per_item']:.0f} bytes/item in memory, "
            f"{row['sqlite_bytes'] / n:.0f} bytes/item in SQLite"
        )
        row["postgres"] = bulk_postgres(postgres, keys, codes, labels, folder, log) if postgres else None
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bulk_sqlite(folder: Path, keys: list[str], codes: np.ndarray, labels: np.ndarray) -> dict:
    """Our bulk add into a new SQLite file, then opening it from the checked cache."""
    n, bits = len(keys), codes.shape[1] * 8
    t = time.perf_counter()
    idx = Index.create(folder / "bench.db", "bench", bits)
    idx.add(keys, codes, labels=labels)
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    again = Index.open(folder / "bench.db", "bench")
    _ = again.searcher  # loads the derived structures from the checked cache
    open_s = time.perf_counter() - t
    assert again.last_load == "cache" and len(again.searcher) == n
    info = again.info()
    return {
        "n": n,
        "bits": bits,
        "bulk_add_s": add_s,
        "open_s": open_s,
        "memory_bytes_per_item": info["memory_bytes_per_item"],
        "sqlite_bytes": sum(f.stat().st_size for f in folder.glob("bench.db*") if f.is_file()),  # WAL too
    }


def raw_rows(keys: list[str], codes: np.ndarray, labels: np.ndarray):
    """The rows semhash's items table gets for these items (index 1, item ids from 1), as tuples in
    its column order, made from the arrays as a hand-written loader would."""
    n, width = len(keys), codes.shape[1]
    flat, none = codes.tobytes(), itertools.repeat(None)
    code_list = (flat[i * width : (i + 1) * width] for i in range(n))
    return zip(itertools.repeat(1), range(1, n + 1), keys, labels.tolist(), none, none, code_list, none)


def _insert_sql(table) -> str:
    columns = [c.name for c in table.columns]
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def raw_sqlite(path: Path, keys: list[str], codes: np.ndarray, labels: np.ndarray) -> float:
    """Seconds for a raw sqlite3 executemany of the same rows into the same schema (made untimed by
    SQLAlchemy from semhash's tables), with the store's settings (WAL, synchronous=NORMAL), in one
    transaction: from the arrays to the commit."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    S.metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute(
            "INSERT INTO semhash_indexes (id, name, bits, created, updated, generation, next_item, item_count) "
            "VALUES (1, 'bench', ?, ?, ?, 1, ?, ?)",
            (codes.shape[1] * 8, now, now, len(keys) + 1, len(keys)),
        )
        conn.executemany(_insert_sql(S.items), raw_rows(keys, codes, labels))
        conn.execute("COMMIT")
        return time.perf_counter() - t
    finally:
        conn.close()


SAMPLE_ROWS_SQL = (
    "SELECT index_id, id, key, label, source, meta, code FROM {schema}semhash_items"
    " WHERE id <= 100 OR id > {last} ORDER BY id"
)


def same_sqlite_rows(ours: Path, raw: Path, n: int) -> None:
    """The raw peer loaded the rows ours did: the same count, and the first and last 100 identical."""
    seen = []
    for path in (ours, raw):
        with closing(sqlite3.connect(path)) as conn:
            count = conn.execute("SELECT count(*) FROM semhash_items").fetchone()[0]
            seen.append((count, conn.execute(SAMPLE_ROWS_SQL.format(schema="", last=n - 100)).fetchall()))
    assert seen[0] == seen[1] and seen[0][0] == n, "the raw sqlite3 peer did not load the rows ours did"


def bulk_postgres(url: str, keys: list[str], codes: np.ndarray, labels: np.ndarray, folder: Path, log=print) -> dict:
    """Our bulk add into PostgreSQL (through the store: COPY) beside a raw psycopg COPY of the same
    rows into the same schema in one transaction, each into a fresh schema of the URL's database,
    both dropped afterwards."""
    n, bits = len(keys), codes.shape[1] * 8
    log(f"bulk add of {n:,} items into PostgreSQL + derived structures; a raw psycopg COPY beside:")
    ours_schema, raw_schema = f"semhash_bench_{os.getpid()}_ours", f"semhash_bench_{os.getpid()}_raw"
    with pg_schemas(url, ours_schema, raw_schema) as admin:
        t = time.perf_counter()
        idx = Index.create(in_schema(url, ours_schema), "bench", bits, cache_folder=folder / "pg-cache")
        idx.add(keys, codes, labels=labels)
        ours_s = time.perf_counter() - t
        idx.store.engine.dispose()
        raw_s = raw_copy(url, raw_schema, keys, codes, labels)
        with admin.connect() as conn:
            rows = [
                conn.exec_driver_sql(SAMPLE_ROWS_SQL.format(schema=f"{s}.", last=n - 100)).fetchall()
                for s in (ours_schema, raw_schema)
            ]
        assert rows[0] == rows[1] and len(rows[0]) == min(n, 200), "the raw COPY did not load the rows ours did"
    row = {"n": n, "bits": bits, "store": safe_url(url), "bulk_add_s": ours_s, "raw_copy_s": raw_s}
    row["bulk_add_vs_raw_copy"] = ours_s / raw_s
    log(
        f"  add {ours_s:.1f} s (raw psycopg COPY of the same rows, one transaction: {raw_s:.1f} s; "
        f"ours / raw {ours_s / raw_s:.2f}x)"
    )
    return row


def raw_copy(url: str, schema: str, keys: list[str], codes: np.ndarray, labels: np.ndarray) -> float:
    """Seconds for a raw psycopg COPY of the same rows into the same schema (made untimed by
    SQLAlchemy from semhash's tables) in one transaction: from the arrays to the commit."""
    import psycopg
    from sqlalchemy import create_engine

    engine = create_engine(in_schema(url, schema))
    S.metadata.create_all(engine)
    engine.dispose()
    u = make_url(url)
    conninfo = u.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as conn:
        t = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO semhash_indexes (id, name, bits, created, updated, generation, next_item, item_count) "
                "VALUES (1, 'bench', %s, now(), now(), 1, %s, %s)",
                (codes.shape[1] * 8, len(keys) + 1, len(keys)),
            )
            columns = ", ".join(c.name for c in S.items.columns)
            with cur.copy(f"COPY {S.items.name} ({columns}) FROM STDIN") as copy:
                for row in raw_rows(keys, codes, labels):
                    copy.write_row(row)
        return time.perf_counter() - t
