"""The team inbox: full-text search over reviews, and each complaint's topics stored (filter and count by topic).

Search: on SQLite an FTS5 table over review title, body and author (external content: the text stays in `review`
only), kept in step by triggers; on PostgreSQL a GIN index on the same text's `to_tsvector('simple', …)`.
monitor/service/inbox.py searches both through one interface; models/tables.py names them (REVIEW_FTS_*).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# As models/tables.py spells them then (a migration keeps its own copy: the models move on).
TOPICS_UNFILLED = "topics IS NULL AND sentiment_label IN ('neg', 'mixed')"
POSTGRESQL_DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || body || ' ' || coalesce(author, ''))"
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE review_fts USING fts5(title, body, author, content='review', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO review_fts(review_fts) VALUES ('rebuild')",
    "CREATE TRIGGER review_fts_insert AFTER INSERT ON review BEGIN "
    "INSERT INTO review_fts(rowid, title, body, author) VALUES (new.id, new.title, new.body, new.author); END",
    "CREATE TRIGGER review_fts_delete AFTER DELETE ON review BEGIN "
    "INSERT INTO review_fts(review_fts, rowid, title, body, author) "
    "VALUES ('delete', old.id, old.title, old.body, old.author); END",
    # only when the text changes: the score stage's and the team's updates leave the index alone
    "CREATE TRIGGER review_fts_update AFTER UPDATE OF title, body, author ON review BEGIN "
    "INSERT INTO review_fts(review_fts, rowid, title, body, author) "
    "VALUES ('delete', old.id, old.title, old.body, old.author); "
    "INSERT INTO review_fts(rowid, title, body, author) VALUES (new.id, new.title, new.body, new.author); END",
]


def upgrade() -> None:
    # Filled by the score stage (monitor/service/scoring.py), which also fills the complaints scored before this
    # revision, a batch per run.
    op.add_column("review", sa.Column("topics", sa.Text(), nullable=True))
    op.create_index("ix_review_topics_unfilled", "review", ["id"], sqlite_where=sa.text(TOPICS_UNFILLED),
                    postgresql_where=sa.text(TOPICS_UNFILLED))
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(f"CREATE INDEX ix_review_fts ON review USING gin ({POSTGRESQL_DOCUMENT})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("review_fts_insert", "review_fts_delete", "review_fts_update"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE review_fts")
    else:
        op.drop_index("ix_review_fts", table_name="review")
    op.drop_index("ix_review_topics_unfilled", table_name="review")
    # not a batch (a table copy on SQLite would lose the expression index ix_review_source_when)
    op.execute("ALTER TABLE review DROP COLUMN topics")
