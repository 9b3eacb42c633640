"""Bulk insert into SQLite with the rows crossing the driver as a few whole values, not row by row.

sqlite3's executemany costs ~2 us a row in binding and stepping from Python: 4.7 of the 6.5 s a
bulk add of 1M items took (benchmarks/README.md). Here each column travels as one value and
SQLite's own loop cuts row i out of it:

    text (keys, sources, metadata)   a JSON array, read by json_each (one row per element, in order)
    integers (labels)                one blob of fixed-width decimals: CAST(substr(blob, i*w+1, w))
    fixed-width bytes (codes, vectors)  one blob: substr(blob, i*w+1, w), O(1) for blobs
    item ids                         as integers (vectors: first + i)

(substr on TEXT counts characters from the start - O(n) a row, measured 330 s for 1M labels - so
every cut value is a blob.) Measured, 1M items, keys and labels, 32-bit codes, in one transaction,
when codes had a table of their own: items 3.0 s -> 1.3 s, codes 1.9 s -> 0.6 s (`semhash bench
search`'s bulk add: 7.5 s -> 3.7 s). Codes now travel with their item rows (schema.py).
"""

from __future__ import annotations

import functools
import json
import sqlite3

import numpy as np

from . import schema as S

# json_each and CAST of blobs behave as used here since SQLite 3.9 (json1 built in by default since 3.38)
JSON_ROWS = "json_each(:rows) AS r"
# per statement: SQLite refuses any value over 1e9 bytes (SQLITE_MAX_LENGTH), and a batch of
# 100,000 CIFAR-sized vectors is 1.2 GB; chunks this size cost nothing measurable
CHUNK_BYTES = 64 << 20
CHUNK_ROWS = 100_000  # items per statement: their JSON is a few MB unless keys are kilobytes long
# n rows numbered 0..n-1 without a table: a recursive CTE, stepped inside SQLite
NUMBERS = "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :n - 1)"


@functools.cache
def available() -> bool:
    """Whether this SQLite library has json_each (compiled in by default since 3.38)."""
    try:
        sqlite3.connect(":memory:").execute("SELECT count(*) FROM json_each('[1]')").fetchone()
    except sqlite3.OperationalError:
        return False
    return True


def carries(conn, keys, sources) -> bool:
    """Whether these rows can travel this way over conn (a SQLAlchemy connection): a UTF-8 database
    (CAST reads the digit blobs as text in the database's encoding), keys and sources all str (None
    for an absent source), none with a NUL character (SQLite's JSON functions end a string there,
    where the driver's own binding keeps it). Other rows take the row-by-row path."""
    if not available() or conn.exec_driver_sql("PRAGMA encoding").scalar() != "UTF-8":
        return False
    texts = [keys] + ([] if sources is None else [[v for v in sources if v is not None]])
    return all(set(map(type, t)) <= {str} and "\x00" not in "".join(t) for t in texts)


def insert_items(
    conn, index_id: int, ids: np.ndarray, keys: list[str], codes: np.ndarray, labels, sources, metas, snippets=None
):
    """Items with these ids (n,) int64, keys (n,) str and codes (n, bits/8) uint8, optional labels
    (n,) int, sources (n,) str and metas (n,) JSON-able (None where absent), inserted in this order;
    conn: a SQLAlchemy connection in a transaction. One statement per CHUNK_ROWS items."""
    for a in range(0, len(keys), CHUNK_ROWS):
        part = slice(a, a + CHUNK_ROWS)
        cut = lambda v, part=part: None if v is None else v[part]  # noqa: E731
        columns = (cut(labels), cut(sources), cut(metas), cut(snippets))
        _insert_items(conn, index_id, ids[part], keys[part], codes[part], *columns)


def _insert_items(
    conn, index_id: int, ids: np.ndarray, keys: list[str], codes, labels, sources, metas, snippets
) -> None:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    values = {"index_id": index_id, "codes": codes.tobytes(), "code_width": codes.shape[1]}
    if len(ids) and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        values["first"] = int(ids[0])  # consecutive: numbered inside SQLite (60,000 rows: 83 -> 73 ms)
        columns = [("id", ":first + r.key")]
    else:
        values["ids"], values["id_width"] = _integers(ids)
        columns = [("id", "CAST(substr(:ids, r.key * :id_width + 1, :id_width) AS INTEGER)")]
    columns.append(("code", "substr(:codes, r.key * :code_width + 1, :code_width)"))
    text = {"key": keys}
    if labels is not None:
        ints = _integers(labels)
        if ints is None:
            text["label"] = labels
        else:
            values["labels"], values["label_width"] = ints
            columns.append(("label", "CAST(substr(:labels, r.key * :label_width + 1, :label_width) AS INTEGER)"))
    if sources is not None:
        text["source"] = sources
    if metas is not None:
        text["meta"] = [None if m is None else json.dumps(m) for m in metas]
    if snippets is not None:
        text["snippet"] = snippets
    one = len(text) == 1  # keys alone: a JSON array of strings, the fastest to write and to read
    rows = text["key"] if one else list(zip(*text.values()))
    values["rows"] = json.dumps(rows, ensure_ascii=False, allow_nan=False)  # lone surrogates fail in UTF-8
    for position, name in enumerate(text):
        columns.append((name, "r.value" if one else f"json_extract(r.value, '$[{position}]')"))
    names = ", ".join(name for name, _ in columns)
    exprs = ", ".join(expr for _, expr in columns)
    conn.exec_driver_sql(
        f"INSERT INTO {S.items.name} (index_id, {names}) SELECT :index_id, {exprs} FROM {JSON_ROWS}", values
    )


def insert_fixed(conn, table, column: str, index_id: int, first: int, rows: np.ndarray) -> None:
    """One row per row of `rows` (n, w) uint8 (or any dtype: its bytes), item ids first, first+1, ...,
    into table (index_id, item_id, column); one statement per CHUNK_BYTES of rows."""
    rows = np.ascontiguousarray(rows)
    width = rows.shape[1] * rows.itemsize
    if width == 0:
        raise ValueError("rows of zero bytes")
    step = max(1, CHUNK_BYTES // width)
    for a in range(0, len(rows), step):
        part = rows[a : a + step]
        conn.exec_driver_sql(
            f"{NUMBERS} INSERT INTO {table.name} (index_id, item_id, {column}) "
            f"SELECT :index_id, :first + i, substr(:blob, i * :width + 1, :width) FROM seq",
            {"n": len(part), "index_id": index_id, "first": first + a, "blob": part.tobytes(), "width": width},
        )


def _integers(values) -> tuple[bytes, int] | None:
    """(one blob of the values as right-aligned decimals, the width of one) or None when a value is
    None or not an integer (those go in the JSON rows instead)."""
    try:
        a = np.asarray(values)
    except (TypeError, ValueError):
        return None
    if a.ndim != 1 or a.dtype.kind not in "iub" or not len(a):
        return None  # (Store.add has checked that labels fit in 64 bits)
    a = a.astype(np.int64)
    if a.min() < 0:  # a sign: numpy's own formatting, right-aligned
        digits = a.astype(str)
        width = int(np.char.str_len(digits).max())
        return np.char.rjust(digits, width).astype(f"S{width}").tobytes(), width
    # zero-padded digits by arithmetic: 60,000 ids 24 ms as numpy strings -> 2 ms; CAST reads '007' as 7
    width = len(str(int(a.max())))
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((a[:, None] // powers) % 10 + ord("0")).astype(np.uint8).tobytes(), width
