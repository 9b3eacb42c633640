"""Errors a user can act on, and the one translation every entry point goes through.

Each class says what went wrong in words that name no CLI flag or HTTP field: the CLI adds its flag
names (cli/main.py), the HTTP service its status code (`http_status`). `translate(exc)` turns the
foreign exceptions that reach an entry point (a full disk, a database driver's error, a corrupt
file) into one of these, with a one-line message and no secrets in it.
"""

from __future__ import annotations


class SemhashError(Exception):
    """Base class: the message is complete, one line, and meant for the user."""

    http_status = 400


class DataError(SemhashError):
    """A data set, image or vector is missing, corrupt, or of the wrong shape."""


class DataMissing(DataError):
    """A named data set's files are not under the data root (and could not be downloaded)."""


class NotImages(DataError):
    """An image given to a model of feature vectors: query it with vectors instead."""


class ArtifactError(SemhashError):
    """A model file is missing, corrupt, foreign or does not match what it is used with."""


class ModelMissing(ArtifactError):
    """An index records no model, or its model file is gone: the caller must name one."""


class ParameterError(SemhashError):
    """A parameter is out of range (bits, radius, k, ...)."""


class NoQuery(ParameterError):
    """A search was given no query, or several kinds at once."""


class NoInput(ParameterError):
    """Codes were asked for no input, or for several kinds at once."""


class CheckpointMismatch(ParameterError):
    """A training checkpoint written by another configuration: it cannot be continued."""


class OutputExists(ParameterError):
    """A file to write is there already: it is kept unless the caller asks to replace it."""


class StoreError(SemhashError):
    """The database cannot be reached, is locked, or does not hold what was asked for."""


class StoreMissing(StoreError):
    """A database that is not there, or holds no semhash tables, where one was expected."""


class NeedsResume(StoreError):
    """A build into an index that already holds items: resume it, or build another index."""


class NotFound(SemhashError):
    """An index or an item that is not there."""

    http_status = 404


class IndexNotFound(NotFound, StoreError):
    """No index of that name in the store."""


class ItemNotFound(NotFound, StoreError):
    """No item with that key in the index."""


class Interrupted(SemhashError):
    """The user interrupted the work (Ctrl-C); committed batches stay."""


class Unavailable(SemhashError):
    """The machine or a service it depends on failed (disk, memory, a database that went away): not
    the request's fault, worth trying again."""

    http_status = 503


class NeedsExtra(SemhashError):
    """A command needs a dependency of an extra that is not installed."""

    http_status = 501


# optional modules -> the extra that installs them (pyproject.toml's [project.optional-dependencies])
EXTRAS = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "starlette": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "psycopg": "postgres",
    "matplotlib": "bench",
    "aiohttp": "bench",
    "usearch": "bench",
    "pyarrow": "parquet",
    "torch": "train",
    "torchvision": "train",
}
# how to install an extra where `pip install 'semhash[extra]'` alone is not the best way
INSTALL = {
    # PyPI's Linux torch brings CUDA (~6 GB): the CPU build comes from PyTorch's own index
    "train": "pip install torch --index-url https://download.pytorch.org/whl/cpu, then pip install 'semhash[train]'",
}


def missing_extra(exc: BaseException) -> NeedsExtra | None:
    """NeedsExtra for an ImportError of an optional module (saying which extra brings it), else None."""
    name = getattr(exc, "name", None) or ""
    extra = EXTRAS.get(name.split(".")[0]) if isinstance(exc, ImportError) else None
    if extra is None:
        return None
    how = INSTALL.get(extra, f"pip install 'semhash[{extra}]'")
    return NeedsExtra(f"this needs {name}, which semhash's {extra!r} extra installs: {how}")


class SkippedItems(UserWarning):
    """Some items of an input could not be read (corrupt or foreign files) and were left out; the
    message counts and names them. `strict` turns the first into an error instead."""


class CodesCollapsed(UserWarning):
    """A trained hasher gives few distinct codes, or leaves bits constant: its codes cannot tell
    items apart. A warning, not an error: the model is saved, and the summary says so."""


def translate(exc: BaseException) -> SemhashError | None:
    """The SemhashError for an exception that reached an entry point, or None for a bug (which
    should surface as one). Database URLs in messages have their passwords hidden."""
    if isinstance(exc, SemhashError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted")
    if isinstance(exc, (OSError, MemoryError)):
        return Unavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ImportError):
        return missing_extra(exc)
    import sys

    if "sqlalchemy" in sys.modules:  # else nothing of SQLAlchemy's can have been raised
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            return sql_error(exc, "database", Unavailable)
    return None


def sql_error(exc: BaseException, where: str, cls: type[SemhashError] = StoreError) -> SemhashError:
    """One line for a database driver's error: a lock held by another writer, else the driver's
    first line. where: the database, its URL's password already hidden."""
    text = first_line(exc)
    if "locked" in text or "could not obtain lock" in text:
        return cls(f"{where} is locked by another writer; try again when it has finished")
    return cls(f"{where}: {hide_passwords(text)}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (of the driver's own exception when it wraps one)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hide_passwords(text: str) -> str:
    """user:secret@host -> user:***@host, wherever a URL appears in text. A password holding an
    unescaped @ is hidden up to the URL's last @ (hiding too much beats showing part of it)."""
    import re

    return re.sub(r"(\w[\w+.-]*://[^:/@\s]*:)\S*@", r"\1***@", text)
