"""How the store's SQLite connections wait for each other: WAL, a busy timeout, BEGIN IMMEDIATE.

WAL lets readers and one writer work at once. A write begins with BEGIN IMMEDIATE, so a second
writer waits for the lock up front instead of failing half-way through. WAL is turned on by the
first write, not on opening: a command refused before it writes leaves the file as it was, to the
byte. (A command that ends leaves the file in rollback-journal mode where it can, Store.checkpoint,
so the next writer turns WAL on again.)
"""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from .records import lock_timeout_s

BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another's lock, unless SEMHASH_LOCK_TIMEOUT says


def setup(engine: Engine, writable: bool = True) -> None:
    """Give every connection of engine the busy timeout, and every transaction its BEGIN: IMMEDIATE
    for writes (execution option semhash_write), deferred for reads. A read-only store changes no
    setting of the file."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
        if writable:
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get("semhash_write"):
            wal_on(conn.connection.driver_connection)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def wal_on(raw: sqlite3.Connection) -> None:
    """Turn WAL on (a no-op once on; it persists in the file), waiting as long as the busy timeout
    for other connections. SQLite refuses the switch at once, without calling its busy handler, while
    another connection holds the write lock of a rollback-journal file: two servers that start on
    such a file and write at once would otherwise see "database is locked" on their first writes.
    raw: the driver's connection, outside any transaction, so nothing is held between tries. Raises
    SQLAlchemy's OperationalError, as a statement through the engine would."""
    deadline = time.monotonic() + busy_timeout_ms() / 1000
    pause = 0.001
    while True:
        try:
            raw.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise OperationalError("PRAGMA journal_mode=WAL", None, exc) from None
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def busy_timeout_ms() -> int:
    """How long a writer waits for another's lock: SEMHASH_LOCK_TIMEOUT seconds, else BUSY_TIMEOUT_MS."""
    return round(lock_timeout_s(BUSY_TIMEOUT_MS / 1000) * 1000)
