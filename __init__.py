"""semhash: semantic hashing retrieval.

This file is the `semhash` package; its sub-packages are the folders beside it (semhash.hashing,
semhash.index_store, semhash.cli, semhash.benchmarks). The Python API mirrors the CLI, one call per
command, imported on first use (so `import semhash` costs nothing):

    semhash.train("itq", "digits", "digits32.semhash", bits=32)   # semhash train
    semhash.build_index("digits.db", "digits32.semhash", semhash.load_dataset("digits"))
                                                                    # semhash index build (add: adding=True)
    semhash.search("digits.db", items=["digits/train/0"], k=5)     # semhash search
    semhash.Index.open("digits.db").info()                          # semhash index info (verify, remove)
"""

from importlib import import_module

from .hashing import __version__

# public name -> (module, attribute)
_API = {
    "train": ("semhash.hashing.methods", "train_model"),
    "make_hasher": ("semhash.hashing.methods", "make_hasher"),
    "load_hasher": ("semhash.hashing.methods", "load_hasher"),
    "load_dataset": ("semhash.hashing.data", "load_dataset"),
    "build_index": ("semhash.index_store.build", "build_index"),
    "search": ("semhash.index_store.query", "search"),
    "Index": ("semhash.index_store.index", "Index"),
    "create_app": ("semhash.index_store.service", "create_app"),
    "SemhashError": ("semhash.hashing.errors", "SemhashError"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'semhash' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(import_module(module), attribute)
