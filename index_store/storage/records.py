"""Where a store is and what it hands back, without SQLAlchemy: the read path that avoids it
(sqlite_reader.py) and the SQLAlchemy Store (store.py) share these, so both name a database and
describe an index the same way."""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np

from ...hashing.errors import StoreError, hide_passwords


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
    uid: str  # new_token(), set when the index is made: never the same for two indexes
    state: str  # new_token(), written by every committed change: what derived structures are checked against
    next_item: int = 1  # the id the next item added gets
    source_root: str | None = None  # image folders: the folder relative sources are under
    classes: list[str] | None = None  # names of the integer labels, classes[label]
    signer: str | None = None  # the verifier its signatures were made by (hashing/signatures/)

    @property
    def stamp(self) -> tuple[str, str]:
        """(uid, state): what structures derived from this SQL state are known by (schema.py)."""
        return self.uid, self.state


def database_url(target: str | os.PathLike) -> str:
    """A path means SQLite at that path; anything with '://' is a SQLAlchemy URL. The path is
    %-escaped, so that a '?' or '%' in it stays part of the file's name (SQLAlchemy decodes it)."""
    target = str(target)
    if "://" in target:
        _check_authority(target)
        return target
    return f"sqlite:///{quote(str(Path(target).expanduser().resolve()), safe='/')}"


# A URL's parts as SQLAlchemy's make_url reads them (sqlalchemy/engine/url.py), up to the port.
_AUTHORITY = re.compile(r"[\w+]+://(?:[^:/]*(?::[^@]*)?@)?(?:\[[^/?]+\]|(?P<host>[^/:?]+))?(?::(?P<port>[^/?]*))?")


def _check_authority(url: str) -> None:
    """StoreError (one line, the password hidden) for what SQLAlchemy would misread: a port that
    is no number up to 65535 (a bare ValueError, or 70000 handed to the driver), or an unescaped @
    in the password (the rest of it taken for the host name, which the driver's error then shows)."""
    found = _AUTHORITY.match(url)
    host, port = (found.group("host"), found.group("port")) if found else (None, None)
    if host and "@" in host:
        raise StoreError(f"bad database URL {safe_url(url)}: write an @ in the user name or password as %40")
    if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise StoreError(f"bad database URL {safe_url(url)}: the port {port!r:.20} is not a number up to 65535")


def sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL (sqlite:///path, no driver, no query), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = unquote(url[len(prefix) :])
    return Path(path) if path and path != ":memory:" else None


def safe_url(url: str) -> str:
    """The URL with any password hidden."""
    return hide_passwords(url)


def checked_row(make, where: str, name: str) -> IndexRow:
    """make() -> the IndexRow of index `name`, read and checked: a row whose fields do not parse or
    make no sense (a damaged or hand-edited database) is a StoreError, not a traceback later."""
    try:
        row = make()
        sane = isinstance(row.bits, int) and 8 <= row.bits <= 4096 and row.bits % 8 == 0
        sane = sane and all(isinstance(v, int) and v >= 0 for v in (row.generation, row.item_count))
        sane = sane and isinstance(row.next_item, int) and row.next_item >= 1
        sane = sane and isinstance(row.created, datetime) and isinstance(row.updated, datetime)
        sane = sane and all(isinstance(v, str) and len(v) == 32 for v in (row.uid, row.state))
        if not sane:
            raise ValueError("impossible values")
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"{where}: index {name!r} is damaged ({type(exc).__name__}: {exc})") from None
    return row


def new_token() -> str:
    """128 random bits as 32 hex digits: an index's uid, or a state of it (schema.py)."""
    return secrets.token_hex(16)


def codes_array(rows: list, bits: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids (n,) int64, codes (n, bits/8) uint8) from (item_id, code bytes) rows; StoreError when a
    code has another length than the index's."""
    width = bits // 8
    if any(not isinstance(r[1], (bytes, memoryview)) or len(r[1]) != width for r in rows):
        raise StoreError(f"{where}: a stored code is not {bits} bits long: the database is damaged")
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    codes = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(len(rows), width)
    return ids, codes.copy()


def stacked_blobs(rows, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(ids (m,) int64, bytes (m, width) uint8, or None when the blobs differ in width) of up to
    `count` (item_id, blob) rows, written into one array as they are read: the rows are never
    held as a list beside it (1M signatures of 1.5 KB: 1.5 GB, not 3 GB at the peak)."""
    ids, flat = np.zeros(count, np.int64), None
    m = 0
    for m, (item_id, blob) in enumerate(rows, start=1):
        if flat is None:
            flat = np.empty((count, len(blob)), np.uint8)
        if m > count or len(blob) != flat.shape[1]:
            return ids[:0], None
        ids[m - 1] = item_id
        flat[m - 1] = np.frombuffer(blob, np.uint8)
    return ids[:m], (None if flat is None else flat[:m])


def lock_timeout_s(default: float = 10.0) -> float:
    """How long a connection waits for another's lock: SEMHASH_LOCK_TIMEOUT seconds if set (tests
    shorten it), else default."""
    try:
        return max(0.0, float(os.environ["SEMHASH_LOCK_TIMEOUT"]))
    except (KeyError, ValueError):
        return default


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection. A WAL database in a folder we cannot write needs its shared-memory
    file; where that cannot be made, the file is read as immutable."""
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=lock_timeout_s(), isolation_level=None)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise  # a writer holds it: never read around its lock (immutable would read stale pages)
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False, isolation_level=None)
    return conn
