"""Derived structures on disk: the search structures, with a manifest.

Folder layout: search.npz (hash tables, codes, ids), manifest.json (generation and item count of
the SQL state they were built from, which index of which database, file checksums); plans.json
beside them, the planner's measurements for that state (a plan decides speed, never an answer). Each file is
written to a temp name and renamed, the manifest last, so a crash leaves either the old complete
set or a set the manifest does not vouch for; either way `load` tells, and the caller rebuilds
from SQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...hashing.files import atomic_write, atomic_write_text, file_checksum
from .searcher import Searcher

FILES = ("search.npz",)  # the files a manifest vouches for, by checksum
# 2: open-addressing hash tables; 3: SHA-256 file checksums; 4: the source index; 5: no faiss.index
# file: FAISS's flat index is refilled from the codes in memory when a scan first needs it (a copy of
# n x bits/8 bytes, as fast as reading the file, and it spares read-only commands importing FAISS);
# 6: k-NN plans of the compiled rounds (knn_tables.py; format 5's were timed on numpy's)
CACHE_FORMAT = 6


def save(folder: Path, searcher: Searcher, generation: int, source: dict) -> None:
    """Write the structures built from `source` (index_source(): which index of which database) at
    this SQL generation."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # the old files stop being vouched for first
    (folder / "faiss.index").unlink(missing_ok=True)  # written by cache formats before 5
    sums = {}

    def written(name, write):
        # checksum our own temp file, not whatever is at the name later: another process may be
        # saving a different generation into the same folder, and the manifest must not vouch for it
        def fill(tmp):
            write(tmp)
            sums[name] = file_checksum(tmp)

        atomic_write(folder / name, fill)

    written(FILES[0], lambda tmp: np.savez(tmp, **searcher.to_arrays()))
    manifest = {
        "format": CACHE_FORMAT,
        "generation": generation,
        "items": len(searcher),
        "bits": searcher.bits,
        "source": source,
        "checksums": sums,
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1))


def load(folder: Path, generation: int, items: int, bits: int, source: dict) -> tuple[Searcher | None, str]:
    """(searcher, "ok") when the cache was built from this very index (source) at this SQL state
    (generation, items), else (None, why not)."""
    manifest, why = _read_manifest(folder)
    if manifest is None:
        return None, why
    if manifest.get("source") != source:
        return None, "built from another index or database"
    expected = {"format": CACHE_FORMAT, "generation": generation, "items": items, "bits": bits}
    if any(manifest.get(k) != v for k, v in expected.items()):
        return None, "stale (SQL changed since it was built)"
    for name, digest in manifest["checksums"].items():
        if not (folder / name).is_file() or file_checksum(folder / name) != digest:
            return None, f"{name} missing or corrupt"
    try:
        with np.load(folder / FILES[0], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        searcher = Searcher.from_arrays(arrays)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    if len(searcher) != items:
        return None, "item count differs"
    return searcher, "ok"


def _read_manifest(folder: Path) -> tuple[dict | None, str]:
    """(the manifest, "") or (None, why not): absent, unreadable, or not the shape save() writes."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        return None, "no cache"
    except (OSError, ValueError):
        return None, "unreadable manifest"
    sums = manifest.get("checksums") if isinstance(manifest, dict) else None
    if not isinstance(sums, dict) or set(sums) != set(FILES) or not all(isinstance(v, str) for v in sums.values()):
        return None, "unreadable manifest"  # it must vouch for exactly the files save() writes
    return manifest, ""


def save_plans(folder: Path, generation: int, source: dict, plans: dict) -> None:
    """Keep what the planner measured for the structures of this generation (plans.json). Not
    vouched for by the manifest: a plan decides how fast, never what a search answers."""
    record = {"format": CACHE_FORMAT, "generation": generation, "source": source, "plans": plans}
    try:
        atomic_write_text(folder / "plans.json", json.dumps(record))
    except OSError:
        pass  # a read-only folder: the next process measures again


def load_plans(folder: Path, generation: int, source: dict) -> dict:
    """The plans saved for this generation of this index, else {}."""
    try:
        record = json.loads((folder / "plans.json").read_text())
    except (OSError, ValueError):
        return {}
    same = isinstance(record, dict) and record.get("format") == CACHE_FORMAT and record.get("generation") == generation
    if not same or record.get("source") != source or not isinstance(record.get("plans"), dict):
        return {}
    return record["plans"]
