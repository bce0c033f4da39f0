"""Indexes for a million reviews: per business and per source by the digest's date, replies, recent versions, outbox.

Measured with bench/bench_scale.py (1,000 sources, 1,000,000 reviews): the digest read every negative review (the
label-first index lured SQLite away from a per-business plan), and each crawl's follow-ups scanned the outbox and
the version history; `repwatch reviews` sorted every review on PostgreSQL. `ix_review_label_first_seen` (label,
first_seen_at) becomes (first_seen_at, label).

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_source_business", "source", ["business_id"], unique=False)
    op.drop_index("ix_review_label_first_seen", table_name="review")
    op.create_index("ix_review_first_seen_label", "review", ["first_seen_at", "sentiment_label"], unique=False)
    op.create_index(
        "ix_review_source_when",
        "review",
        ["source_id", sa.text("coalesce(published_at, first_seen_at)"), "sentiment_label"],
        unique=False,
    )
    replied = sa.text("reply_published_at IS NOT NULL")
    op.create_index("ix_review_replied", "review", ["reply_published_at"], unique=False, sqlite_where=replied,
                    postgresql_where=replied)
    op.create_index("ix_review_version_seen", "review_version", ["seen_at"], unique=False)
    op.create_index("ix_delivery_kind_created", "delivery", ["kind", "created_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":  # SQLite reads this order from ix_review_published already
        op.create_index("ix_review_newest", "review", [sa.text("published_at DESC NULLS LAST"), sa.text("id DESC")],
                        unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_review_newest", table_name="review")
    op.drop_index("ix_delivery_kind_created", table_name="delivery")
    op.drop_index("ix_review_version_seen", table_name="review_version")
    op.drop_index("ix_review_replied", table_name="review")
    op.drop_index("ix_review_source_when", table_name="review")
    op.drop_index("ix_review_first_seen_label", table_name="review")
    op.create_index("ix_review_label_first_seen", "review", ["sentiment_label", "first_seen_at"], unique=False)
    op.drop_index("ix_source_business", table_name="source")
