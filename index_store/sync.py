"""Keep an index equal to a folder or a file that changes: add what is new, remove what is gone,
re-encode what changed.

    sync_index("photos.db", "photos/")   # {"added": 12, "removed": 3, "changed": 1, "unchanged": 480, ...}

Every item of the source is read and encoded again (a change is a new code, whatever the file's
date says); keys are the source's own (an image folder's: '<folder name>/<path in it>'), so files
of the same name in other folders never collide. Files that cannot be read are left as the index
holds them, and named in one SkippedItems warning.
"""

from __future__ import annotations

import numpy as np

from ..hashing.data import as_dataset, item_keys
from .build import item_rows, store_signatures, take_rows
from .encoding import encode_items, warn_skipped
from .index import Index


def sync_index(target, data, name: str = "default", progress=None, strict: bool = False, **data_options) -> dict:
    """Make index `name` of the store at target hold exactly the items of `data` (a path, or a
    Dataset; data_options as hashing.data.as_dataset takes them), encoded by the index's model.
    Returns {"index", "added", "removed", "changed", "unchanged", "skipped"} counts."""
    index = Index.open(target, name, mode="write")
    hasher = index.model()
    data = as_dataset(data, **data_options, spec=hasher.spec_)
    hasher.spec_.check(data.shape, data.normalization, what=data.name)
    keys = item_keys(data)
    report = progress or (lambda done, total, stage: None)
    signed = []  # every item read is signed again: items stored before signatures were kept get theirs
    codes, read = encode_items(hasher, data, np.arange(len(keys)), 0, len(keys), report, strict, signed)
    if not read.all():
        warn_skipped(data)
    stored = _stored(index)
    unread = {k for k, r in zip(keys, read) if not r}
    fresh = [i for i, k in enumerate(keys) if read[i] and stored.get(k) != codes[i].tobytes()]
    changed = [keys[i] for i in fresh if keys[i] in stored]
    present = set(keys)
    gone = [k for k in stored if k not in present and k not in unread]
    report(0, len(fresh), "storing")
    if gone or changed:
        index.remove(gone + changed)
    if fresh:
        rows = take_rows(item_rows(data, keys, index), np.array(fresh))
        index.add(codes=codes[fresh], **rows, progress=lambda n: report(n, len(fresh), "storing"))
    ids = index.store.ids_of(name, [k for k, r in zip(keys, read) if r])
    store_signatures(index, np.array([ids[k] for k, r in zip(keys, read) if r], np.int64), signed)
    index.store.checkpoint()
    return {
        "index": name,
        "added": len(fresh) - len(changed),
        "removed": len(gone),
        "changed": len(changed),
        "unchanged": int(read.sum()) - len(fresh),
        "skipped": len(unread),
    }


def _stored(index: Index) -> dict[str, bytes]:
    """{key: packed code} of every item the index holds."""
    ids, codes, _ = index.store.load_codes(index.name)
    meta = index.store.items(index.name, ids)
    return {meta[int(i)]["key"]: c.tobytes() for i, c in zip(ids, codes)}
