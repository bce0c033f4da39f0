"""Digests sent: digest_sent, one row per business and ISO week, so a digest goes out once (retries, reruns).

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business", sa.String(length=200), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("business", "week", name="uq_digest_sent_business_week"),
    )


def downgrade() -> None:
    op.drop_table("digest_sent")
