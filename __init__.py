"""semhash: semantic hashing retrieval. This file is the `semhash` package; its sub-packages are the
folders beside it (semhash.hashing, semhash.index_store, semhash.cli, semhash.benchmarks)."""

from .hashing import __version__

__all__ = ["__version__"]
