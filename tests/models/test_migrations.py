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
