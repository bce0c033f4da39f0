"""Richer outbox and handled reviews: delivery.kind/dedupe_key/channel/mention/parent_id/payload, review.handled_*.

The outbox now carries updates, reminders, spike alerts and flood summaries besides per-review alerts, so its
exactly-once key becomes (destination, dedupe_key); existing rows get "alert:<review_id>".

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review") as batch_op:
        batch_op.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handled_note", sa.Text(), nullable=True))
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=12), nullable=False, server_default="alert"))
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("mention", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    op.execute("UPDATE delivery SET dedupe_key = 'alert:' || CAST(review_id AS VARCHAR(20))")
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.alter_column("dedupe_key", existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column("review_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint("uq_delivery_review_destination", type_="unique")
        batch_op.create_unique_constraint("uq_delivery_destination_key", ["destination", "dedupe_key"])
        batch_op.create_index("ix_delivery_review", ["review_id"])
        batch_op.create_foreign_key(
            "fk_delivery_parent_id_delivery", "delivery", ["parent_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    op.execute("DELETE FROM delivery WHERE kind != 'alert'")
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_constraint("fk_delivery_parent_id_delivery", type_="foreignkey")
        batch_op.drop_index("ix_delivery_review")
        batch_op.drop_constraint("uq_delivery_destination_key", type_="unique")
        batch_op.create_unique_constraint("uq_delivery_review_destination", ["review_id", "destination"])
        batch_op.alter_column("review_id", existing_type=sa.Integer(), nullable=False)
        for column in ("payload", "parent_id", "mention", "channel", "dedupe_key", "kind"):
            batch_op.drop_column(column)
    with op.batch_alter_table("review") as batch_op:
        batch_op.drop_column("handled_note")
        batch_op.drop_column("handled_at")
