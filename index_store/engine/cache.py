"""Derived structures on disk: the search structures, with a manifest.

Folder layout: search.npz (hash tables, codes, ids), manifest.json (the state and item count of
the SQL they were built from, which index - its uid - of which database, file checksums); plans.json
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
from .planner import KnnPlan, Plans
from .searcher import Searcher

FILES = ("search.npz",)  # the files a manifest vouches for, by checksum
# 2: open-addressing hash tables; 3: SHA-256 file checksums; 4: the source index; 5: no faiss.index
# file: FAISS's flat index is refilled from the codes in memory when a scan first needs it (a copy of
# n x bits/8 bytes, as fast as reading the file, and it spares read-only commands importing FAISS);
# 6: k-NN plans of the compiled rounds (knn_tables.py; format 5's were timed on numpy's); 7: the
# SQL's state token and the index's uid (schema.py) in place of its generation, row id and creation
# time, which an index built again under its name, or a copy of the store changed apart, could share
CACHE_FORMAT = 7


def save(folder: Path, searcher: Searcher, state: str, source: dict) -> None:
    """Write the structures built from `source` (index_source(): which index of which database) at
    this SQL state (the index row's state token)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # the old files stop being vouched for first
    (folder / "faiss.index").unlink(missing_ok=True)  # written by cache formats before 5
    sums = {}

    def written(name, write):
        # checksum our own temp file, not whatever is at the name later: another process may be
        # saving a different state into the same folder, and the manifest must not vouch for it
        def fill(tmp):
            write(tmp)
            sums[name] = file_checksum(tmp)

        atomic_write(folder / name, fill)

    written(FILES[0], lambda tmp: np.savez(tmp, **searcher.to_arrays()))
    manifest = {
        "format": CACHE_FORMAT,
        "state": state,
        "items": len(searcher),
        "bits": searcher.bits,
        "source": source,
        "checksums": sums,
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1))


def load(folder: Path, state: str, items: int, bits: int, source: dict) -> tuple[Searcher | None, str]:
    """(searcher, "ok") when the cache was built from this very index (source) at this SQL state
    (state, items), else (None, why not)."""
    manifest, why = _read_manifest(folder)
    if manifest is None:
        return None, why
    if manifest.get("source") != source:
        return None, "built from another index or database"
    expected = {"format": CACHE_FORMAT, "state": state, "items": items, "bits": bits}
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


def save_plans(folder: Path, state: str, source: dict, plans: Plans) -> None:
    """Keep what the planner measured for the structures of this SQL state (plans.json). Not
    vouched for by the manifest: a plan decides how fast, never what a search answers."""
    record = {"format": CACHE_FORMAT, "state": state, "source": source, "plans": plans_to_json(plans)}
    try:
        atomic_write_text(folder / "plans.json", json.dumps(record))
    except OSError:
        pass  # a read-only folder: the next process measures again


def load_plans(folder: Path, state: str, source: dict) -> Plans:
    """The plans saved for this SQL state of this index, else none (Plans())."""
    try:
        record = json.loads((folder / "plans.json").read_text())
    except (OSError, ValueError):
        return Plans()
    same = isinstance(record, dict) and record.get("format") == CACHE_FORMAT and record.get("state") == state
    if not same or record.get("source") != source:
        return Plans()
    return plans_from_json(record.get("plans"))


def plans_to_json(plans: Plans) -> dict:
    """{"radius": {"r": {"how:m": [fixed s, per-query s]}}, "knn": {"k": {start, stop, clock, work}}}."""
    return {
        "radius": {str(r): {f"{h}:{m}": list(v) for (h, m), v in c.items()} for r, c in plans.radius.items()},
        "knn": {
            str(k): {**vars(p), "clock": p.clock and {n: list(v) for n, v in p.clock.items()}}
            for k, p in plans.knn.items()
        },
    }


def plans_from_json(record) -> Plans:
    """Inverse of plans_to_json; a malformed record is left out whole (Plans()): each plan is
    measured again when missing."""
    try:
        radius = {int(r): _clock(c) for r, c in record["radius"].items()}
        knn = {int(k): _knn_plan(p) for k, p in record["knn"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return Plans()
    return Plans(radius, knn)


def _clock(record: dict) -> dict:
    """A radius clock from its JSON: {"how:m": [fixed s, per-query s]} -> {(how, m): (fixed, per query)}."""
    clock = {}
    for name, (fixed, per_query) in record.items():
        how, m = name.split(":")
        clock[how, int(m)] = (float(fixed), float(per_query))
    if not clock:
        raise ValueError("an empty clock")
    return clock


def _knn_plan(record: dict) -> KnnPlan:
    """A KnnPlan from its JSON; ValueError unless it is one."""
    start, stop, clock = record["start"], record["stop"], record["clock"]
    if start is not None and not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop):
        raise ValueError("bad substring radii")
    if clock is not None:
        clock = {name: (float(a), float(b)) for name, (a, b) in clock.items()}
        if set(clock) != {"mih", "scan"}:
            raise ValueError("bad clock")
    return KnnPlan(start, stop, clock, float(record["work"]))
