"""Review removal: review.removed_at and review_version.change (first / edited / removed / reappeared).

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review") as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("review_version") as batch_op:
        batch_op.add_column(sa.Column("change", sa.String(length=12), nullable=False, server_default="first"))


def downgrade() -> None:
    with op.batch_alter_table("review_version") as batch_op:
        batch_op.drop_column("change")
    with op.batch_alter_table("review") as batch_op:
        batch_op.drop_column("removed_at")
