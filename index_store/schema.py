"""The SQL schema (SQLAlchemy 2.0 Core). SQL is the source of truth; everything else is derived.

indexes  one row per index: code length, the hasher that made its codes, a generation counter that
         every committed change bumps (derived structures remember the generation they were built at),
         and the next item id (ids are per index, handed out under the index row's lock).
items    (index_id, id): external key (unique per index), label, source URI, metadata JSON.
codes    (index_id, item_id): the packed code, plus integer keys of its 32-bit substrings
         (s0..s7, indexed) so that SQL alone can find candidates by multi-index hashing.
vectors  (index_id, item_id): optional float32 vectors for re-ranking ties.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SQL_SUBSTRINGS = 8  # s0..s7: 32-bit substrings of codes up to 256 bits
SQL_SUBSTRING_BITS = 32

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
    ForeignKeyConstraint(["index_id"], [indexes.c.id], ondelete="CASCADE"),
    UniqueConstraint("index_id", "key", name="uq_semhash_items_key"),
)


def _per_item(name: str, *columns: Column) -> Table:
    """A table with one row per item, keyed and cascaded like the item it belongs to."""
    return Table(
        name,
        metadata,
        Column("index_id", Integer, primary_key=True, autoincrement=False),
        Column("item_id", BigInteger, primary_key=True, autoincrement=False),
        *columns,
        ForeignKeyConstraint(["index_id", "item_id"], [items.c.index_id, items.c.id], ondelete="CASCADE"),
    )


codes = _per_item(
    "semhash_codes",
    Column("code", LargeBinary, nullable=False),
    *[Column(f"s{j}", BigInteger) for j in range(SQL_SUBSTRINGS)],
)
for _j in range(SQL_SUBSTRINGS):  # partial: short codes leave the higher substrings NULL and unindexed
    _col = codes.c[f"s{_j}"]
    Index(
        f"ix_semhash_codes_s{_j}",
        codes.c.index_id,
        _col,
        sqlite_where=_col.isnot(None),
        postgresql_where=_col.isnot(None),
    )

vectors = _per_item("semhash_vectors", Column("vector", LargeBinary, nullable=False))
