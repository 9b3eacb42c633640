"""An index: items and codes in SQL, plus search structures derived from them.

    idx = Index.create("items.db", "mnist", bits=32)      # or Index.open(url, name)
    idx.add(keys, codes, labels=labels)                   # batched transactions
    found = idx.search(query_codes, k=10, radius=2)       # {"index", ..., "queries": [{"query", "hits"}]}

The derived structures (hash tables, multi-index tables, FAISS index) are rebuilt from SQL
whenever the on-disk cache is missing, stale or corrupt; `verify()` checks them against SQL. They
are known by the stamp (uid, state) of the SQL they were built from, compared with the index
row's at each use (schema.py says why).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..hashing.errors import (
    ArtifactError,
    IndexNotFound,
    ModelMissing,
    ParameterError,
    StoreError,
    StoreMissing,
    Unavailable,
    first_line,
)
from ..hashing.files import cache_dir as user_cache_dir
from ..hashing.files import file_checksum
from ..hashing.hasher import Hasher
from . import item_rows
from .engine import cache
from .engine.searcher import Results, Searcher, truncate, vector_rerank
from .storage.records import IndexRow, database_url, safe_url, sqlite_file
from .storage.validate import check_items

if TYPE_CHECKING:
    from .storage.store import Store

DEFAULT_BATCH = (
    100_000  # items per transaction of add(): 1M items into SQLite took 10.0 s in 20k batches, 7.8 s in 100k
)
SEARCH_ATTEMPTS = 5  # searches repeated while writers remove the hits before their metadata is read


class Index:
    def __init__(self, store: Store, name: str, cache_folder: str | os.PathLike | None = None, source_root=None):
        """source_root: where the indexed image folder is now, if not where it was at build time."""
        self.store, self.name = store, name
        self.source_root = str(source_root) if source_root else None
        self.row: IndexRow = store.get_index(name)
        self.cache_folder = Path(cache_folder) if cache_folder else default_cache_folder(store, name)
        # (searcher, the stamp of the SQL it was built from): one attribute, so that a reader on
        # another thread never pairs one stamp with another's searcher
        self._current: tuple[Searcher | None, tuple[str, str] | None] = (None, None)
        self._models: dict[str, Hasher] = {}
        self.last_load = ""  # how the derived structures were obtained: "cache", "rebuilt: <why>"

    @classmethod
    def open(cls, target, name: str = "default", mode: str = "write", **kw) -> Index:
        """The index `name` in the store at target (a SQLite path or a database URL), which must
        exist. mode "read" opens it read-only (a SQLite file is never written; searches work)."""
        try:
            store = open_store(target, mode)
        except StoreMissing as exc:
            raise IndexNotFound(f"no index named {name!r}: {exc}") from None
        return cls(store, name, **kw)

    @classmethod
    def create(
        cls, target, name: str, bits: int, hasher_path=None, model=None, source_root=None, classes=None, **kw
    ) -> Index:
        """target: a SQLite path, a database URL, or an open Store. hasher_path: the model file whose
        codes the index holds (model: that file already loaded, so it is not read again).
        source_root: the folder relative sources are under; classes: names of the labels."""
        from .storage.store import Store

        store = target if isinstance(target, Store) else Store(target)
        checksum = header = None
        if hasher_path is not None:
            from ..hashing.artifact import read_header
            from ..hashing.hasher import summary_header

            header = summary_header(read_header(hasher_path))  # the vocabulary of texts stays in the file
            checksum = getattr(model, "checksum_", None) or file_checksum(hasher_path)
        path = str(hasher_path) if hasher_path else None
        store.create_index(name, bits, path, checksum, header, source_root=source_root, classes=classes)
        index = cls(store, name, **kw)
        # empty by construction: its (empty) structures need no read of SQL and no cache file
        empty = Searcher(np.zeros(0, np.int64), np.zeros((0, bits // 8), np.uint8))
        index._current, index.last_load = (empty, index.row.stamp), "created empty"
        if model is not None and getattr(model, "checksum_", None) == checksum:
            index._models[str(hasher_path)] = model  # loaded from that very file: no second read
        return index

    @property
    def bits(self) -> int:
        return self.row.bits

    # --- the model ---
    def model(self, path: str | os.PathLike | None = None, loaded: Hasher | None = None) -> Hasher:
        """The model that encodes items for this index: the file given, else the one the index was
        built with - at its recorded path, or, moved or copied, any .semhash file beside the
        database or in the current folder with the recorded SHA-256. Loaded once per file (loaded:
        that file, already read) and checked: same code length, and the very file the index
        recorded, since another model's codes are not comparable."""
        from ..hashing.methods import load_hasher

        key = str(path or self.row.hasher_path or "")
        if loaded is not None and key not in self._models:
            self._models[key] = self.check_model(loaded, key)
        if key not in self._models:
            if not key:
                raise ModelMissing(f"index {self.name!r} records no model; name the model file")
            found = key if path else self._find_model()
            if found is None:
                raise ModelMissing(f"the model of index {self.name!r} is gone ({key}); name the model file")
            self._models[key] = self.check_model(load_hasher(found), found)
        return self._models[key]

    def _find_model(self) -> str | None:
        """The recorded model file if it is there (checked once loaded), else a file with the
        recorded checksum beside the database or in the current folder, else None."""
        recorded, checksum = self.row.hasher_path, self.row.hasher_checksum
        if os.path.isfile(recorded) or not checksum:
            return recorded if os.path.isfile(recorded) else None
        folders = ([self.store.sqlite_path.parent] if self.store.sqlite_path else []) + [Path.cwd()]
        names = [f / Path(recorded).name for f in folders]  # the same name first: one checksum each
        candidates = names + [p for f in folders for p in sorted(f.glob("*.semhash"))]
        for candidate in dict.fromkeys(candidates):
            if candidate.is_file() and file_checksum(candidate) == checksum:
                return str(candidate)
        return None

    def check_model(self, hasher: Hasher, path) -> Hasher:
        """hasher (loaded from path) must make this index's codes: ArtifactError otherwise."""
        if hasher.bits != self.bits:
            raise ArtifactError(
                f"{path} makes {hasher.bits}-bit codes, index {self.name!r} holds {self.bits}-bit codes"
            )
        if self.row.hasher_checksum and getattr(hasher, "checksum_", None) != self.row.hasher_checksum:
            raise ArtifactError(
                f"{path} is not the model index {self.name!r} was built with "
                f"({self.row.hasher_path}); codes would not be comparable"
            )
        return hasher

    # --- writing ---
    def add(
        self,
        keys,
        codes,
        labels=None,
        sources=None,
        metas=None,
        vectors=None,
        batch_size: int = DEFAULT_BATCH,
        progress=None,
        snippets=None,
    ) -> np.ndarray:
        """Add items in transactions of batch_size; each committed batch stays if a later one fails.
        Items that validate.check_items refuses (DataError) are refused whole, before any batch.
        snippets: a short text each (a document's start; None each for none), shown with hits."""
        items = check_items(keys, codes, self.bits, labels, sources, metas, vectors, snippets)
        keys, codes = items.keys, items.codes
        base = self._snapshot()  # the structures before writing, so that the writes can update them in memory
        ids, ahead, states = [], None, []
        with ThreadPoolExecutor(1) as pool:
            # an add that at least doubles the index (a build) has the new structures built beside
            # all of its SQL; a smaller one only beside its later batches, so that a refused add
            # never costs more than a rebuild of the structures to its own size
            if len(codes) >= len(base[0]):
                ahead = self._build_ahead(pool, base[0], self.row.next_item, codes)
            for start in range(0, len(keys), batch_size):
                sl = slice(start, start + batch_size)
                ids.append(self.store.add_items(self.name, items.part(sl), states=states))
                if ahead is None and len(keys) > batch_size:
                    ahead = self._build_ahead(pool, base[0], int(ids[0][0]), codes)
                if progress:
                    progress(min(start + batch_size, len(keys)))
            new_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            built = ahead[1].result() if ahead and np.array_equal(ahead[0], new_ids) else None
        update = lambda s: (np.concatenate([s.ids, new_ids]), np.concatenate([s.codes, codes]))  # noqa: E731
        self._after_write(update, states, base, built)
        return new_ids

    @staticmethod
    def _build_ahead(pool, before: Searcher, first: int, codes: np.ndarray):
        """(the ids the items get if no one else writes meanwhile, a future of the structures over
        the old items and them): built while SQL stores the items, numpy and SQLite each on a core
        (MNIST's build: 1.03 -> 0.99 s beside the later batches, measured). Used only if those ids
        come true."""
        guess = np.arange(first, first + len(codes), dtype=np.int64)
        ids, all_codes = np.concatenate([before.ids, guess]), np.concatenate([before.codes, codes])
        return guess, pool.submit(Searcher, ids, all_codes)

    def remove(self, keys) -> np.ndarray:
        base, states = self._snapshot(), []
        removed = self.store.remove(self.name, list(keys), states=states)
        self._after_write(lambda s: _without(s, removed), states, base)
        return removed

    def _after_write(self, update, states: list, base: tuple[Searcher, tuple], built=None) -> None:
        """Derive the new structures in memory from base, the (structures, stamp) taken before
        writing (update(old) -> (ids, codes), or built: those made from base already), when each
        of our transactions (states: Store's (stamp before, stamp after), in order) began where the
        one before left off, the first at base's: nobody else wrote in between. Else leave them to
        a rebuild from SQL. (Not from structures another thread installed meanwhile: they may
        hold our items already, measured as one item twice in the chaos test.)"""
        searcher, before = base
        self._read_row()
        if not states:
            return  # nothing written
        if [b for b, _ in states] == [before] + [a for _, a in states[:-1]]:
            new = built if built is not None else Searcher(*update(searcher))
            self._install(new, states[-1][1], "updated in memory")
        elif self._current[1] == before:
            self._current = (None, None)  # stale: the next reader rebuilds (readers hold their own reference)

    # --- derived structures ---
    @property
    def searcher(self) -> Searcher:
        """Current search structures: from memory, else the disk cache, else rebuilt from SQL."""
        return self._snapshot()[0]

    def _snapshot(self) -> tuple[Searcher, tuple[str, str]]:
        """(the current search structures, the stamp of the SQL they were built from), as one pair:
        those in memory while the index row (one read) has their stamp, else the disk cache's if
        built from it, else rebuilt from SQL."""
        row = self._read_row()
        current = self._current  # one read: another thread may install a newer one meanwhile
        if current[0] is not None and current[1] == row.stamp:
            return current
        source = self._source(row.uid)
        loaded, why = cache.load(self.cache_folder, row.state, row.item_count, self.bits, source)
        if loaded is None:
            return self._rebuilt(why)
        loaded.adopt_plans(cache.load_plans(self.cache_folder, row.state, source))
        self._current, self.last_load = (loaded, row.stamp), "cache"
        return loaded, row.stamp

    def _read_row(self) -> IndexRow:
        """The index's row now; another index under this name (dropped, built again) forgets the models."""
        row = self.store.get_index(self.name)
        if row.uid != self.row.uid:
            self._models.clear()
        self.row = row
        return row

    def rebuild(self, reason: str = "asked") -> Searcher:
        """Rebuild every derived structure from SQL and write the cache."""
        return self._rebuilt(reason)[0]

    def _rebuilt(self, reason: str) -> tuple[Searcher, tuple[str, str]]:
        ids, codes, row = self.store.load_codes(self.name)
        searcher = Searcher(ids, codes)
        self._install(searcher, row.stamp, f"rebuilt from SQL ({reason})")
        return searcher, row.stamp

    def _install(self, searcher: Searcher, stamp: tuple[str, str], how: str) -> None:
        """Make searcher, built from SQL at stamp (uid, state), the current structures; cache them."""
        self._current, self.last_load = (searcher, stamp), how
        try:
            cache.save(self.cache_folder, searcher, stamp[1], self._source(stamp[0]))
        except OSError:
            pass  # a read-only cache folder costs a rebuild next time, nothing else

    def _source(self, uid: str) -> dict:
        """Which index the derived structures were built from (uid; database and name for a reader
        of the manifest): the cache refuses structures built from any other."""
        return {"database": safe_url(self.store.url), "index": self.name, "uid": uid}

    # --- search ---
    def search(
        self,
        query_codes,
        k: int | None = 10,
        radius: int | None = None,
        query_vectors: np.ndarray | None = None,
        queries: list[str] | None = None,
    ) -> dict:
        """The hits of query codes (n, bits/8) uint8 as every search answers (CLI JSON, HTTP, semhash.search):
        {"index", "bits", "k", "radius", "queries": [{"query": queries[i] (default: the code in hex),
        "hits": [{id, key, label, class, source, meta, distance}], nearest first}]}, read in one pass.
        radius only: every item within it; k only: the k nearest; both: the k nearest within the radius.
        query_vectors: float vectors to re-rank items at equal Hamming distance (needs stored vectors)."""
        hits = self._hits(query_codes, k, radius, query_vectors)  # the codes checked there
        if queries is None:
            queries = [code.tobytes().hex() for code in np.atleast_2d(np.asarray(query_codes))]
        return {
            "index": self.name,
            "bits": self.bits,
            "k": k,
            "radius": radius,
            "queries": [{"query": q, "hits": h} for q, h in zip(queries, hits)],
        }

    def _hits(self, query_codes, k, radius, query_vectors) -> list[list[dict]]:
        """Per query, the matching items with their distance and metadata (search's "hits")."""
        for _ in range(SEARCH_ATTEMPTS):
            res = self.search_ids(query_codes, k, radius, query_vectors)
            meta = self.items(res.ids, index_id=self.row.id)
            if len(meta) == len(np.unique(res.ids)):
                break
            # an item went from SQL between the search and the metadata read (another writer, another
            # replica): search again on the structures of the newer SQL state
        else:
            raise Unavailable(f"index {self.name!r} changes faster than it can be searched; try again")
        folder = self.sources_folder() if self.row.source_root else None  # once, not a stat per hit
        out = []
        for i in range(len(res)):
            ids, dists = res[i]
            out.append([{**self.describe(meta[int(j)], folder), "distance": int(d)} for j, d in zip(ids, dists)])
        return out

    def items(self, ids, index_id: int | None = None) -> dict[int, dict]:
        """{id: {id, key, label, source, meta}} of the stored items with these ids (those still
        there). index_id: the index row's id, when the caller holds it (one round trip fewer). A row
        a reader cannot decode (metadata that is not JSON) is a StoreError naming the index."""
        try:
            return self.store.items(self.name, ids, index_id=index_id)
        except (ValueError, TypeError) as exc:  # SQLAlchemy's JSON column decodes while fetching
            raise StoreError(f"index {self.name!r} is damaged: an item does not decode ({first_line(exc)})") from None

    def describe(self, item: dict, folder: str | None = None) -> dict:
        """An item's stored row for a reader: its class name when the index knows it, and its source
        resolved against the image folder (folder: sources_folder(), when the caller has it); a
        relative source that leads out of that folder is none (item_rows.py). StoreError naming
        the index for a row of impossible values (a hand-edited database)."""
        label, source = item_rows.checked(item, self.name)
        if item.get("snippet", 0) is None:  # items of kinds without snippets: no such field
            item = {k: v for k, v in item.items() if k != "snippet"}
        classes = self.row.classes
        if classes and label is not None and 0 <= label < len(classes):
            item = {**item, "class": classes[label]}
        if source and item_rows.relative_path(source):
            root = (folder or self.sources_folder()) if self.row.source_root else None
            item = {**item, "source": item_rows.inside(root, source)}
        return item

    def sources_folder(self) -> str:
        """The folder relative sources are under: the one given; else the recorded one while it is
        there; else a folder of its name beside the database (the two copied or moved together)."""
        if self.source_root:
            return self.source_root
        recorded = self.row.source_root
        beside = self.store.sqlite_path.parent / Path(recorded).name if self.store.sqlite_path else None
        return str(beside) if not os.path.isdir(recorded) and beside is not None and beside.is_dir() else recorded

    def search_ids(
        self, query_codes, k: int | None = 10, radius: int | None = None, query_vectors: np.ndarray | None = None
    ) -> Results:
        if k is None and radius is None:
            raise ParameterError("give k, a radius, or both")
        # checked before the structures are loaded, so that a refused query builds nothing
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0):
            raise ParameterError(f"k must be a positive integer, got {k!r}")
        if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, np.integer))):
            raise ParameterError(f"the radius must be an integer, got {radius!r}")
        if radius is not None and not 0 <= radius <= self.bits:
            raise ParameterError(f"radius must be between 0 and the code length {self.bits}, got {radius}")
        s = self.searcher
        rerank = None
        if query_vectors is not None:
            vectors = self.store.load_vectors(self.name, s.ids)
            if vectors is None:
                raise StoreError(f"index {self.name!r} keeps no float vectors to re-rank with")
            rerank = vector_rerank(np.asarray(query_vectors, np.float32), vectors)
        res = s.radius(query_codes, radius, rerank) if radius is not None else s.knn(query_codes, k, rerank)
        current, stamp = self._current  # one read: a writer's thread may install a newer one
        if s.new_plans and s is current:
            cache.save_plans(self.cache_folder, stamp[1], self._source(stamp[0]), s.plans())
        return res if radius is None or k is None else truncate(res, k)

    # --- inspection ---
    def info(self) -> dict:
        s = self.searcher
        nbytes = s.nbytes()
        return {
            "name": self.name,
            "url": self.store.url,
            "bits": self.bits,
            "items": len(s),
            "generation": self.row.generation,
            "updated": self.row.updated.isoformat(),
            "hasher": self.row.hasher_path,
            "source_root": self.sources_folder() if self.row.source_root else None,
            "classes": self.row.classes,
            "multi_index_m": [m for m in s.mih],
            "memory_bytes": nbytes,
            "memory_bytes_per_item": nbytes / max(len(s), 1),
            "cache": str(self.cache_folder),
            "derived": self.last_load,
        }

    def verify(self) -> dict:
        """Check the derived structures against SQL; rebuild them if they differ."""
        ids, codes, row = self.store.load_codes(self.name)
        s = self.searcher
        order = np.argsort(s.ids, kind="stable")
        same = len(ids) == len(s) and (s.ids[order] == ids).all() and (s.codes[order] == codes).all()
        if not same:
            self.rebuild("differed from SQL")
        return {
            "items": len(ids),
            "generation": row.generation,
            "derived_matched_sql": bool(same),
            "derived": self.last_load,
        }


def open_store(target, mode: str = "write"):
    """The store at target (a SQLite path or a database URL): a read-only SQLite file through the
    standard library's sqlite3 (sqlite_reader.SqliteReader: no SQLAlchemy to import, for fast
    read-only commands), anything else through store.Store (SQLAlchemy)."""
    url = database_url(target)
    path = sqlite_file(url)
    if mode == "read" and path is not None:
        from .storage.sqlite_reader import SqliteReader

        return SqliteReader(url, path)
    from .storage.store import Store

    return Store(target, mode)


def default_cache_folder(store: Store, name: str) -> Path:
    """Next to a SQLite file (<file>.cache/<name>); for a server URL, in the user cache. A name
    that is not a plain file name gets a digest of itself appended, so that no two names (x/y and
    x_y) share a folder and none leaves the cache (..)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    if safe != name or safe.strip(".") == "":
        safe = f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    if store.sqlite_path is not None:
        return store.sqlite_path.with_name(store.sqlite_path.name + ".cache") / safe
    digest = hashlib.sha256(store.url.encode()).hexdigest()[:16]
    return user_cache_dir() / "indexes" / digest / safe


def _without(searcher: Searcher, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, codes) of the searcher's items less the removed ids."""
    keep = ~np.isin(searcher.ids, removed)
    return searcher.ids[keep], searcher.codes[keep]
