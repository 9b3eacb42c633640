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


class NotImages(DataError):
    """An image given to a model of feature vectors: query it with vectors instead."""


class ArtifactError(SemhashError):
    """A model file is missing, corrupt, foreign or does not match what it is used with."""


class ModelMissing(ArtifactError):
    """An index records no model, or its model file is gone: the caller must name one."""


class ParameterError(SemhashError):
    """A parameter is out of range (bits, radius, k, ...)."""


class StoreError(SemhashError):
    """The database cannot be reached, is locked, or does not hold what was asked for."""


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


def translate(exc: BaseException) -> SemhashError | None:
    """The SemhashError for an exception that reached an entry point, or None for a bug (which
    should surface as one). Database URLs in messages have their passwords hidden."""
    if isinstance(exc, SemhashError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted")
    if isinstance(exc, MemoryError):
        return SemhashError("out of memory: use a smaller batch, limit or input")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return SemhashError(f"{where}{exc.strerror or type(exc).__name__}")
    return _translate_sql(exc)


def _translate_sql(exc: BaseException) -> SemhashError | None:
    import sys

    if "sqlalchemy" not in sys.modules:  # nothing of SQLAlchemy's can have been raised
        return None
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        text = str(getattr(exc, "orig", None) or exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return StoreError(f"database error: {_hide_passwords(first)}")
    return None


def _hide_passwords(text: str) -> str:
    """user:secret@host -> user:***@host, wherever a URL appears in text."""
    import re

    return re.sub(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
