"""The team's work: people (app_user), incidents, the audit trail (review_event), received actions
(action_receipt), and on each review its assignee, incident, edited draft, snooze and first reply.

Statuses become new → assigned → replied → resolved | not_complaint: `handled` (repwatch handle) is now `resolved`,
and a review whose business reply the crawl already saw is `replied`, answered when the reply was published.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("slack_user_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("slack_user_id"),
    )
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("first_review_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_business_id", "incident", ["business_id"])
    op.create_table(
        "review_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("via", sa.String(length=12), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("stale", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["review.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_event_review", "review_event", ["review_id", "id"])
    op.create_table(
        "action_receipt",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    # Plain ADD COLUMNs: a batch (table copy) on SQLite would lose the expression index ix_review_source_when.
    op.add_column("review", sa.Column("assignee", sa.String(length=200), nullable=True))
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a reference only inline, with the column (and reflects no ON DELETE there: none here either)
        op.execute("ALTER TABLE review ADD COLUMN incident_id INTEGER REFERENCES incident (id)")
    else:
        op.add_column("review", sa.Column("incident_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_review_incident_id", "review", "incident", ["incident_id"], ["id"])
    for column in (sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
                   sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
                   sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True),
                   sa.Column("draft_reply", sa.Text(), nullable=True),
                   sa.Column("work_version", sa.Integer(), server_default="0", nullable=False)):
        op.add_column("review", column)
    op.create_index("ix_review_incident_id", "review", ["incident_id"])
    op.execute("UPDATE review SET status = 'resolved', status_changed_at = handled_at WHERE status = 'handled'")
    op.execute("UPDATE review SET status = 'replied' WHERE status IN ('new', 'responded') "
               "AND (reply_body IS NOT NULL OR reply_published_at IS NOT NULL)")
    op.execute("UPDATE review SET first_reply_at = reply_published_at WHERE reply_published_at IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE review SET status = 'handled' WHERE status IN ('resolved', 'not_complaint')")
    op.execute("UPDATE review SET status = 'new' WHERE status IN ('assigned', 'replied')")
    op.drop_index("ix_review_incident_id", table_name="review")
    # The table copy of a batch cannot carry the expression index over: dropped before, made again after.
    op.drop_index("ix_review_source_when", table_name="review")
    with op.batch_alter_table("review") as batch:
        if op.get_bind().dialect.name != "sqlite":
            batch.drop_constraint("fk_review_incident_id", type_="foreignkey")
        for column in ("work_version", "draft_reply", "snoozed_until", "first_reply_at", "status_changed_at",
                       "incident_id", "assignee"):
            batch.drop_column(column)
    op.create_index("ix_review_source_when", "review",
                    ["source_id", sa.text("coalesce(published_at, first_seen_at)"), "sentiment_label"])
    op.drop_table("action_receipt")
    op.drop_index("ix_review_event_review", table_name="review_event")
    op.drop_table("review_event")
    op.drop_index("ix_incident_business_id", table_name="incident")
    op.drop_table("incident")
    op.drop_table("app_user")
