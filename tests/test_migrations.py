"""Schema versions (index_store/storage/migrations.py): a store records the migrations applied to
it; the next writer brings an older store up to date in one transaction, read-only opens never
write and refuse a store of another version, and a newer store is refused by every open."""

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from semhash.hashing.errors import StoreError, StoreMissing
from semhash.index_store.index import Index
from semhash.index_store.storage import migrations, schema
from semhash.index_store.storage.migrations import MIGRATIONS, SCHEMA_VERSION
from semhash.index_store.storage.records import database_url
from semhash.index_store.storage.sqlite_reader import COLUMNS, SqliteReader
from semhash.index_store.storage.store import Store


def run_sql(target, *statements, upto: int | None = None) -> list:
    """Run statements on the database at target (outside semhash's Store), after migrating an
    empty one up to version upto if given; returns the last statement's rows."""
    engine = create_engine(database_url(target))
    try:
        with engine.begin() as conn:
            if upto is not None:
                migrations.upgrade(conn, "test", upto=upto)
            results = [conn.exec_driver_sql(s) for s in statements]
            return results[-1].all() if results and results[-1].returns_rows else []
    finally:
        engine.dispose()


def snapshot(target):
    """The file's bytes (SQLite), else the version rows and the index rows (PostgreSQL)."""
    if "://" not in target:
        return open(target, "rb").read()
    return run_sql(target, "SELECT * FROM semhash_schema ORDER BY version"), run_sql(
        target, "SELECT * FROM semhash_indexes ORDER BY id"
    )


def test_a_new_store_records_every_migration_and_has_the_columns_schema_py_names(own_schema):
    Store(own_schema)
    recorded = run_sql(own_schema, "SELECT version, name FROM semhash_schema ORDER BY version")
    assert recorded == [(i + 1, m.__name__) for i, m in enumerate(MIGRATIONS)]
    engine = create_engine(database_url(own_schema))
    try:
        tables = inspect(engine)
        for table in schema.metadata.sorted_tables:
            assert [c["name"] for c in tables.get_columns(table.name)] == [c.name for c in table.columns]
    finally:
        engine.dispose()
    for name, columns in COLUMNS.items():  # what the standard-library reader selects
        assert columns == [c.name for c in schema.metadata.tables[name].columns]


def older_store(target, version: int) -> None:
    """A store at `version`, made by the first migrations alone, holding index "old" with three
    items, written in version 1's columns (later migrations give them what they add)."""
    now = datetime.now(timezone.utc)
    engine = create_engine(database_url(target))
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn, "test", upto=1)
            index = {"name": "old", "bits": 16, "created": now, "updated": now, "generation": 1}
            made = conn.execute(schema.indexes.insert().values(**index, next_item=4, item_count=3))
            index_id = made.inserted_primary_key[0]
            rows = [{"index_id": index_id, "id": i, "key": k, "code": bytes([i, 0])} for i, k in enumerate("abc", 1)]
            conn.execute(schema.items.insert(), rows)
            migrations.upgrade(conn, "test", upto=version)
    finally:
        engine.dispose()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_an_older_store_is_refused_by_readers_and_upgraded_by_its_next_writer(own_schema, version):
    older_store(own_schema, version)
    before = snapshot(own_schema)
    readers = [lambda: Store(own_schema, "read"), lambda: Index.open(own_schema, "old", mode="read")]
    if "://" not in own_schema:
        readers.append(lambda: SqliteReader(database_url(own_schema), Path(own_schema)))
    for read in readers:
        with pytest.raises(StoreError, match=f"schema version {version}, this semhash reads version {SCHEMA_VERSION}"):
            read()
    assert snapshot(own_schema) == before  # read-only opens never write

    writer = Index.open(own_schema, "old")  # a write-mode open upgrades it
    assert len(writer.row.uid) == len(writer.row.state) == 32
    hits = writer.search(np.array([[1, 0]], np.uint8), k=2)["queries"][0]["hits"]
    assert [(h["key"], h["distance"]) for h in hits] == [("a", 0), ("c", 1)]
    writer.add(["d"], np.array([[4, 0]], np.uint8))
    reader = Index.open(own_schema, "old", mode="read")
    assert reader.row == writer.store.get_index("old") and len(reader.searcher) == 4
    versions = run_sql(own_schema, "SELECT version FROM semhash_schema ORDER BY version")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_newer_store_is_refused_by_every_open(own_schema):
    store = Index.create(own_schema, "x", bits=16).store
    store.checkpoint()  # SQLite: the file alone holds it, so that its bytes tell whether an open wrote
    store.engine.dispose()
    newer = SCHEMA_VERSION + 1
    run_sql(own_schema, f"INSERT INTO semhash_schema VALUES ({newer}, 'm{newer:03d}_future', '2099-01-01')")
    before = snapshot(own_schema)
    for mode in ("create", "write", "read"):
        with pytest.raises(StoreError, match=f"schema version {newer}, newer than this semhash knows"):
            Store(own_schema, mode)
    with pytest.raises(StoreError, match="newer than this semhash knows"):
        Index.open(own_schema, "x", mode="read")
    assert snapshot(own_schema) == before


def test_a_pre_release_store_without_a_version_is_refused(tmp_path):
    db = tmp_path / "pre.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE semhash_indexes (id INTEGER PRIMARY KEY, name TEXT)")
    for mode in ("create", "write", "read"):
        with pytest.raises(StoreError, match="pre-release semhash, which recorded no schema version"):
            Store(db, mode)
    with pytest.raises(StoreError, match="pre-release"):
        Index.open(db, "x", mode="read")
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["semhash_indexes"]


def test_a_database_without_semhash_tables_is_made_only_by_a_create_mode_open(tmp_path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (x)")
    for mode in ("write", "read"):
        with pytest.raises(StoreMissing, match="holds no semhash tables"):
            Store(db, mode)
    Store(db, "create")
    assert Store(db, "read").index_names() == []


def test_concurrent_first_opens_take_turns(own_schema):
    """Writers opening one empty database at once: one migrates, the others wait for its lock and
    find the work done (on PostgreSQL, without the lock, two would create the same tables)."""
    gate, errors = threading.Barrier(4), []

    def open_it():
        gate.wait()
        try:
            Store(own_schema).engine.dispose()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert run_sql(own_schema, "SELECT count(*) FROM semhash_schema") == [(SCHEMA_VERSION,)]
