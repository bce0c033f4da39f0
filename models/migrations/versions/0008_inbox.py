"""The team inbox: each complaint's topics stored (filter and count by topic).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TOPICS_UNFILLED = "topics IS NULL AND sentiment_label IN ('neg', 'mixed')"  # models.tables.TOPICS_UNFILLED then


def upgrade() -> None:
    # Filled by the score stage (monitor/service/scoring.py), which also fills the complaints scored before this
    # revision, a batch per run.
    op.add_column("review", sa.Column("topics", sa.Text(), nullable=True))
    op.create_index("ix_review_topics_unfilled", "review", ["id"], sqlite_where=sa.text(TOPICS_UNFILLED),
                    postgresql_where=sa.text(TOPICS_UNFILLED))


def downgrade() -> None:
    op.drop_index("ix_review_topics_unfilled", table_name="review")
    # not a batch (a table copy on SQLite would lose the expression index ix_review_source_when)
    op.execute("ALTER TABLE review DROP COLUMN topics")
