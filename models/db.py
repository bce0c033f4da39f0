"""Engines, sessions and schema upgrades: the only place that knows how to open the database."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from models.files import PRIVATE_FILE, private_dir

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (a test keeps it equal to Alembic's head).
HEAD_REVISION = "0009"


class DatabaseRefused(Exception):
    """A database repwatch will not open: its message is the one line the operator reads."""


def connect(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys, PostgreSQL a pre-pinged pool.

    A SQLite file that does not exist is created 0600 in a 0700 folder; one that exists but is empty (0 bytes: a
    truncated file, a failed restore) raises DatabaseRefused, where SQLite would start a new database in it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            _sqlite_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def _sqlite_file(path: Path) -> None:
    """Create the database file if it is missing, never leaving it empty for a moment (a process starting at
    the same time would take it for a truncated one); refuse a file that is empty."""
    try:
        if path.stat().st_size == 0:
            raise DatabaseRefused(f"{path} is empty (0 bytes), not a repwatch database: restore it from a backup, or "
                                  "delete it to start a new one (whose first crawls alert only on recent reviews)")
        return
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    os.close(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE))  # its -wal and -shm take its mode
    try:
        database = sqlite3.connect(draft)
        database.execute("PRAGMA journal_mode=WAL")  # writes the header: no longer an empty file
        database.close()
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process created it first: theirs is as good
    finally:
        draft.unlink(missing_ok=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent; run at every start).

    The common case, a database already at head, is one query: loading Alembic costs ~0.4 s per command.
    """
    revision = schema_revision(engine)
    if revision == HEAD_REVISION:
        return
    _refuse_newer(engine, revision)
    from alembic import command  # only when there is a migration to run (see above)
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        _one_migration_at_a_time(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _refuse_newer(engine: Engine, revision: str | None) -> None:
    """A schema this repwatch has no migration for was written by a newer one: say so, not Alembic's
    "Can't locate revision"."""
    known = {path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py")}
    if revision is None or revision in known:
        return
    where = engine.url.database if engine.dialect.name == "sqlite" else f"{engine.url.host}/{engine.url.database}"
    raise DatabaseRefused(f"this database ({where}) was written by a newer repwatch (schema {revision}; this one "
                          f"knows up to {HEAD_REVISION}): install that version or a later one")


def _one_migration_at_a_time(connection: Connection) -> None:
    """Processes starting together on a new database (a daemon's first cycle, workers on several machines) would
    each create the tables, and all but one fail; here the others wait, then find the schema at head."""
    if connection.dialect.name == "postgresql":  # per schema: installations in other schemas are not held up
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':repwatch:migrate'))"))
    sqlite_write_lock_first(connection)


def sqlite_write_lock_first(connection: Connection) -> None:
    """SQLite: take the database's write lock before this transaction reads (BEGIN IMMEDIATE; busy_timeout waits
    for it). Python's sqlite3 begins a transaction only at the first write, so two processes could both read the
    state before either wrote. A no-op elsewhere, and once this transaction has written (it holds the lock)."""
    driver = connection.connection.driver_connection
    if connection.dialect.name == "sqlite" and driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
