"""Where a store is and what it hands back, without SQLAlchemy: the read path that avoids it
(sqlite_reader.py) and the SQLAlchemy Store (store.py) share these, so both name a database and
describe an index the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..hashing.errors import hide_passwords


@dataclass(frozen=True)
class IndexRow:
    id: int
    name: str
    bits: int
    generation: int
    item_count: int
    hasher_path: str | None
    hasher_checksum: str | None
    hasher_header: dict | None
    created: datetime
    updated: datetime
    source_root: str | None = None  # image folders: the folder relative sources are under
    classes: list[str] | None = None  # names of the integer labels, classes[label]


def database_url(target: str | os.PathLike) -> str:
    """A path means SQLite at that path; anything with '://' is a SQLAlchemy URL."""
    target = str(target)
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser().resolve()}"


def sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL (sqlite:///path, no driver, no query), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    return Path(path) if path and path != ":memory:" else None


def safe_url(url: str) -> str:
    """The URL with any password hidden."""
    return hide_passwords(url)
