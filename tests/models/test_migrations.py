"""Migrations: a fresh database upgrades to head, the model matches the migrated schema, upgrades are idempotent."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from models.db import HEAD_REVISION, MIGRATIONS, connect, migrate, schema_revision
from models.tables import Base


def test_head_revision_constant_is_alembics_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_a_fresh_database_is_migrated_to_head_and_matches_the_models(database_url):
    engine = connect(database_url)
    assert schema_revision(engine) is None
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    assert schema_revision(engine) == HEAD_REVISION
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    engine.dispose()


def test_upgrading_from_0002_keeps_queued_alerts_exactly_once(database_url):
    """An outbox written by the previous release survives the new exactly-once key, and still refuses a repeat."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    engine = connect(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    now = "2026-11-20 10:00:00+00:00"
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO business (id, name, created_at) VALUES (1, 'Acme', '{now}')"))
        connection.execute(text(
            "INSERT INTO source (id, business_id, name, kind, url, state, consecutive_failures, created_at) "
            f"VALUES (1, 1, 's', 'trustpilot', 'https://x.example/', 'ok', 0, '{now}')"
        ))
        connection.execute(text(
            "INSERT INTO review (id, source_id, external_id, url, body, content_hash, first_seen_at, last_seen_at, "
            f"baseline, status) VALUES (7, 1, 'r7', 'https://x.example/7', 'bad', 'h', '{now}', '{now}', false, 'new')"
        ))
        connection.execute(text(
            "INSERT INTO delivery (review_id, destination, status, attempts, next_attempt_at, created_at) "
            f"VALUES (7, 'slack', 'pending', 0, '{now}', '{now}')"
        ))
    migrate(engine)
    with engine.begin() as connection:
        row = connection.execute(text("SELECT kind, dedupe_key, review_id, status FROM delivery")).one()
        assert tuple(row) == ("alert", "alert:7", 7, "pending")
    with engine.connect() as connection:
        try:
            connection.execute(text(
                "INSERT INTO delivery (kind, dedupe_key, review_id, destination, status, attempts, next_attempt_at, "
                f"created_at) VALUES ('alert', 'alert:7', 7, 'slack', 'pending', 0, '{now}', '{now}')"
            ))
        except IntegrityError:
            pass
        else:
            raise AssertionError("a second alert for the same review and destination was accepted")
    engine.dispose()
