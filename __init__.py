"""semhash: semantic hashing retrieval.

This file is the `semhash` package; its sub-packages are the folders beside it (semhash.hashing,
semhash.index_store, semhash.cli, semhash.benchmarks). The Python API mirrors the CLI, one call per
command, imported on first use (so `import semhash` costs nothing):

    semhash.train("itq", "digits", "digits32.semhash", bits=32)   # semhash train
    semhash.build_index("digits.db", "digits32.semhash", semhash.load_dataset("digits"))
                                                                    # semhash index build (add: adding=True)
    semhash.search("digits.db", items=["digits/train/0"], k=5)     # semhash search
    semhash.encode("digits32.semhash", dataset="digits", limit=3)   # semhash encode
    semhash.sync_index("photos.db", "photos/")                      # semhash index sync
    semhash.find_duplicates("digits.db", threshold=0.9)            # semhash dedup (also semhash.dedup)
    semhash.list_indexes("digits.db")                               # semhash index list (export_index, drop_index)
    semhash.Index.open("digits.db").info()                          # semhash index info (verify, remove)
"""

from importlib import import_module

# public name -> (module, attribute)
_API = {
    "train": ("semhash.hashing.methods", "train_model"),
    "make_hasher": ("semhash.hashing.methods", "make_hasher"),
    "load_hasher": ("semhash.hashing.methods", "load_hasher"),
    "load_dataset": ("semhash.hashing.data", "load_dataset"),
    "build_index": ("semhash.index_store.build", "build_index"),
    "sync_index": ("semhash.index_store.sync", "sync_index"),
    "search": ("semhash.index_store.query", "search"),
    "encode": ("semhash.index_store.query", "encode"),
    "dedup": ("semhash.index_store.duplicates", "find_duplicates"),
    "find_duplicates": ("semhash.index_store.duplicates", "find_duplicates"),
    "list_indexes": ("semhash.index_store.catalog", "list_indexes"),
    "drop_index": ("semhash.index_store.catalog", "drop_index"),
    "export_index": ("semhash.index_store.export", "export_index"),
    "Index": ("semhash.index_store.index", "Index"),
    "create_app": ("semhash.index_store.http.service", "create_app"),
    "SemhashError": ("semhash.hashing.errors", "SemhashError"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name == "__version__":
        from . import hashing

        return hashing.__version__
    if name not in _API:
        raise AttributeError(f"module 'semhash' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted(__all__)
