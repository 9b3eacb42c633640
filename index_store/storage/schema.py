"""The SQL tables as queries name them (SQLAlchemy 2.0 Core). SQL is the source of truth; everything
else is derived. migrations.py makes and changes the tables in a database (its version recorded
there); these Table objects follow its latest version (tests/test_migrations.py checks they agree).

indexes  one row per index: code length, the hasher that made its codes, uid (random, set when the
         index is made, never reused: an index dropped and built again under its name has another),
         state (random, written anew by every committed change: derived structures - the cache on
         disk, an open Index's, a server's - remember the (uid, state) they were built from, and two
         copies of a store changed apart never share one), a generation counter every change bumps
         (it orders one index's changes, for reports), and the next item id (ids are per index,
         handed out under the index row's lock).
items    (index_id, id): external key (unique per index), label, source URI, metadata JSON, and
         the packed code (in the item's own row: one B-tree fewer than a table of codes, measured
         below).
vectors  (index_id, item_id): optional float32 vectors for re-ranking ties.
signatures  (index_id, item_id): each item's verification signature for near-duplicates, as its
         kind's Verifier makes it (none for items stored before m004, or added as bare codes).
index_meta  (index_id): what makes an index portable: the folder its image sources are relative to,
         and the class names its integer labels stand for.

No foreign keys: the store is the one writer, and every write (add, remove, drop) changes all the
tables of an index in one transaction under the index row's lock. PostgreSQL checks a foreign key
row by row: in a COPY of 1M items and codes they took 11.4 of 14.8 s (3.4 s without them, measured
raw with psycopg). SQLite never enforced them (foreign_keys is off).
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
    Column("uid", String(32), unique=True),  # records.new_token(); see the module's docstring
    Column("state", String(32)),
    Column("signer", String(200)),  # the Verifier.name its signatures were made by (m005)
    sqlite_autoincrement=True,
)

items = Table(
    "semhash_items",
    metadata,
    Column("index_id", Integer, primary_key=True, autoincrement=False),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("key", String(500), nullable=False),
    Column("label", BigInteger),
    Column("source", Text),
    Column("meta", JSON),
    # the code in the item's own row, not a table of its own (one B-tree fewer): MNIST's 60,000 items
    # stored in 0.145 -> 0.117 s (raw sqlite3, medians of 9); 1M items 2.68 -> 2.50 s into SQLite
    # (74 -> 63 bytes/item on disk) and 6.8 -> 4.4 s into PostgreSQL (benchmarks/README.md)
    Column("code", LargeBinary, nullable=False),  # bits/8 bytes, FAISS bit order
    Column("snippet", Text),  # m003: the start of a document (texts), shown with its hits; else NULL
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
# each item's near-duplicate verification signature (hashing/signatures/), fixed width per index
signatures = _per_item("semhash_signatures", Column("signature", LargeBinary, nullable=False))


index_meta = Table(
    "semhash_index_meta",
    metadata,
    Column("index_id", Integer, primary_key=True, autoincrement=False),
    Column("source_root", Text),  # absolute folder the items' relative sources were under at build time
    Column("classes", JSON),  # class names, classes[label]
)
