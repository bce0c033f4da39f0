"""Per-source crawl locks: flock on <data_dir>/locks/<name>.lock, and PostgreSQL advisory locks across machines."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from io import FileIO
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from models.files import PRIVATE_FILE, private_dir

EXIT_LOCKED = 75  # EX_TEMPFAIL: every requested source was being crawled by someone else; try again later

# Names of locks that are not sources; source names start with a letter or digit, so these never collide.
OUTBOX_LOCK = "_outbox"
DAEMON_LOCK = "_run"
DIGEST_LOCK = "_digest"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its holder wrote it (None while the holder has not written yet)."""

    pid: int | None
    started: datetime | None
    host: str | None = None  # another machine's, for a database lock

    def describe(self) -> str:
        pid = str(self.pid) if self.pid is not None else "unknown"
        where = f" on {self.host}" if self.host else ""
        started = f"{self.started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if self.started else "at an unknown time"
        return f"pid {pid}{where}, started {started}"


class LockHeld(Exception):
    """Another process holds the lock."""

    def __init__(self, name: str, holder: Holder):
        self.name = name
        self.holder = holder
        super().__init__(f"{name}: held by {holder.describe()}")


class Lock:
    """A held lock; release() or process exit (even SIGKILL) frees it."""

    def __init__(self, name: str, path: Path, file: FileIO):
        self.name = name
        self.path = path
        self._file: FileIO | None = file

    def release(self) -> None:
        file = self._file
        if file is None:
            return
        self._file = None
        # Empty it first, so a later reader never shows a dead holder's pid for a new holder that has not written yet.
        os.ftruncate(file.fileno(), 0)
        file.close()  # closing the last descriptor drops the flock

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "locks" / f"{name}.lock"


def acquire(data_dir: Path, name: str, *, wait: bool = False) -> Lock:
    """Take the lock `name` under data_dir; raises LockHeld at once when another process has it (unless `wait`)."""
    path = lock_path(data_dir, name)
    private_dir(path.parent)
    # Never O_TRUNC and never unlink: the file is only the flock's handle; its content is a note for the message.
    file = FileIO(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE), "r+")
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        file.close()
        raise LockHeld(name, read_holder(path)) from None
    except BaseException:
        file.close()
        raise
    note = json.dumps({"pid": os.getpid(), "started": datetime.now(UTC).isoformat()}).encode()
    os.ftruncate(file.fileno(), 0)
    os.pwrite(file.fileno(), note + b"\n", 0)
    return Lock(name, path, file)


def read_holder(path: Path) -> Holder:
    try:
        note = json.loads(path.read_text(encoding="utf-8") or "{}")
        return Holder(int(note["pid"]), datetime.fromisoformat(note["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Holder(None, None)


# --- across machines: PostgreSQL session-level advisory locks ------------------------------------------------

_HOLDER_NAME = re.compile(r"^repwatch (\d+)@(.+)$")
# A holder whose machine vanished (power, network) is noticed by the server within about a minute, not hours.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def lock_key(schema: str, name: str) -> int:
    """A stable signed 64-bit advisory lock key for a lock name within one installation's schema."""
    digest = hashlib.blake2b(f"repwatch\0{schema}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def serialize_transaction(session: Any, name: str) -> None:
    """On PostgreSQL, until this transaction ends no other session passes the same point: for read-then-insert
    steps two machines may take at once (two first crawls both creating the business). A no-op elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return
    schema = session.execute(text("SELECT current_schema()")).scalar() or ""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(schema, name)})


class DatabaseLocks:
    """Named locks every machine sharing the PostgreSQL database sees: flock only covers one machine.

    Session-level advisory locks on one dedicated connection, in autocommit (never idle in a transaction): the
    server frees them when the connection ends, which a SIGKILL of the holder does at once. The key is a stable
    64-bit hash of the schema and the name, so installations in separate schemas never collide. On any other
    database every call succeeds and does nothing (SQLite is one machine's file: the flock is enough).
    """

    def __init__(self, database_url: str):
        self._connection: Any = None
        self._held: set[str] = set()
        self._schema = ""
        if make_url(database_url).get_backend_name() != "postgresql":
            return
        self._engine = create_engine(database_url, poolclass=NullPool, connect_args=_KEEPALIVES)
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # Named so a crawl skipped elsewhere can say who holds the source; the server-side keepalives free
        # the locks of a holder whose machine disappeared.
        connection.execute(text("SELECT set_config('application_name', :name, false), "
                                "set_config('tcp_keepalives_idle', '30', false), "
                                "set_config('tcp_keepalives_interval', '10', false), "
                                "set_config('tcp_keepalives_count', '3', false)"),
                           {"name": f"repwatch {os.getpid()}@{socket.gethostname()}"[:63]})
        self._schema = connection.execute(text("SELECT current_schema()")).scalar() or ""
        self._connection = connection

    def key(self, name: str) -> int:
        return lock_key(self._schema, name)

    def acquire(self, name: str, *, wait: bool = False) -> None:
        """Take the lock `name`; raises LockHeld at once when another session has it (unless `wait`)."""
        if self._connection is None or name in self._held:
            return
        if wait:
            self._connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self.key(name)})
        elif not self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key(name)}).scalar():
            raise LockHeld(name, self._holder(name))
        self._held.add(name)

    def release(self, name: str) -> None:
        if self._connection is None or name not in self._held:
            return
        self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key(name)})
        self._held.discard(name)

    def _holder(self, name: str) -> Holder:
        """Who holds it, from the holder's connection name (pid@host) and when that connection began."""
        key = self.key(name) & 0xFFFFFFFFFFFFFFFF
        row = self._connection.execute(text(
            "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = :high AND l.objid::bigint = :low "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ), {"high": key >> 32, "low": key & 0xFFFFFFFF}).first()
        if row is None:
            return Holder(None, None)
        match = _HOLDER_NAME.match(row.application_name or "")
        if match is None:
            return Holder(None, row.backend_start)
        host = match[2] if match[2] != socket.gethostname() else None
        return Holder(int(match[1]), row.backend_start, host)

    def close(self) -> None:
        """Release everything (closing the connection is what frees a session's advisory locks)."""
        if self._connection is None:
            return
        if self._held:
            try:  # at once: the server ends a closed session a moment after the client returns
                self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
            except DBAPIError:
                pass  # the connection is gone, and its locks with it
        self._connection.close()
        self._engine.dispose()
        self._connection = None
        self._held.clear()

    def __enter__(self) -> DatabaseLocks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def database_lock(database_url: str, name: str) -> Iterator[None]:
    """Hold the database-wide lock `name` for a block, waiting for it (a no-op on SQLite)."""
    with DatabaseLocks(database_url) as locks:
        locks.acquire(name, wait=True)
        yield
