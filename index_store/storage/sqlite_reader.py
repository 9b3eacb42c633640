"""Reading a SQLite store with the standard library's sqlite3 alone: what read-only commands
(search, index info/list/verify/export, dedup) use on a SQLite file, so that they start without
importing SQLAlchemy (measured: 0.25 s of a 0.8 s `semhash search --item`; README, "Start-up").

It reads what store.Store writes, with the same checks: opened read-only (a mistyped path creates
nothing, a read-only mount is read as immutable), a file without semhash's tables is StoreMissing,
a store of another schema version than this code's is refused (migrations.py: never upgraded
here), and every driver error is one StoreError line. tests/test_portable.py checks it against
Store on the same files.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import numpy as np

from ...hashing.errors import IndexNotFound, StoreError, StoreMissing, sql_error
from . import migrations
from .records import IndexRow, checked_row, codes_array, open_read_only, safe_url, stacked_blobs

# The columns of every table (schema.py's; tests/test_portable.py checks they agree).
COLUMNS = {
    "semhash_indexes": (
        "id name bits hasher_path hasher_checksum hasher_header created updated generation next_item item_count"
        " uid state signer"
    ).split(),
    "semhash_items": "index_id id key label source meta code snippet".split(),
    "semhash_vectors": "index_id item_id vector".split(),
    "semhash_signatures": "index_id item_id signature".split(),
}
# (ids, codes) of an index in id order; (key, code) of some keys ({marks}: their placeholders)
CODES = "SELECT id, code FROM semhash_items WHERE index_id = ? ORDER BY id"
CODES_OF = "SELECT key, code FROM semhash_items WHERE index_id = ? AND key IN ({marks})"
META_TABLE, META_COLUMNS = "semhash_index_meta", ["index_id", "source_root", "classes"]
IN_CHUNK = 30_000  # values per IN (...): below SQLite's 32,766 bind parameters


class SqliteReader:
    """A read-only view of the SQLite store at `path` (url: its sqlite:/// URL), with the reading
    half of store.Store's interface."""

    is_sqlite, mode = True, "read"

    def __init__(self, url: str, path: Path):
        self.url, self.sqlite_path = url, path
        self.lock = threading.RLock()  # one connection: threads take turns, a snapshot at a time
        if not path.is_file():
            raise StoreMissing(f"{path}: no such database file")
        self.conn = self._guard(lambda: open_read_only(path))
        try:
            with self._snapshot():  # the tables and the version recorded, as of one state
                version = migrations.stored_version(self._rows, "sqlite", safe_url(url))
            migrations.must_upgrade(version, "read", safe_url(url))  # or refused: this reader never writes
        except StoreError:
            self.conn.close()
            raise

    def _guard(self, read):
        try:
            return read()
        except sqlite3.Error as exc:
            raise sql_error(exc, f"database {safe_url(self.url)}") from None

    def _rows(self, sql: str, params=()) -> list[tuple]:
        with self.lock:
            return self._guard(lambda: self.conn.execute(sql, params).fetchall())

    def _snapshot(self):
        """One read transaction (a consistent snapshot across statements, as Store's connection)."""
        return _Snapshot(self)

    # --- the reading half of store.Store ---
    def get_index(self, name: str) -> IndexRow:
        with self._snapshot():
            return self._index_row(name)

    def index_names(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT name FROM semhash_indexes ORDER BY name")]

    def load_codes(self, name: str) -> tuple[np.ndarray, np.ndarray, IndexRow]:
        """(ids (n,) int64, codes (n, bits/8) uint8, the index's row), ordered by id, from one snapshot."""
        with self._snapshot():
            idx = self._index_row(name)
            rows = self._rows(CODES, (idx.id,))
        ids, codes = codes_array(rows, idx.bits, f"database {safe_url(self.url)}")
        return ids, codes, idx

    def load_vectors(self, name: str, ids: np.ndarray) -> np.ndarray | None:
        with self._snapshot():
            idx = self._index_row(name)
            rows = dict(self._rows("SELECT item_id, vector FROM semhash_vectors WHERE index_id = ?", (idx.id,)))
        if not rows:
            return None
        return np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])

    def load_signatures(self, name: str) -> tuple[np.ndarray, np.ndarray | None, str | None]:
        """(ids (m,) int64 in id order, their signatures' bytes (m, width) uint8 (None: of
        differing widths), the verifier that made them) of the items that have one, read in one
        snapshot."""
        sql = "SELECT item_id, signature FROM semhash_signatures WHERE index_id = ? ORDER BY item_id"
        with self._snapshot():
            idx = self._index_row(name)
            count = self._rows("SELECT COUNT(*) FROM semhash_signatures WHERE index_id = ?", (idx.id,))[0][0]
            ids, flat = self._guard(lambda: stacked_blobs(self.conn.execute(sql, (idx.id,)), count))
        return ids, flat, idx.signer

    def items(self, name: str, ids, index_id: int | None = None) -> dict[int, dict]:
        """Metadata of items by id: {id: {id, key, label, source, meta}}."""
        ids = sorted({int(i) for i in ids})
        out = {}
        with self._snapshot():
            index_id = self._index_row(name).id if index_id is None else index_id
            for part in _chunks(ids):
                marks = ", ".join("?" * len(part))
                sql = "SELECT id, key, label, source, meta, snippet FROM semhash_items"
                sql += f" WHERE index_id = ? AND id IN ({marks})"
                for i, key, label, source, meta, snippet in self._rows(sql, (index_id, *part)):
                    out[i] = {"id": i, "key": key, "label": label, "source": source, "meta": self._meta(meta)}
                    out[i]["snippet"] = snippet
        return out

    def ids_of(self, name: str, keys: list[str]) -> dict[str, int]:
        return self._by_key(name, keys, "SELECT key, id FROM semhash_items WHERE index_id = ? AND key IN ({marks})")

    def codes_of(self, name: str, keys: list[str]) -> dict[str, bytes]:
        return self._by_key(name, keys, CODES_OF)

    def _by_key(self, name: str, keys: list[str], sql: str) -> dict:
        """{key: value} from sql's two columns, with the index's id and each chunk of keys bound
        ({marks}: their placeholders), in one snapshot."""
        found = {}
        with self._snapshot():
            idx = self._index_row(name)
            for part in _chunks([str(k) for k in keys]):
                found.update(self._rows(sql.format(marks=", ".join("?" * len(part))), (idx.id, *part)))
        return found

    def count(self, name: str) -> int:
        with self._snapshot():
            idx = self._index_row(name)
            return self._rows("SELECT count(*) FROM semhash_items WHERE index_id = ?", (idx.id,))[0][0]

    def _meta(self, text):
        try:
            return _json(text)
        except ValueError:
            where = f"database {safe_url(self.url)}"
            raise StoreError(f"{where}: an item's metadata is not JSON: the database is damaged") from None

    def checkpoint(self) -> None:
        """Nothing to move: this reader never writes."""

    def _index_row(self, name: str) -> IndexRow:
        fields = [f for f in IndexRow.__dataclass_fields__ if f in COLUMNS["semhash_indexes"]]
        sql = f"SELECT {', '.join('i.' + f for f in fields)}, m.source_root, m.classes"
        sql += f" FROM semhash_indexes i LEFT JOIN {META_TABLE} m ON m.index_id = i.id"
        fields += ["source_root", "classes"]
        rows = self._rows(sql + " WHERE i.name = ?", (name,))
        if not rows:
            known = ", ".join(self.index_names()) or "none"
            raise IndexNotFound(f"no index named {name!r} in {safe_url(self.url)} (known: {known})")
        return checked_row(lambda: _index_row(dict(zip(fields, rows[0]))), f"database {safe_url(self.url)}", name)


def _index_row(row: dict) -> IndexRow:
    row["hasher_header"], row["classes"] = _json(row["hasher_header"]), _json(row.get("classes"))
    row["created"], row["updated"] = (datetime.fromisoformat(row[k]) for k in ("created", "updated"))
    return IndexRow(**row)


class _Snapshot:
    """BEGIN ... COMMIT around reads, so that they see one state of the database."""

    def __init__(self, reader: SqliteReader):
        self.reader = reader

    def __enter__(self):
        self.reader.lock.acquire()
        try:
            self.began = not self.reader.conn.in_transaction
            if self.began:
                self.reader._guard(lambda: self.reader.conn.execute("BEGIN"))
        except BaseException:
            self.reader.lock.release()
            raise

    def __exit__(self, *exc):
        try:
            if self.began:
                self.reader._guard(self.reader.conn.commit)
        finally:
            self.reader.lock.release()


def _json(text):
    return None if text is None else json.loads(text)


def _chunks(values: list) -> list[list]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]
