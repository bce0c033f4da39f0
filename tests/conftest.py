"""Test-wide fixtures: where the shared real fixtures live, the databases tests run on, and the clock.

Time in tests is given to the code, never patched into it (no time-machine, no monkeypatched datetime). Code that
needs the time takes it: `now=` (a datetime) for a function, a clock (anything with `.now()`) for the scheduler.
Tests take both from the `clock` fixture: pass `clock.now()` or `clock`, and move it with `clock.advance(...)`.
Code that reads the real clock itself (a `repwatch` verb, in this process through tests.cli.run_cli or as a child
process, and a crawl's Scrapy child) is given data dated from the real now instead (tests/e2e/conftest.NOW), and
a wait it would make is skipped by moving the stored time back (tests/e2e/conftest.Setup.pass_time), not by
sleeping. Dates that are only data (a generated page, an expected string) stay constants of their test module.
"""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
POSTGRES_URL_ENV = "REPWATCH_TEST_POSTGRES_URL"
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # where the `clock` fixture starts: a Monday, noon UTC


class ManualClock:
    """A clock that moves only when told: the time for `now=` parameters and for code that takes a clock."""

    def __init__(self, start: datetime = START):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move forward by timedelta(**delta); the new time."""
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock() -> ManualClock:
    """A ManualClock at START."""
    return ManualClock()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures (real pages and labelled reviews); skips where it is absent, as on a user's machine."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real fixtures not present at {SHARED_FIXTURES} (only in the developers' checkout and CI)")
    return SHARED_FIXTURES


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """A migrated-on-demand database URL: a SQLite file in tmp, or a private schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'repwatch.db'}"
        return
    base_url = os.environ.get(POSTGRES_URL_ENV)
    if not base_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set (.ci/run sets it to the local PostgreSQL)")
    from uuid import uuid4

    from sqlalchemy import create_engine, text

    schema = f"test_{uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sessions(database_url):
    """A session factory on a freshly migrated database."""
    from models.db import connect, migrate, session_factory

    engine = connect(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()
