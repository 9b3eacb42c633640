"""Schema versions: numbered migrations, each a function applied once, in order, to a database.

A database lists the migrations applied to it in semhash_schema (version, name, applied); its
version is the highest there. This code's version, SCHEMA_VERSION, is the number of MIGRATIONS.

    create or write open  applies the missing ones and records them, in one transaction (all or
                          none), under a lock: SQLite's write lock (BEGIN IMMEDIATE), PostgreSQL's
                          advisory lock, so that concurrent openers take turns and the second finds
                          the work done
    read-only open        never writes: it refuses a store at an older version, in one line
    a newer version       refused by every open: this code cannot know what changed

    m001_initial    the tables: indexes, items (their codes in their rows), vectors, index_meta
    m002_identity   each index's uid (random, never reused) and state (random, new at each write)
    m003_snippets   each item's snippet: the start of a document, shown with its hits (texts)
    m004_signatures each item's verification signature for near-duplicates (a table of its own)
    m005_signer     the name of the verifier that made an index's signatures (hashing/signatures/)

Migrations are plain SQL for SQLite and PostgreSQL, the two databases semhash stores into: a
released migration's text never changes, whatever schema.py (the tables as queries name them)
becomes later, and the standard-library reader (sqlite_reader.py) imports this module without
SQLAlchemy. m002 is a step of its own, though no store was ever made at version 1, so that the path
every later change takes (a store with rows in it, upgraded by its next writer, its existing
indexes given values) runs and is tested from the start.

The next schema change is one function appended to MIGRATIONS, plus schema.py's tables changed to
match; tests/test_migrations.py checks that a migrated database has exactly schema.py's columns.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ...hashing.errors import StoreError, StoreMissing
from .records import new_token

VERSION_TABLE = "semhash_schema"
FIRST_TABLE = "semhash_indexes"  # every store has had it: without VERSION_TABLE, a pre-release one
# PostgreSQL's advisory lock of a migration ("semhash" in ASCII): one key per database, so that the
# stores in its other schemas wait their turn too (a migration takes milliseconds)
LOCK_KEY = 0x73656D68617368

# what differs between the two databases, by name
DIALECTS = {
    "sqlite": {
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",  # a dropped index's id is never handed out again
        "blob": "BLOB",
        "time": "DATETIME",
        # tables clustered by their primary key: (index_id, id) needs no second B-tree; a bulk add
        # of 1M items writes 3 B-trees instead of 6 (benchmarks/README.md)
        "clustered": " WITHOUT ROWID",
        "tables": "SELECT name FROM sqlite_master WHERE type = 'table'",
    },
    "postgresql": {
        "serial": "SERIAL PRIMARY KEY",
        "blob": "BYTEA",
        "time": "TIMESTAMP WITH TIME ZONE",
        "clustered": "",
        "tables": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
    },
}


def m001_initial(conn, sql: dict) -> None:
    """The tables (schema.py says what each column holds). conn: a SQLAlchemy connection in the
    migrating transaction; sql: DIALECTS' entry of its database."""
    for ddl in (
        "CREATE TABLE semhash_indexes (id {serial}, name VARCHAR(200) NOT NULL UNIQUE, bits INTEGER NOT NULL,"
        " hasher_path TEXT, hasher_checksum VARCHAR(64), hasher_header JSON, created {time} NOT NULL,"
        " updated {time} NOT NULL, generation BIGINT NOT NULL, next_item BIGINT NOT NULL,"
        " item_count BIGINT NOT NULL)",
        "CREATE TABLE semhash_items (index_id INTEGER NOT NULL, id BIGINT NOT NULL, key VARCHAR(500) NOT NULL,"
        " label BIGINT, source TEXT, meta JSON, code {blob} NOT NULL, PRIMARY KEY (index_id, id),"
        " CONSTRAINT uq_semhash_items_key UNIQUE (index_id, key)){clustered}",
        "CREATE TABLE semhash_vectors (index_id INTEGER NOT NULL, item_id BIGINT NOT NULL,"
        " vector {blob} NOT NULL, PRIMARY KEY (index_id, item_id)){clustered}",
        "CREATE TABLE semhash_index_meta (index_id INTEGER NOT NULL PRIMARY KEY, source_root TEXT, classes JSON)",
    ):
        conn.exec_driver_sql(ddl.format(**sql))


def m002_identity(conn, sql: dict) -> None:
    """Each index's uid and state, 32 hex digits each (records.new_token: 128 random bits): the uid
    set when the index is made, so that an index dropped and built again under its name is another
    index to every cache; the state written anew by every committed change, so that two copies of a
    store changed apart never claim one state (their generation counts can coincide). Existing
    indexes get their own. (Nullable: SQLite adds no NOT NULL column without a default; a row
    without them is a damaged one, records.checked_row.)"""
    run = conn.exec_driver_sql
    run("ALTER TABLE semhash_indexes ADD COLUMN uid VARCHAR(32)")
    run("ALTER TABLE semhash_indexes ADD COLUMN state VARCHAR(32)")
    for (index_id,) in run("SELECT id FROM semhash_indexes").all():
        # hex digits and an integer of our own: nothing that needs quoting
        run(f"UPDATE semhash_indexes SET uid = '{new_token()}', state = '{new_token()}' WHERE id = {int(index_id)}")
    run("CREATE UNIQUE INDEX uq_semhash_indexes_uid ON semhash_indexes (uid)")


def m003_snippets(conn, sql: dict) -> None:
    """Each item's snippet (hashing/inputs/texts.py: a document's first 300 characters, its
    blanks folded), shown with its hits and exported; NULL for items of other kinds and for items
    stored before it."""
    conn.exec_driver_sql("ALTER TABLE semhash_items ADD COLUMN snippet TEXT")


def m004_signatures(conn, sql: dict) -> None:
    """Each item's verification signature (hashing/signatures/: what decides that two items whose
    codes are near are duplicates), a row per item beside its item row, fixed width per index. Items
    stored before it have none: `semhash index sync` (or a rebuild) adds them."""
    conn.exec_driver_sql(
        "CREATE TABLE semhash_signatures (index_id INTEGER NOT NULL, item_id BIGINT NOT NULL,"
        " signature {blob} NOT NULL, PRIMARY KEY (index_id, item_id)){clustered}".format(**sql)
    )


def m005_signer(conn, sql: dict) -> None:
    """The name of the verifier (hashing/signatures/: Verifier.name) that made an index's
    signatures: a signature made another way (another version's thumbnail or sketch, of the same
    width) is never compared with this one's. Indexes signed before it have none: their signatures
    count as missing until `semhash index sync` (or a rebuild) signs them again."""
    conn.exec_driver_sql("ALTER TABLE semhash_indexes ADD COLUMN signer VARCHAR(200)")


# in order; append, never change a released one
MIGRATIONS = [m001_initial, m002_identity, m003_snippets, m004_signatures, m005_signer]
SCHEMA_VERSION = len(MIGRATIONS)


def stored_version(rows, dialect: str, where: str) -> int | None:
    """The version of the database read through rows(sql) -> list of tuples: None where it holds
    no semhash tables; StoreError for a pre-release store's tables (no version recorded)."""
    tables = {r[0] for r in rows(dialect_sql(dialect, where)["tables"])}
    if VERSION_TABLE not in tables:
        if FIRST_TABLE in tables:
            raise StoreError(
                f"{where} holds the tables of a pre-release semhash, which recorded no schema version: "
                "build its indexes again into a new database"
            )
        return None
    return rows(f"SELECT max(version) FROM {VERSION_TABLE}")[0][0] or 0


def must_upgrade(version: int | None, mode: str, where: str) -> bool:
    """Whether an open in mode ("create", "write" or "read") of a database at version (None: no
    semhash tables) must upgrade it first; StoreMissing or StoreError where it cannot open it."""
    if not version:
        if mode != "create":
            raise StoreMissing(f"{where} holds no semhash tables")
        return True
    _refuse_newer(version, where)
    if version < SCHEMA_VERSION and mode == "read":
        raise StoreError(
            f"{where} has schema version {version}, this semhash reads version {SCHEMA_VERSION}: a command "
            "that writes to it (building, adding, removing, serving) upgrades it"
        )
    return version < SCHEMA_VERSION


def upgrade(conn, where: str, upto: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the database lacks, up to version upto, and record each, in conn's
    transaction (a SQLAlchemy connection: SQLite's holds the write lock; the caller commits);
    returns the version it was at. StoreError for a pre-release or a newer store."""
    name = conn.dialect.name
    sql = dialect_sql(name, where)
    if name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")  # held until commit
    version = stored_version(lambda q: conn.exec_driver_sql(q).all(), name, where) or 0
    _refuse_newer(version, where)  # (since the caller looked, another process may have upgraded it)
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE}"
        " (version INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, applied VARCHAR(40) NOT NULL)"
    )
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for number in range(version + 1, upto + 1):
        migration = MIGRATIONS[number - 1]
        migration(conn, sql)
        conn.exec_driver_sql(
            f"INSERT INTO {VERSION_TABLE} (version, name, applied) VALUES ({number}, '{migration.__name__}', '{now}')"
        )
    return version


def dialect_sql(dialect: str, where: str) -> dict:
    if dialect not in DIALECTS:
        raise StoreError(f"{where}: semhash keeps its indexes in SQLite or PostgreSQL, not {dialect}")
    return DIALECTS[dialect]


def _refuse_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this semhash knows ({SCHEMA_VERSION}): "
            "upgrade semhash to open it"
        )
