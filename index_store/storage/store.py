"""The SQL store of indexes, items, codes and vectors (SQLite by default, PostgreSQL by URL).

Every write is one transaction that takes the index's write lock first (SQLite: BEGIN IMMEDIATE;
PostgreSQL: SELECT ... FOR UPDATE on the index row), hands out item ids from the index row and
writes a fresh state into it (and bumps its generation), so readers can tell whether their derived
structures are stale.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, delete, func, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

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
from . import bulk, migrations, sqlite_locks
from . import schema as S
from .records import (
    IndexRow,
    checked_row,
    codes_array,
    database_url,
    new_token,
    open_read_only,
    safe_url,
    stacked_blobs,
)
from .validate import Items, check_codes, check_items


class Store:
    """Connection to one database. Cheap to create; share one per process.

    mode: "create" makes the database and semhash's tables where they are missing (building an
    index); "write" and "read" need a database that holds them already. "create" and "write" bring
    a store of an older schema version up to this code's first (migrations.py), and else change
    nothing on opening; "read" never writes (it opens SQLite files read-only) and refuses a store of
    another version. (Read-only commands on a SQLite file use sqlite_reader.SqliteReader instead,
    through index.open_store: the same checks, no SQLAlchemy.)
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
            with self.engine.connect() as conn:
                rows = lambda sql: conn.exec_driver_sql(sql).all()  # noqa: E731
                version = migrations.stored_version(rows, conn.dialect.name, safe_url(self.url))
            upgrade = migrations.must_upgrade(version, mode, safe_url(self.url))
            if self.is_sqlite:
                self.engine.dispose()  # the check's connection had no pragmas: the pool starts afresh
                sqlite_locks.setup(self.engine, writable=mode != "read")
            if upgrade:
                with self._write() as conn:
                    migrations.upgrade(conn, safe_url(self.url))
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
                        uid=new_token(),
                        state=new_token(),
                    )
                )
                if source_root is not None or classes:
                    index_id = made.inserted_primary_key[0]
                    meta = S.index_meta.insert().values(index_id=index_id, source_root=source_root, classes=classes)
                    conn.execute(meta)
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
            for table in (S.vectors, S.signatures, S.index_meta):
                conn.execute(delete(table).where(table.c.index_id == idx.id))
            conn.execute(delete(S.items).where(S.items.c.index_id == idx.id))
            conn.execute(delete(S.indexes).where(S.indexes.c.id == idx.id))

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
        states: list | None = None,
        snippets=None,
    ) -> np.ndarray:
        """Add items in one transaction; returns their new ids (n,) int64. All or nothing: items
        validate.check_items refuses (DataError) or keys already there (StoreError) store nothing.
        states: a list to append ((uid, state) before this transaction, (uid, state) it wrote) to."""
        items = check_items(keys, codes, None, labels, sources, metas, vectors, snippets)  # the width: under the lock
        return self.add_items(name, items, states)

    def add_items(self, name: str, items: Items, states: list | None = None) -> np.ndarray:
        """add() of items that validate.check_items made (Index.add checks a whole add at once, then
        adds it in batches): the codes' width is checked here, against the index's."""
        n = len(items.keys)
        with self._write() as conn:
            idx = self._lock(conn, name)
            check_codes(items.codes, n, idx.bits)
            first = idx.next_item
            ids = np.arange(first, first + n, dtype=np.int64)
            try:
                if n:
                    bulk.insert_items(conn, idx.id, ids, items)
            except IntegrityError as exc:
                if not any(c in str(exc.orig) for c in ("uq_semhash_items_key", "semhash_items.key")):
                    raise StoreError(f"could not store these items: {str(exc.orig).splitlines()[0]}") from None
                raise StoreError(f"some of these keys are already in index {name!r}; remove them first") from None
            state = self._bump(conn, idx.id, delta=n, next_item=first + n)
        _note(states, idx, state)
        return ids

    def remove(self, name: str, keys: list[str], states: list | None = None) -> np.ndarray:
        """Remove items by key in one transaction; returns the removed ids. Unknown keys are an error.
        states: as add's."""
        with self._write() as conn:
            idx = self._lock(conn, name)
            found = _key_ids(conn, idx.id, keys)
            missing = [k for k in keys if str(k) not in found]
            if missing:
                raise ItemNotFound(f"{len(missing)} key(s) not in index {name!r}, e.g. {missing[0]!r}; nothing removed")
            ids = sorted(found.values())
            for part in _chunks(ids):
                for table in (S.vectors, S.signatures):
                    conn.execute(delete(table).where(table.c.index_id == idx.id, table.c.item_id.in_(part)))
                conn.execute(delete(S.items).where(S.items.c.index_id == idx.id, S.items.c.id.in_(part)))
            state = self._bump(conn, idx.id, delta=-len(ids))
        _note(states, idx, state)
        return np.array(ids, dtype=np.int64)

    def load_codes(self, name: str) -> tuple[np.ndarray, np.ndarray, IndexRow]:
        """(ids (n,) int64, codes (n, bits/8) uint8, the index's row), ordered by id, from one snapshot."""
        with self._read() as conn:
            idx = self._index_row(conn, name)
            q = select(S.items.c.id, S.items.c.code).where(S.items.c.index_id == idx.id).order_by(S.items.c.id)
            rows = conn.execute(q).all()
        ids, codes = codes_array(rows, idx.bits, f"database {safe_url(self.url)}")
        return ids, codes, idx

    def put_signatures(self, name: str, ids: np.ndarray, signatures: np.ndarray, signer: str) -> None:
        """Store (or replace) the verification signatures (n, s) of items ids (n,), made by the
        verifier named signer, in one transaction; ids no longer in the index (removed meanwhile)
        are left out. Signatures another verifier made are dropped first: two ways of signing are
        never compared. Codes are not touched, so the index's state (what derived structures
        prove) stays as it is."""
        flat = np.ascontiguousarray(signatures).view(np.uint8).reshape(len(ids), -1)
        with self._write() as conn:
            idx = self._lock(conn, name)
            if idx.signer != signer:
                conn.execute(delete(S.signatures).where(S.signatures.c.index_id == idx.id))
                conn.execute(update(S.indexes).where(S.indexes.c.id == idx.id).values(signer=signer))
            present = set()
            for part in _chunks([int(i) for i in ids]):
                q = select(S.items.c.id).where(S.items.c.index_id == idx.id, S.items.c.id.in_(part))
                present.update(conn.execute(q).scalars())
                t = S.signatures
                conn.execute(delete(t).where(t.c.index_id == idx.id, t.c.item_id.in_(part)))
            rows = [(idx.id, int(i), flat[n].tobytes()) for n, i in enumerate(ids) if int(i) in present]
            bulk.insert(conn, S.signatures, rows)

    def load_signatures(self, name: str) -> tuple[np.ndarray, np.ndarray | None, str | None]:
        """(ids (m,) int64 in id order, their signatures' bytes (m, width) uint8 (None: of
        differing widths), the verifier that made them) of the items that have one, read in one
        transaction."""
        with self._read() as conn:
            idx = self._index_row(conn, name)
            t = S.signatures
            count = conn.execute(select(func.count()).select_from(t).where(t.c.index_id == idx.id)).scalar_one()
            q = select(t.c.item_id, t.c.signature).where(t.c.index_id == idx.id).order_by(t.c.item_id)
            rows = conn.execute(q.execution_options(yield_per=10_000))
            ids, flat = stacked_blobs(((r[0], bytes(r[1])) for r in rows), count)
        return ids, flat, idx.signer

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
            c = S.items.c
            columns = (c.id, c.key, c.label, c.source, c.meta, c.snippet)
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
            for part in _chunks([str(k) for k in keys]):
                q = select(S.items.c.key, S.items.c.code)
                q = q.where(S.items.c.index_id == index_id, S.items.c.key.in_(part))
                found.update((key, bytes(value)) for key, value in conn.execute(q))
        return found

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
        meta = S.index_meta
        q = select(S.indexes, meta.c.source_root, meta.c.classes).where(S.indexes.c.name == name)
        q = q.outerjoin(meta, meta.c.index_id == S.indexes.c.id)

        def fetch() -> IndexRow:
            row = conn.execute(q.with_for_update(of=S.indexes) if lock else q).mappings().first()
            if row is None:
                raise IndexNotFound(f"no index named {name!r} in {safe_url(self.url)}")
            return IndexRow(**{k: row.get(k) for k in IndexRow.__dataclass_fields__})

        return checked_row(fetch, f"database {safe_url(self.url)}", name)

    def _bump(self, conn, index_id: int, delta: int, next_item: int | None = None) -> str:
        """Record a change of the index in its row: a fresh state (returned), generation + 1, the
        item count changed by delta, the next item id if given."""
        state = new_token()
        values = {
            "state": state,
            "generation": S.indexes.c.generation + 1,
            "item_count": S.indexes.c.item_count + delta,
            "updated": datetime.now(timezone.utc),
        }
        if next_item is not None:
            values["next_item"] = next_item
        conn.execute(update(S.indexes).where(S.indexes.c.id == index_id).values(**values))
        return state


def _note(states: list | None, before: IndexRow, state: str) -> None:
    """Append a committed write's ((uid, state) before it, (uid, state) it wrote) to states, if given."""
    if states is not None:
        states.append(((before.uid, before.state), (before.uid, state)))


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


IN_CHUNK = 30_000  # values per IN (...): below PostgreSQL's 65,535 bind parameters and SQLite's 32,766


def _chunks(values: list) -> list[list]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


def _key_ids(conn, index_id: int, keys) -> dict[str, int]:
    """{key: item id} of the keys that are in the index, in IN lists of at most IN_CHUNK."""
    found = {}
    for part in _chunks([str(k) for k in keys]):
        q = select(S.items.c.key, S.items.c.id).where(S.items.c.index_id == index_id, S.items.c.key.in_(part))
        found.update(conn.execute(q).all())
    return found
