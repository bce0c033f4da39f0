"""Owner labels: review.owner_label (neg / neu / pos from `repwatch label`) and review.owner_labelled_at.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review") as batch_op:
        batch_op.add_column(sa.Column("owner_label", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("owner_labelled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review") as batch_op:
        batch_op.drop_column("owner_labelled_at")
        batch_op.drop_column("owner_label")
