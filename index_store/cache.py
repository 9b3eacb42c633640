"""Derived structures on disk: the search structures and the FAISS index, with a manifest.

Folder layout: search.npz (hash tables, codes, ids), faiss.index (IndexBinaryFlat), manifest.json
(generation and item count of the SQL state they were built from, file checksums). Each file is
written to a temp name and renamed, the manifest last, so a crash leaves either the old complete
set or a set the manifest does not vouch for; either way `load` tells, and the caller rebuilds
from SQL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..hashing.files import atomic_write, atomic_write_text
from .search import Searcher, searcher_arrays, searcher_from_arrays

CACHE_FORMAT = 2  # 2: open-addressing hash tables


def save(folder: Path, searcher: Searcher, generation: int, updated: str = "") -> None:
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # the old files stop being vouched for first
    sums = {}

    def written(name, write):
        # checksum our own temp file, not whatever is at the name later: another process may be
        # saving a different generation into the same folder, and the manifest must not vouch for it
        def fill(tmp):
            write(tmp)
            sums[name] = _checksum(Path(tmp))

        atomic_write(folder / name, fill)

    written("search.npz", lambda tmp: np.savez(tmp, **searcher_arrays(searcher)))
    written("faiss.index", lambda tmp: faiss.write_index_binary(searcher.faiss_index, tmp))
    manifest = {
        "format": CACHE_FORMAT,
        "generation": generation,
        "items": len(searcher),
        "bits": searcher.bits,
        "sql_updated": updated,
        "checksums": sums,
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1))


def load(folder: Path, generation: int, items: int, bits: int) -> tuple[Searcher | None, str]:
    """(searcher, "ok") when the cache matches the SQL state exactly, else (None, why not)."""
    import faiss

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        return None, "no cache"
    except (OSError, ValueError):
        return None, "unreadable manifest"
    expected = {"format": CACHE_FORMAT, "generation": generation, "items": items, "bits": bits}
    if any(manifest.get(k) != v for k, v in expected.items()):
        return None, "stale (SQL changed since it was built)"
    for name, digest in manifest.get("checksums", {}).items():
        if not (folder / name).is_file() or _checksum(folder / name) != digest:
            return None, f"{name} missing or corrupt"
    try:
        with np.load(folder / "search.npz", allow_pickle=False) as z:
            searcher = searcher_from_arrays({k: z[k] for k in z.files})
        searcher._faiss = faiss.read_index_binary(str(folder / "faiss.index"))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    if len(searcher) != items or searcher._faiss.ntotal != items:
        return None, "item count differs"
    return searcher, "ok"


def _checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
