"""What app stores and social sites add to a review: review.app_version (the app's version it was written on) and
review.votes (Reddit score, likes, Hacker News points, Google Play thumbs up), as last seen.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("review", sa.Column("app_version", sa.String(length=60), nullable=True))
    op.add_column("review", sa.Column("votes", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+): a batch's table copy would lose the expression index, the partial inbox
    # index and the search triggers of review.
    op.execute("ALTER TABLE review DROP COLUMN votes")
    op.execute("ALTER TABLE review DROP COLUMN app_version")
