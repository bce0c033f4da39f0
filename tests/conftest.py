"""Test-wide fixtures: where the shared real fixtures live, and the databases tests run on."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
POSTGRES_URL_ENV = "REPWATCH_TEST_POSTGRES_URL"


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
