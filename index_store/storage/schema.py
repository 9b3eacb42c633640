"""The SQL schema (SQLAlchemy 2.0 Core). SQL is the source of truth; everything else is derived.

indexes  one row per index: code length, the hasher that made its codes, a generation counter that
         every committed change bumps (derived structures remember the generation they were built at),
         and the next item id (ids are per index, handed out under the index row's lock).
items    (index_id, id): external key (unique per index), label, source URI, metadata JSON, and
         the packed code. (Stores made before 2026-11-26 keep codes in a table of their own,
         semhash_codes (index_id, item_id, code), and some of those also have columns s0..s7 of
         substring keys there that no search used. Read-only opens read them there; the next
         create- or write-mode open moves them into items.code and drops that table: one B-tree
         fewer per item, measured below.)
vectors  (index_id, item_id): optional float32 vectors for re-ranking ties.
index_meta  (index_id): what makes an index portable: the folder its image sources are relative to,
         and the class names its integer labels stand for. Added after the first release: stores
         without it still open (read: no such facts), and create-mode opens add it.

No foreign keys: the store is the one writer, and every write (add, remove, drop) changes all the
tables of an index in one transaction under the index row's lock. PostgreSQL checks a foreign key
row by row: in a COPY of 1M items and codes they took 11.4 of 14.8 s (3.4 s without them, measured
raw with psycopg). SQLite never enforced them (foreign_keys is off). Stores made with them keep them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
    table,
)

# SQLite: tables clustered by their primary key (WITHOUT ROWID), so the (index_id, id) key needs no
# second B-tree; a bulk add of 1M items writes 3 B-trees instead of 6 (benchmarks/README.md).
CLUSTERED = {"sqlite_with_rowid": False}

metadata = MetaData()

indexes = Table(
    "semhash_indexes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("bits", Integer, nullable=False),
    Column("hasher_path", Text),
    Column("hasher_checksum", String(64)),
    Column("hasher_header", JSON),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("generation", BigInteger, nullable=False, default=0),
    Column("next_item", BigInteger, nullable=False, default=1),
    Column("item_count", BigInteger, nullable=False, default=0),
)

items = Table(
    "semhash_items",
    metadata,
    Column("index_id", Integer, primary_key=True, autoincrement=False),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("key", String(500), nullable=False),
    Column("label", Integer),
    Column("source", Text),
    Column("meta", JSON),
    # the code in the item's own row, not a table of its own (one B-tree fewer): MNIST's 60,000 items
    # stored in 0.145 -> 0.117 s (raw sqlite3, medians of 9); 1M items 2.68 -> 2.50 s into SQLite
    # (74 -> 63 bytes/item on disk) and 6.8 -> 4.4 s into PostgreSQL (benchmarks/README.md)
    Column("code", LargeBinary, nullable=False),  # bits/8 bytes, FAISS bit order
    UniqueConstraint("index_id", "key", name="uq_semhash_items_key"),
    **CLUSTERED,
)


def _per_item(name: str, *columns: Column) -> Table:
    """A table with one row per item, keyed like the item it belongs to."""
    return Table(
        name,
        metadata,
        Column("index_id", Integer, primary_key=True, autoincrement=False),
        Column("item_id", BigInteger, primary_key=True, autoincrement=False),
        *columns,
        **CLUSTERED,
    )


vectors = _per_item("semhash_vectors", Column("vector", LargeBinary, nullable=False))


index_meta = Table(
    "semhash_index_meta",
    metadata,
    Column("index_id", Integer, primary_key=True, autoincrement=False),
    Column("source_root", Text),  # absolute folder the items' relative sources were under at build time
    Column("classes", JSON),  # class names, classes[label]
)
LATER_TABLES = {index_meta.name}  # created by the next create-mode open of an older store
# where stores made before 2026-11-26 keep their codes (see above): described, never created
old_codes = table("semhash_codes", column("index_id"), column("item_id"), column("code"))
