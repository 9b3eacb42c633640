"""The SQL store of indexes, items, codes and vectors (SQLite by default, PostgreSQL by URL).

Every write is one transaction that takes the index's write lock first (SQLite: BEGIN IMMEDIATE;
PostgreSQL: SELECT ... FOR UPDATE on the index row), hands out item ids from the index row and bumps
its generation, so readers can tell whether their derived structures are stale.
"""

from __future__ import annotations

import json
import operator
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchTableError, SQLAlchemyError

from ...hashing.codes import check_bits
from ...hashing.errors import (
    IndexNotFound,
    ItemNotFound,
    StoreError,
    StoreMissing,
    first_line,
    hide_passwords,
    missing_extra,
    sql_error,
)
from . import schema as S
from . import sqlite_bulk
from .records import IndexRow, checked_row, codes_array, database_url, lock_timeout_s, open_read_only, safe_url

BUSY_TIMEOUT_MS = 10_000


class Store:
    """Connection to one database. Cheap to create; share one per process.

    mode: "create" makes the database and semhash's tables where they are missing (building an
    index); "write" and "read" need a database that holds them already and change nothing on
    opening (but for moving the codes of a store made before 2026-11-26 into its items table, once,
    which "read" never does); "read" also opens SQLite files read-only. (Read-only commands on a SQLite file use
    sqlite_reader.SqliteReader instead, through index.open_store: the same checks, no SQLAlchemy.)
    """

    def __init__(self, target: str | os.PathLike, mode: str = "create"):
        if mode not in ("create", "write", "read"):
            raise ValueError(f"unknown store mode {mode!r}")
        self.url, self.mode = database_url(target), mode
        try:
            url = make_url(self.url)
            self.is_sqlite = url.get_backend_name() == "sqlite"
            self.engine: Engine = self._engine(url)
        except (ArgumentError, ImportError) as exc:
            if missing_extra(exc):
                raise missing_extra(exc) from None
            raise StoreError(f"bad database URL {safe_url(self.url)}: {hide_passwords(first_line(exc))}") from None
        try:
            state, self.has_meta, self.codes_apart = _schema_state(self.engine, safe_url(self.url))
            if state != "ours" and mode != "create":
                raise StoreMissing(f"{safe_url(self.url)} holds no semhash tables")
            if self.is_sqlite:
                self.engine.dispose()  # the check's connection had no pragmas: the pool starts afresh
                _sqlite_setup(self.engine, writable=mode != "read")
            if mode == "create" and not (state == "ours" and self.has_meta):
                S.metadata.create_all(self.engine)  # the missing tables only
                self.has_meta = True
            if self.codes_apart and mode != "read":
                self._move_codes()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {safe_url(self.url)}: {hide_passwords(first_line(exc))}") from None

    def _engine(self, url) -> Engine:
        if not self.is_sqlite or not url.database or url.database == ":memory:":
            return create_engine(self.url, **({} if self.is_sqlite else {"pool_pre_ping": True}))
        path = Path(url.database)
        if self.mode != "create" and not path.is_file():
            raise StoreMissing(f"{path}: no such database file")
        if not path.parent.is_dir():
            raise StoreError(f"cannot create database {path}: folder {path.parent} does not exist")
        if self.mode == "read":
            return create_engine("sqlite://", creator=lambda: open_read_only(path))
        return create_engine(self.url)

    def _move_codes(self) -> None:
        """Move the codes of a store made before 2026-11-26 from their own table into items.code, in
        one transaction (SQLite: under the write lock; PostgreSQL: with the items table locked, so
        that a second process opening the store meanwhile waits, then finds them moved). An item
        without a code there leaves the tables as they were (StoreError): read-only opens still
        read them."""
        from sqlalchemy import inspect

        items, old = S.items.name, S.old_codes.name
        try:
            with self._write() as conn:
                run = conn.exec_driver_sql
                if not self.is_sqlite:
                    run(f"LOCK TABLE {items} IN ACCESS EXCLUSIVE MODE")
                if "code" not in {c["name"] for c in inspect(conn).get_columns(items)}:
                    run(f"ALTER TABLE {items} ADD COLUMN code {S.items.c.code.type.compile(dialect=conn.dialect)}")
                    same = f"c.index_id = {items}.index_id AND c.item_id = {items}.id"
                    run(f"UPDATE {items} SET code = (SELECT c.code FROM {old} c WHERE {same})")
                    lacking = run(f"SELECT count(*) FROM {items} WHERE code IS NULL").scalar_one()
                    if lacking:
                        raise StoreError(f"{lacking} of its items have no code in table {old}: it is damaged")
                    if not self.is_sqlite:  # (SQLite cannot add the constraint to an existing column)
                        run(f"ALTER TABLE {items} ALTER COLUMN code SET NOT NULL")
                    run(f"DROP TABLE {old}")
        except StoreError as exc:
            raise StoreError(
                f"cannot move the codes of {safe_url(self.url)}, a store made before 2026-11-26, into its "
                f"items table ({exc}); read-only commands still read it"
            ) from None
        self.codes_apart = False

    @property
    def sqlite_path(self) -> Path | None:
        db = make_url(self.url).database
        return Path(db) if self.is_sqlite and db and db != ":memory:" else None

    # --- indexes ---
    def create_index(
        self,
        name: str,
        bits: int,
        hasher_path: str | None = None,
        hasher_checksum: str | None = None,
        hasher_header: dict | None = None,
        source_root: str | None = None,
        classes: list[str] | None = None,
    ) -> IndexRow:
        """A new, empty index (StoreError if the name is taken). source_root, classes: see IndexRow."""
        check_bits(bits)
        now = datetime.now(timezone.utc)
        try:
            with self._write() as conn:
                made = conn.execute(
                    S.indexes.insert().values(
                        name=name,
                        bits=bits,
                        hasher_path=hasher_path,
                        hasher_checksum=hasher_checksum,
                        hasher_header=hasher_header,
                        created=now,
                        updated=now,
                        generation=0,
                        next_item=1,
                        item_count=0,
                    )
                )
                if source_root is not None or classes:
                    index_id = made.inserted_primary_key[0]
                    conn.execute(
                        S.index_meta.insert().values(index_id=index_id, source_root=source_root, classes=classes)
                    )
        except IntegrityError:
            raise StoreError(f"index {name!r} already exists in {safe_url(self.url)}") from None
        return self.get_index(name)

    def get_index(self, name: str) -> IndexRow:
        try:
            with self._read(single=True) as conn:
                return self._index_row(conn, name)
        except IndexNotFound as exc:  # name the indexes there are, from a connection of its own
            raise IndexNotFound(f"{exc} (known: {', '.join(self.index_names()) or 'none'})") from None

    def index_names(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(S.indexes.c.name).order_by(S.indexes.c.name)).scalars())

    def drop_index(self, name: str) -> None:
        """Delete index `name` and every row of it, in one transaction. The index row is locked first:
        a concurrent add either commits before (and its rows are deleted here) or finds no index."""
        with self._write() as conn:
            idx = self._lock(conn, name)
            for table in (S.vectors,) + ((S.index_meta,) if self.has_meta else ()):
                conn.execute(delete(table).where(table.c.index_id == idx.id))
            conn.execute(delete(S.items).where(S.items.c.index_id == idx.id))
            conn.execute(delete(S.indexes).where(S.indexes.c.id == idx.id))

    def _insert(self, conn, table, rows) -> None:
        """Insert rows (tuples in the table's column order) in the transaction of conn, by the
        driver's own bulk path: one prepared INSERT and executemany on SQLite, COPY on PostgreSQL.
        Measured, 1M items with keys and labels, 32-bit codes, SQLite + derived structures, 2 cores:
        47.5 s with SQLAlchemy's insert() and a dict a row, 25.9 s this way, where a raw sqlite3
        executemany of the same rows takes 17.0 s (the rest: the derived structures); PostgreSQL,
        200,000 items: 15.5 s with insert(), 5.1 s with COPY."""
        columns = [c.name for c in table.columns]
        if self.is_sqlite:
            marks = ", ".join("?" * len(columns))
            conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", list(rows))
        elif conn.dialect.driver == "psycopg":
            _copy(conn, table.name, columns, rows)
        else:
            conn.execute(table.insert(), [dict(zip(columns, row)) for row in rows])

    def checkpoint(self) -> None:
        """SQLite: move the write-ahead log into the database file, so that the file alone (copied,
        mailed, moved) holds every committed item, and leave it in rollback-journal mode when no one
        else has it open, so that read-only commands need no -wal and -shm files beside it (the next
        writer turns WAL on again). Nothing to do elsewhere."""
        if self.is_sqlite and self.mode != "read":
            import sqlite3

            self.engine.dispose()  # this process's idle connections would keep WAL on
            raw = self.engine.raw_connection()  # the driver's own: pragmas outside any transaction
            try:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                try:
                    raw.execute("PRAGMA journal_mode=DELETE")
                except sqlite3.OperationalError:
                    pass  # another connection has it open (a server): it stays in WAL mode
            except sqlite3.Error as exc:
                raise _translate(self, exc) from None
            finally:
                raw.close()

    # --- items ---
    def add(
        self,
        name: str,
        keys: list[str],
        codes: np.ndarray,
        labels=None,
        sources=None,
        metas=None,
        vectors: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add items in one transaction; returns their new ids (n,) int64. All or nothing."""
        n = len(keys)
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        with self._write() as conn:
            idx = self._lock(conn, name)
            if codes.shape != (n, idx.bits // 8):
                raise StoreError(
                    f"index {name!r} holds {idx.bits}-bit codes; got codes of shape {codes.shape} for {n} keys"
                )
            if vectors is not None and (np.ndim(vectors) != 2 or len(vectors) != n or not np.shape(vectors)[1]):
                raise StoreError(f"vectors of shape {np.shape(vectors)} for {n} items: (n, dimensions) wanted")
            if len(set(keys)) != n:
                raise StoreError("the same key appears twice in one batch")
            first = idx.next_item
            ids = np.arange(first, first + n, dtype=np.int64)
            try:
                if n:
                    self._insert_rows(conn, idx.id, ids, keys, codes, labels, sources, metas, vectors)
            except IntegrityError as exc:
                if not any(c in str(exc.orig) for c in ("uq_semhash_items_key", "semhash_items.key")):
                    raise StoreError(f"could not store these items: {str(exc.orig).splitlines()[0]}") from None
                raise StoreError(f"some of these keys are already in index {name!r}; remove them first") from None
            except UnicodeEncodeError:
                raise StoreError(
                    f"a key or source is not valid Unicode text: {_unencodable(keys, sources)!r}"
                ) from None
            self._bump(conn, idx.id, next_item=first + n, delta=n)
        return np.arange(first, first + n, dtype=np.int64)

    def _insert_rows(self, conn, index_id, ids, keys, codes, labels, sources, metas, vectors) -> None:
        """Rows for items ids (n,) int64, consecutive (the arguments in that order, None where absent)
        by the fastest path the database has: whole columns on SQLite (sqlite_bulk), else _insert's.
        Item rows go in the order of _insert_order."""
        first, keys = int(ids[0]), [str(k) for k in keys]
        labels, sources, metas = _labels(labels), _listed(sources), _listed(metas)
        for name, column in (("labels", labels), ("sources", sources), ("metas", metas)):
            if column is not None and len(column) != len(keys):
                raise StoreError(f"{len(column)} {name} for {len(keys)} items")
        order, item_codes = _insert_order(keys), codes
        if order is not None:
            pick = lambda v: None if v is None else v[order] if isinstance(v, np.ndarray) else [v[i] for i in order]  # noqa: E731
            keys, labels, sources, metas, ids = pick(keys), pick(labels), pick(sources), pick(metas), ids[order]
            item_codes = codes[order]
        if self.is_sqlite and sqlite_bulk.carries(conn, keys, sources):
            sqlite_bulk.insert_items(conn, index_id, ids, keys, item_codes, labels, sources, metas)
            if vectors is not None:
                v = np.asarray(vectors, dtype=np.float32)
                sqlite_bulk.insert_fixed(conn, S.vectors, "vector", index_id, first, v)
            return
        self._insert(conn, S.items, _item_rows(index_id, ids, keys, item_codes, labels, sources, metas))
        if vectors is not None:
            every = np.arange(first, first + len(codes), dtype=np.int64)
            v = np.ascontiguousarray(vectors, dtype=np.float32)
            self._insert(conn, S.vectors, zip([index_id] * len(every), every.tolist(), _row_bytes(v)))

    def remove(self, name: str, keys: list[str]) -> np.ndarray:
        """Remove items by key in one transaction; returns the removed ids. Unknown keys are an error."""
        with self._write() as conn:
            idx = self._lock(conn, name)
            found = _key_ids(conn, idx.id, keys)
            missing = [k for k in keys if str(k) not in found]
            if missing:
                raise ItemNotFound(f"{len(missing)} key(s) not in index {name!r}, e.g. {missing[0]!r}; nothing removed")
            ids = sorted(found.values())
            for part in _chunks(ids):
                conn.execute(delete(S.vectors).where(S.vectors.c.index_id == idx.id, S.vectors.c.item_id.in_(part)))
                conn.execute(delete(S.items).where(S.items.c.index_id == idx.id, S.items.c.id.in_(part)))
            self._bump(conn, idx.id, delta=-len(ids))
        return np.array(ids, dtype=np.int64)

    def load_codes(self, name: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(ids (n,) int64, codes (n, bits/8) uint8, generation), ordered by id, from one snapshot."""
        with self._read() as conn:
            idx = self._index_row(conn, name)
            t = self._codes(conn)
            item_id = t.c.id if t is S.items else t.c.item_id
            rows = conn.execute(select(item_id, t.c.code).where(t.c.index_id == idx.id).order_by(item_id)).all()
        ids, codes = codes_array(rows, idx.bits, f"database {safe_url(self.url)}")
        return ids, codes, idx.generation

    def load_vectors(self, name: str, ids: np.ndarray) -> np.ndarray | None:
        """Float vectors of the given ids (in that order), or None if the index keeps none."""
        with self._read() as conn:
            idx = self._index_row(conn, name)
            rows = dict(
                conn.execute(
                    select(S.vectors.c.item_id, S.vectors.c.vector).where(S.vectors.c.index_id == idx.id)
                ).all()
            )
        if not rows:
            return None
        return np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])

    def items(self, name: str, ids, index_id: int | None = None) -> dict[int, dict]:
        """Metadata of items by id: {id: {key, label, source, meta}}. index_id: the index's id when
        the caller holds its row already (one round trip fewer)."""
        ids = sorted({int(i) for i in ids})
        out = {}
        with self._read(single=True) as conn:
            index_id = self._index_row(conn, name).id if index_id is None else index_id
            columns = (S.items.c.id, S.items.c.key, S.items.c.label, S.items.c.source, S.items.c.meta)
            for part in _chunks(ids):
                rows = conn.execute(select(*columns).where(S.items.c.index_id == index_id, S.items.c.id.in_(part)))
                rows = rows.mappings()
                out.update({r["id"]: dict(r) for r in rows})
        return out

    def ids_of(self, name: str, keys: list[str]) -> dict[str, int]:
        with self._read() as conn:
            return _key_ids(conn, self._index_row(conn, name).id, keys)

    def codes_of(self, name: str, keys: list[str]) -> dict[str, bytes]:
        """{key: its packed code, bits/8 bytes} of the keys that are in the index, from one snapshot."""
        found = {}
        with self._read() as conn:
            index_id = self._index_row(conn, name).id
            t = self._codes(conn)
            for part in _chunks([str(k) for k in keys]):
                q = select(S.items.c.key, t.c.code).where(S.items.c.index_id == index_id, S.items.c.key.in_(part))
                if t is not S.items:
                    q = q.join(t, (t.c.index_id == S.items.c.index_id) & (t.c.item_id == S.items.c.id))
                found.update((key, value if value is None else bytes(value)) for key, value in conn.execute(q))
        return found

    def _codes(self, conn):
        """The table this store keeps its codes in (columns index_id, the item's id, code): items,
        or an older store's own codes table (item_id), which only read-only opens see (the others
        have moved its codes; and once another process has moved them, this one reads them there)."""
        apart = self.codes_apart  # one read: another thread may clear it meanwhile
        if apart:
            from sqlalchemy import inspect

            if not self.is_sqlite:  # a move in progress finishes first, and none starts until we have read
                conn.exec_driver_sql(f"LOCK TABLE {S.items.name} IN ACCESS SHARE MODE")
            apart = inspect(conn).has_table(S.old_codes.name)
            if not apart:
                self.codes_apart = False  # moved for good
        return S.old_codes if apart else S.items

    def count(self, name: str) -> int:
        with self._read() as conn:
            idx = self._index_row(conn, name)
            return conn.execute(
                select(func.count()).select_from(S.items).where(S.items.c.index_id == idx.id)
            ).scalar_one()

    # --- plumbing ---
    def _read(self, single: bool = False):
        """A connection for reading. single: for reads whose statements need no common snapshot, on a
        server database in autocommit, which spares the BEGIN and ROLLBACK round trips (with the
        pool's ping, 4 round trips a read become 2: a search on PostgreSQL makes two reads)."""
        conn = self.engine.connect()
        if single and not self.is_sqlite:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return _Guard(self, conn)

    def _write(self):
        return _Guard(self, self.engine.execution_options(semhash_write=True).begin())

    def _lock(self, conn, name: str) -> IndexRow:
        """The index row, locked for this transaction (SQLite holds the whole-database write lock)."""
        return self._index_row(conn, name, lock=not self.is_sqlite)

    def _index_row(self, conn, name: str, lock: bool = False) -> IndexRow:
        """The row of index `name` (locked FOR UPDATE if asked); IndexNotFound if there is none."""
        q = select(S.indexes).where(S.indexes.c.name == name)
        if self.has_meta:
            meta = S.index_meta
            q = q.add_columns(meta.c.source_root, meta.c.classes).outerjoin(meta, meta.c.index_id == S.indexes.c.id)

        def fetch() -> IndexRow:
            row = conn.execute(q.with_for_update(of=S.indexes) if lock else q).mappings().first()
            if row is None:
                raise IndexNotFound(f"no index named {name!r} in {safe_url(self.url)}")
            return IndexRow(**{k: row.get(k) for k in IndexRow.__dataclass_fields__})

        return checked_row(fetch, f"database {safe_url(self.url)}", name)

    def _bump(self, conn, index_id: int, delta: int, next_item: int | None = None) -> None:
        values = {
            "generation": S.indexes.c.generation + 1,
            "item_count": S.indexes.c.item_count + delta,
            "updated": datetime.now(timezone.utc),
        }
        if next_item is not None:
            values["next_item"] = next_item
        conn.execute(update(S.indexes).where(S.indexes.c.id == index_id).values(**values))


class _Guard:
    """Context manager around a connection (or transaction) that turns driver errors, on opening,
    inside the block and on closing, into one-line StoreErrors; a transaction still rolls back."""

    def __init__(self, store: Store, ctx):
        self.store, self.ctx = store, ctx

    def __enter__(self):
        try:
            return self.ctx.__enter__()
        except SQLAlchemyError as exc:
            raise _translate(self.store, exc) from None

    def __exit__(self, kind, exc, tb):
        try:
            suppressed = self.ctx.__exit__(kind, exc, tb)  # rolls back when the block raised
        except SQLAlchemyError as closing:
            raise _translate(self.store, closing) from None
        # (an IntegrityError is the caller's to word: a duplicate index name, a duplicate key)
        if isinstance(exc, SQLAlchemyError) and not isinstance(exc, IntegrityError) and not suppressed:
            raise _translate(self.store, exc) from None
        return suppressed


def _translate(store: Store, exc: Exception) -> StoreError:
    return sql_error(exc, f"database {safe_url(store.url)}")


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


IN_CHUNK = 30_000  # values per IN (...): below PostgreSQL's 65,535 bind parameters and SQLite's 32,766


def _insert_order(keys: list[str]) -> np.ndarray | None:
    """The order to insert item rows in: key order, so that the (index_id, key) index grows page by
    page instead of at random (1M keys into SQLite: 5.1 s -> 3.8 s for this table, measured raw; 74
    bytes/item on disk, 129 in input order); None when the keys already ascend (then ids do too:
    no sort, and SQLite numbers the ids itself, e.g. MNIST's batches after the first)."""
    if not any(map(operator.gt, keys, keys[1:])):
        return None
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def _chunks(values: list) -> list[list]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


def _key_ids(conn, index_id: int, keys) -> dict[str, int]:
    """{key: item id} of the keys that are in the index, in IN lists of at most IN_CHUNK."""
    found = {}
    for part in _chunks([str(k) for k in keys]):
        q = select(S.items.c.key, S.items.c.id).where(S.items.c.index_id == index_id, S.items.c.key.in_(part))
        found.update(conn.execute(q).all())
    return found


def _item_rows(index_id: int, ids: np.ndarray, keys, codes: np.ndarray, labels, sources, metas):
    """Rows of the items table as tuples, in its column order: ids (n,) int64, keys (n,) str, codes
    (n, bits/8) uint8, labels, sources and metas (n,) or None."""
    n = len(keys)
    label_list = [None] * n if labels is None else _as_list(labels)  # numpy ints would bind as blobs
    meta_list = [None] * n if metas is None else [None if m is None else json.dumps(m) for m in metas]
    source_list = [None] * n if sources is None else sources
    return zip([index_id] * n, ids.tolist(), keys, label_list, source_list, meta_list, _row_bytes(codes))


def _listed(values) -> list | None:
    """A column as a list indexed by position (a generator, a Series or an array alike)."""
    return None if values is None else _as_list(values)


def _labels(values) -> np.ndarray | list | None:
    """Labels as an int64 array (an integer array given), else Python ints (None where absent);
    StoreError for one that is not an integer a 64-bit column holds."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
        if values.dtype.kind == "u" and len(values) and values.max() >= 2**63:
            raise StoreError("labels must fit in 64 bits")
        return values.astype(np.int64)  # 60,000 labels: 0.03 s as Python ints -> 0.1 ms
    labels = _listed(values)
    if labels is None:
        return None
    try:
        labels = [None if v is None else _integer(v) for v in labels]
    except (TypeError, ValueError, OverflowError):
        raise StoreError("labels must be integers (or None)") from None
    if any(v is not None and not -(2**63) <= v < 2**63 for v in labels):
        raise StoreError("labels must fit in 64 bits")
    return labels


def _row_bytes(a: np.ndarray) -> list[bytes]:
    """Each row of a 2-D array as bytes (one copy of the whole, then slices)."""
    flat, width = np.ascontiguousarray(a).tobytes(), a.shape[1] * a.itemsize
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def _integer(v) -> int:
    """An integer, or a float with an integral value (labels read from float columns)."""
    try:
        return operator.index(v)
    except TypeError:
        if float(v).is_integer():
            return int(v)
        raise


def _unencodable(keys, sources) -> str:
    """The first key or source that UTF-8 cannot encode (a lone surrogate from an undecodable file name)."""
    for v in list(keys) + list(sources or []):
        try:
            str(v).encode("utf-8")
        except UnicodeEncodeError:
            return str(v)
    return ""


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _sqlite_setup(engine: Engine, writable: bool = True) -> None:
    """WAL (readers never block the writer), a busy timeout, and BEGIN IMMEDIATE for writes, so a
    second writer waits for the lock up front instead of failing half-way through. WAL is turned on
    by the first write, not on opening: a command refused before it writes leaves the file as it
    was, to the byte (a store made before 2026-11-26 excepted: a write-mode open moves its codes
    first). A read-only store changes no setting of the file."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_busy_timeout_ms()}")  # first: turning WAL on may wait for readers
        if writable:
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get("semhash_write"):
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # a no-op once on; persists in the file
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _schema_state(engine: Engine, where: str) -> tuple[str, bool, bool]:
    """("ours" (every semhash table of the first release, with its columns), "partial" or "none",
    whether the later index_meta table is there, whether the codes are in a table of their own (a
    store made before 2026-11-26)); StoreError when a table of ours by name has other columns
    (another application's)."""
    from sqlalchemy import inspect

    try:
        return _schema_state_once(inspect(engine), where)
    except NoSuchTableError:  # another process moved an older store's codes while we looked
        return _schema_state_once(inspect(engine), where)


def _schema_state_once(inspector, where: str) -> tuple[str, bool, bool]:
    present = set(inspector.get_table_names())
    codes_apart = False
    for name in present & set(S.metadata.tables):
        columns = {c["name"] for c in inspector.get_columns(name)}
        missing = set(S.metadata.tables[name].columns.keys()) - columns
        if name == S.items.name and missing == {"code"} and S.old_codes.name in present:
            name, codes_apart = S.old_codes.name, True
            missing = set(S.old_codes.c.keys()) - {c["name"] for c in inspector.get_columns(name)}
        if missing:
            raise StoreError(f"{where}: table {name} is not semhash's (it lacks {', '.join(sorted(missing))})")
    first = set(S.metadata.tables) - S.LATER_TABLES
    state = "ours" if first <= present else "partial" if present & set(S.metadata.tables) else "none"
    return state, S.index_meta.name in present, codes_apart


def _busy_timeout_ms() -> int:
    """How long a writer waits for another's lock: SEMHASH_LOCK_TIMEOUT seconds, else BUSY_TIMEOUT_MS."""
    return round(lock_timeout_s(BUSY_TIMEOUT_MS / 1000) * 1000)
