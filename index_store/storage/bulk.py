"""New items' rows into SQL by the fastest path each database has: whole columns on SQLite
(sqlite_bulk.py), COPY on PostgreSQL (psycopg), else the driver's executemany; item rows in key order.

Measured, 1M items with keys and labels, 32-bit codes, SQLite + derived structures, 2 cores: 47.5 s
with SQLAlchemy's insert() and a dict a row, 25.9 s by the driver's executemany, where a raw sqlite3
executemany of the same rows takes 17.0 s (the rest: the derived structures); PostgreSQL, 200,000
items: 15.5 s with insert(), 5.1 s with COPY.
"""

from __future__ import annotations

import json
import operator

import numpy as np
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import schema as S
from . import sqlite_bulk
from .validate import Items


def insert_items(conn, index_id: int, ids: np.ndarray, items: Items) -> None:
    """Rows of the items (and their vectors) with ids (n,) int64, consecutive, in the transaction of
    conn (a SQLAlchemy connection). Item rows go in the order of insert_order."""
    first, keys, codes = int(ids[0]), items.keys, items.codes
    labels, sources, metas, snippets = items.labels, items.sources, items.metas, items.snippets
    order = insert_order(keys)
    if order is not None:
        pick = lambda v: None if v is None else v[order] if isinstance(v, np.ndarray) else [v[i] for i in order]  # noqa: E731
        keys, labels, sources, metas, ids, codes = map(pick, (keys, labels, sources, metas, ids, codes))
        snippets = pick(snippets)
    if conn.dialect.name == "sqlite" and sqlite_bulk.carries(conn, keys, sources):
        sqlite_bulk.insert_items(conn, index_id, ids, keys, codes, labels, sources, metas, snippets)
        if items.vectors is not None:
            sqlite_bulk.insert_fixed(conn, S.vectors, "vector", index_id, first, items.vectors)
        return
    insert(conn, S.items, _item_rows(index_id, ids, keys, codes, labels, sources, metas, snippets))
    if items.vectors is not None:
        every = np.arange(first, first + len(codes), dtype=np.int64)
        insert(conn, S.vectors, zip([index_id] * len(every), every.tolist(), _row_bytes(items.vectors)))


def insert(conn, table, rows) -> None:
    """Insert rows (tuples in the table's column order) in the transaction of conn, by the driver's
    own bulk path: one prepared INSERT and executemany on SQLite, COPY on PostgreSQL."""
    columns = [c.name for c in table.columns]
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", list(rows))
    elif conn.dialect.driver == "psycopg":
        _copy(conn, table.name, columns, rows)
    else:
        conn.execute(table.insert(), [dict(zip(columns, row)) for row in rows])


def insert_order(keys: list[str]) -> np.ndarray | None:
    """The order to insert item rows in: key order, so that the (index_id, key) index grows page by
    page instead of at random (1M keys into SQLite: 5.1 s -> 3.8 s for this table, measured raw; 74
    bytes/item on disk, 129 in input order); None when the keys already ascend (then ids do too:
    no sort, and SQLite numbers the ids itself, e.g. MNIST's batches after the first)."""
    if not any(map(operator.gt, keys, keys[1:])):
        return None
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def _copy(conn, table: str, columns: list[str], rows) -> None:
    """PostgreSQL's COPY FROM STDIN through psycopg, inside the connection's transaction; its
    unique-key violation comes out as SQLAlchemy's IntegrityError, like an INSERT's."""
    import psycopg

    try:
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    except psycopg.errors.UniqueViolation as exc:
        raise IntegrityError(f"COPY {table}", None, exc) from None
    except psycopg.Error as exc:
        raise DBAPIError(f"COPY {table}", None, exc) from None


def _item_rows(index_id: int, ids: np.ndarray, keys, codes: np.ndarray, labels, sources, metas, snippets=None):
    """Rows of the items table as tuples, in its column order: ids (n,) int64, keys (n,) str, codes
    (n, bits/8) uint8, labels, sources and metas (n,) or None."""
    n = len(keys)
    label_list = [None] * n if labels is None else _as_list(labels)  # numpy ints would bind as blobs
    meta_list = [None] * n if metas is None else [None if m is None else json.dumps(m) for m in metas]
    source_list = [None] * n if sources is None else sources
    snippet_list = [None] * n if snippets is None else snippets
    return zip([index_id] * n, ids.tolist(), keys, label_list, source_list, meta_list, _row_bytes(codes), snippet_list)


def _row_bytes(a: np.ndarray) -> list[bytes]:
    """Each row of a 2-D array as bytes (one copy of the whole, then slices)."""
    flat, width = np.ascontiguousarray(a).tobytes(), a.shape[1] * a.itemsize
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)
