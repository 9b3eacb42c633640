"""The indexes of a store, as a whole: listing them and dropping one.

list_indexes("items.db")            # [{"name", "bits", "items", "generation", "updated", "model"}]
drop_index("items.db", "mnist")     # {"dropped": "mnist", "items": 60000}
"""

from __future__ import annotations

import shutil

from ..hashing.errors import IndexNotFound
from .index import Index, open_store


def list_indexes(target) -> list[dict]:
    """Every index in the store at target: name, bits, items, generation, updated, model.
    StoreMissing for a path that holds no store (a mistyped name lists nothing silently). An index
    dropped while the list is read is left out."""
    store = open_store(target, "read")
    listed = []
    for name in store.index_names():
        try:
            r = store.get_index(name)
        except IndexNotFound:
            continue
        listed.append(
            {
                "name": r.name,
                "bits": r.bits,
                "items": r.item_count,
                "generation": r.generation,
                "updated": r.updated.isoformat(),
                "model": r.hasher_path,
            }
        )
    return listed


def drop_index(target, name: str) -> dict:
    """Delete index `name` (its items and codes) from the store, and its derived structures."""
    index = Index.open(target, name)
    items = index.row.item_count
    index.store.drop_index(name)
    shutil.rmtree(index.cache_folder, ignore_errors=True)
    return {"dropped": name, "items": items}
