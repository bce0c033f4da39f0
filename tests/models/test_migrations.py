"""Migrations: a fresh database upgrades to head, the model matches the migrated schema, upgrades are idempotent."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from models.db import HEAD_REVISION, MIGRATIONS, connect, migrate, schema_revision
from models.tables import POSTGRESQL_ONLY_INDEXES, SQLITE_FTS_TABLES, Base

# SQLAlchemy cannot reflect SQLite's expression indexes, so Alembic skips ix_review_source_when there (with these
# warnings); the tests below look for it by name instead.
EXPRESSION_INDEX_WARNINGS = [
    "ignore:Skipped unsupported reflection of expression-based index",
    "ignore:autogenerate skipping metadata-specified expression-based index",
]
SCALE_INDEXES = {"ix_source_business", "ix_review_first_seen_label", "ix_review_source_when", "ix_review_replied",
                 "ix_review_version_seen", "ix_delivery_kind_created"}


NOW = "2026-11-20 10:00:00+00:00"


def _alembic(engine, direction: str, revision: str) -> None:
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)


def upgrade_to(engine, revision: str) -> None:
    _alembic(engine, "upgrade", revision)


def downgrade_to(engine, revision: str) -> None:
    _alembic(engine, "downgrade", revision)


def seed_review(connection, **columns: str) -> None:
    """Business 1, source 1 and review 7 as an older release wrote them (raw SQL: the models are head's)."""
    connection.execute(text(f"INSERT INTO business (id, name, created_at) VALUES (1, 'Acme', '{NOW}')"))
    connection.execute(text(
        "INSERT INTO source (id, business_id, name, kind, url, state, consecutive_failures, created_at) "
        f"VALUES (1, 1, 's', 'trustpilot', 'https://x.example/', 'ok', 0, '{NOW}')"
    ))
    names = "".join(f", {name}" for name in columns)
    values = "".join(f", '{value}'" for value in columns.values())
    connection.execute(text(
        f"INSERT INTO review (id, source_id, external_id, url, body, content_hash, first_seen_at, last_seen_at, "
        f"baseline, status{names}) VALUES (7, 1, 'r7', 'https://x.example/7', 'bad', 'h', '{NOW}', '{NOW}', false, "
        f"'new'{values})"
    ))


def index_names(engine) -> set[str]:
    """Every index of our tables, expression indexes included (which the inspector skips on SQLite)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        return {name for (name,) in connection.execute(text(query))}


def test_head_revision_constant_is_alembics_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


@pytest.mark.filterwarnings(*EXPRESSION_INDEX_WARNINGS)
def test_a_fresh_database_is_migrated_to_head_and_matches_the_models(database_url):
    engine = connect(database_url)
    assert schema_revision(engine) is None
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    assert schema_revision(engine) == HEAD_REVISION
    postgresql = engine.dialect.name == "postgresql"

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "index" and name == "ix_review_fts":  # a text expression Alembic cannot compare: see below
            return False
        return postgresql or not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES)

    def include_name(name, type_, parent_names) -> bool:
        # SQLite's full-text search: the FTS5 virtual table and its shadow tables, which no model describes
        return not (type_ == "table" and name in SQLITE_FTS_TABLES)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include,
                                                               "include_name": include_name})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert SCALE_INDEXES <= index_names(engine)
    assert ("ix_review_newest" in index_names(engine)) == postgresql
    assert search_machinery(engine) == ({"ix_review_fts"} if postgresql else
                                        {"review_fts", "review_fts_insert", "review_fts_delete", "review_fts_update"})
    engine.dispose()


def search_machinery(engine) -> set[str]:
    """The full-text search's objects: the FTS5 table and its triggers (SQLite), the GIN index (PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        query = ("SELECT name FROM sqlite_master WHERE (type = 'table' AND name = 'review_fts') "
                 "OR (type = 'trigger' AND name LIKE 'review_fts%')")
    else:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'ix_review_fts'"
    with engine.connect() as connection:
        return {name for (name,) in connection.execute(text(query))}


def test_upgrading_from_0007_makes_the_stored_reviews_searchable_and_back(database_url):
    """0008: the reviews already stored are in the search index; edits and deletions keep it in step; down again."""
    from monitor.service.inbox import _search

    engine = connect(database_url)
    upgrade_to(engine, "0007")
    with engine.begin() as connection:
        seed_review(connection, title="Cold croissants", author="Zoe")
    migrate(engine)
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from models.tables import Review

    def found(words: str) -> list[int]:
        with Session(engine) as session:
            return list(session.scalars(select(Review.id).where(_search(session, words))))

    assert found("croissants") == found("bad zoe") == [7] and found("warm") == []
    with engine.begin() as connection:
        connection.execute(text("UPDATE review SET body = 'warm and late' WHERE id = 7"))
    assert found("warm late") == [7] and found("bad") == []
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM review WHERE id = 7"))
    assert found("warm") == []
    downgrade_to(engine, "0007")
    assert search_machinery(engine) == set()
    engine.dispose()


def test_upgrading_from_0004_adds_the_scale_indexes_and_keeps_the_reviews(database_url):
    """0005 swaps the label-first index for a time-first one and adds the per-business/per-source ones; back too."""
    engine = connect(database_url)
    upgrade_to(engine, "0004")
    with engine.begin() as connection:
        seed_review(connection, sentiment_label="neg")
    assert "ix_review_label_first_seen" in index_names(engine)
    migrate(engine)
    assert schema_revision(engine) == HEAD_REVISION
    names = index_names(engine)
    assert SCALE_INDEXES <= names
    assert "ix_review_label_first_seen" not in names
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM review WHERE sentiment_label = 'neg'")).scalar() == 1
    downgrade_to(engine, "0004")
    names = index_names(engine)
    assert "ix_review_label_first_seen" in names
    assert not (SCALE_INDEXES | POSTGRESQL_ONLY_INDEXES) & names
    engine.dispose()


def test_upgrading_from_0002_keeps_queued_alerts_exactly_once(database_url):
    """An outbox written by the previous release survives the new exactly-once key, and still refuses a repeat."""
    from sqlalchemy.exc import IntegrityError

    engine = connect(database_url)
    upgrade_to(engine, "0002")
    with engine.begin() as connection:
        seed_review(connection)
        connection.execute(text(
            "INSERT INTO delivery (review_id, destination, status, attempts, next_attempt_at, created_at) "
            f"VALUES (7, 'slack', 'pending', 0, '{NOW}', '{NOW}')"
        ))
    migrate(engine)
    with engine.begin() as connection:
        row = connection.execute(text("SELECT kind, dedupe_key, review_id, status FROM delivery")).one()
        assert tuple(row) == ("alert", "alert:7", 7, "pending")
    with engine.connect() as connection:
        try:
            connection.execute(text(
                "INSERT INTO delivery (kind, dedupe_key, review_id, destination, status, attempts, next_attempt_at, "
                f"created_at) VALUES ('alert', 'alert:7', 7, 'slack', 'pending', 0, '{NOW}', '{NOW}')"
            ))
        except IntegrityError:
            pass
        else:
            raise AssertionError("a second alert for the same review and destination was accepted")
    engine.dispose()


def test_processes_starting_together_on_a_new_database_migrate_it_once(database_url):
    """A daemon's first cycle or several workers: every process that finds no schema migrates; none may fail."""
    import subprocess
    import sys

    code = f"from models.db import connect, migrate; migrate(connect({database_url!r}))"
    starts = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [process.communicate(timeout=120)[1] for process in starts]
    assert [process.returncode for process in starts] == [0, 0, 0], errors
    assert schema_revision(connect(database_url)) == HEAD_REVISION
