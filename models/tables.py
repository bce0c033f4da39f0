"""The tables: businesses, sources, reviews and their versions, the alert outbox, crawl runs, digests sent, and the
team's work on complaints (people, incidents, the audit trail, actions received from Slack)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Complaints whose topics are not stored yet (scored before 0008): the partial index below, and the score stage's
# query for them (monitor/service/scoring.py fill_topics), spelled the same so that SQLite uses the index.
TOPICS_UNFILLED = "topics IS NULL AND sentiment_label IN ('neg', 'mixed')"
# The team inbox's default view: open complaints (monitor/service/inbox.py spells its query's condition so, the
# lists sorted, for SQLite to see that the partial index ix_review_inbox answers it).
OPEN_COMPLAINTS = "status IN ('assigned', 'new') AND sentiment_label IN ('mixed', 'neg')"
# Full-text search over a review's title, body and author (migration 0008; monitor/service/inbox.py searches).
# PostgreSQL: a GIN index on this expression; a query must spell it the same way (constants inline, not bound) for
# the planner to use the index.
REVIEW_DOCUMENT = ("to_tsvector('simple'::regconfig, coalesce(review.title, '') || ' ' || review.body || ' ' || "
                   "coalesce(review.author, ''))")
# SQLite: an FTS5 table with the text kept in `review` (external content), filled by triggers; these are the
# virtual table and the shadow tables FTS5 makes for it, which the models do not describe.
REVIEW_FTS = "review_fts"
SQLITE_FTS_TABLES = frozenset({REVIEW_FTS, *(f"{REVIEW_FTS}_{part}" for part in ("data", "idx", "docsize", "config"))})


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back tz-aware (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class Business(Base):
    __tablename__ = "business"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    sources: Mapped[list[Source]] = relationship(back_populates="business")


class Source(Base):
    """A page (and its paging) on one site that we crawl for one business."""

    __tablename__ = "source"
    # the digest and other per-business queries start here (bench/bench_scale.py, issue 5)
    __table_args__ = (Index("ix_source_business", "business_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    url: Mapped[str] = mapped_column(Text)
    # ok / blocked / broken / failing / new
    state: Mapped[str] = mapped_column(String(20), default="new")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # set when the first successful crawl (the silent baseline) finished
    baseline_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    business: Mapped[Business] = relationship(back_populates="sources")


class Review(Base):
    __tablename__ = "review"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id", name="uq_review_source_external"),
        Index("ix_review_pending_score", "scored_at"),
        Index("ix_review_published", "published_at"),
        # The time first, the label second: `reviews --negative --since`, spikes and reminders read a range of
        # first_seen_at. With the label first (as before 0005), SQLite without ANALYZE preferred "every negative
        # review" over any per-business plan, so the digest read ~230k rows at a million reviews (5 s).
        Index("ix_review_first_seen_label", "first_seen_at", "sentiment_label"),
        # the digest's replies of the week (PostgreSQL read the whole table for them); only replied reviews
        Index("ix_review_replied", "reply_published_at", sqlite_where=text("reply_published_at IS NOT NULL"),
              postgresql_where=text("reply_published_at IS NOT NULL")),
        # complaints whose topics are not stored yet: the score stage fills them a batch per run; empty after
        Index("ix_review_topics_unfilled", "id", sqlite_where=text(TOPICS_UNFILLED),
              postgresql_where=text(TOPICS_UNFILLED)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[float | None] = mapped_column(Float)
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(16))
    app_version: Mapped[str | None] = mapped_column(String(60))  # app stores: the version it was written on
    votes: Mapped[int | None] = mapped_column(Integer)  # Reddit score, likes, points, thumbs up: when stored or last changed
    reply_body: Mapped[str | None] = mapped_column(Text)
    reply_published_at: Mapped[datetime | None]
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # stored by a source's first crawl: history, alerted only when newer than the baseline window
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)

    # the score stage fills these; scored_at NULL = waiting to be scored
    sentiment_label: Mapped[str | None] = mapped_column(String(12))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_lang: Mapped[str | None] = mapped_column(String(16))
    sentiment_why: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(String(12))
    scored_at: Mapped[datetime | None]
    # new → assigned → replied → resolved, or not_complaint (models.vocab.REVIEW_STATUSES)
    status: Mapped[str] = mapped_column(String(20), default="new")
    # set when a complete crawl of the source no longer found it on the site
    removed_at: Mapped[datetime | None]
    # `repwatch handle`: somebody dealt with it (status "handled"); no reminder after that
    handled_at: Mapped[datetime | None]
    handled_note: Mapped[str | None] = mapped_column(Text)
    # `repwatch label`: the owner's own neg / neu / pos, which wins over the scorer and trains `repwatch train`
    owner_label: Mapped[str | None] = mapped_column(String(12))
    owner_labelled_at: Mapped[datetime | None]
    # the team's work (monitor/service/work.py): who has it, the incident it belongs to, the edited draft reply
    assignee: Mapped[str | None] = mapped_column(String(200))  # a repwatch user's name, or an unmapped Slack name
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id"), index=True)
    status_changed_at: Mapped[datetime | None]
    # the first reply: when the team said it replied, or when the crawl first saw the business's reply on the site
    first_reply_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]  # the reply reminder waits until then
    draft_reply: Mapped[str | None] = mapped_column(Text)  # the team's edit of the generated draft
    # bumped by every action: a form or a Slack message built on an older value is stale (monitor/service/work.py)
    work_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the complaint topics the score stage found in a complaint's text, as `,delivery,refund,` ("" none found;
    # NULL: not a complaint, or scored before 0008 and not filled yet); the inbox filters and counts by them
    topics: Mapped[str | None] = mapped_column(Text)

    source: Mapped[Source] = relationship()
    versions: Mapped[list[ReviewVersion]] = relationship(back_populates="review", order_by="ReviewVersion.id")


class ReviewVersion(Base):
    """Every change of a review as seen on the site: what it said on a date, and the hash of the raw snippet."""

    __tablename__ = "review_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # first / edited / removed / reappeared
    change: Mapped[str] = mapped_column(String(12), default="first", server_default="first")
    content_hash: Mapped[str] = mapped_column(String(64))
    snippet_hash: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[float | None] = mapped_column(Float)
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    reply_body: Mapped[str | None] = mapped_column(Text)

    review: Mapped[Review] = relationship(back_populates="versions")


# The digest's "when" (alerts/digest.py `_when`: published, else first seen) per source: a business's week, its
# chart's weeks and its open negatives are each a range of this index for each of its sources. An expression
# index, so it lives outside the class; the queries must spell the expression the same way to use it.
Index(
    "ix_review_source_when",
    Review.source_id,
    func.coalesce(Review.published_at, Review.first_seen_at),
    Review.sentiment_label,
)
# The inbox's open complaints in the order it shows them, with every column its filters and counts read: the
# default view's page and counts come from this (small) index alone, not from the million-row table.
Index(
    "ix_review_inbox",
    func.coalesce(Review.published_at, Review.first_seen_at), Review.id, Review.source_id, Review.rating,
    Review.sentiment_label, Review.severity, Review.sentiment_lang, Review.language, Review.status, Review.assignee,
    Review.baseline, Review.topics, Review.incident_id,
    sqlite_where=text(OPEN_COMPLAINTS), postgresql_where=text(OPEN_COMPLAINTS),
)
Index("ix_review_version_seen", ReviewVersion.seen_at)  # followups: versions seen in the last 30 days
# `repwatch reviews`: the newest first, undated ones last. PostgreSQL cannot read that order from ix_review_published
# (backwards it gives NULLS FIRST), so it sorted every review for 50 (1 s at a million); SQLite can (NULLs sort
# first there) and has no syntax for this index.
_NEWEST = Index("ix_review_newest", Review.published_at.desc().nulls_last(), Review.id.desc()).ddl_if(dialect="postgresql")
_SEARCH = Index("ix_review_fts", text(REVIEW_DOCUMENT.replace("review.", "")), _table=cast(Table, Review.__table__),
                postgresql_using="gin").ddl_if(dialect="postgresql")
# The same over the open complaints alone: a search of the inbox's default view reads its few matches there
# instead of intersecting every match with ix_review_inbox (180 → 135 ms at a million reviews).
_SEARCH_OPEN = Index("ix_review_fts_open", text(REVIEW_DOCUMENT.replace("review.", "")),
                     _table=cast(Table, Review.__table__), postgresql_using="gin",
                     postgresql_where=text(OPEN_COMPLAINTS)).ddl_if(dialect="postgresql")
# Text-expression indexes Alembic cannot compare (tests/models/test_migrations.py checks them by name).
SEARCH_INDEXES = frozenset({_SEARCH.name, _SEARCH_OPEN.name})
# For schema comparisons (Alembic's ignores ddl_if): indexes that exist only on PostgreSQL.
POSTGRESQL_ONLY_INDEXES = frozenset({_NEWEST.name, *SEARCH_INDEXES})


class Delivery(Base):
    """The outbox: one message for one destination; (destination, dedupe_key) unique makes each exactly-once.

    kind / dedupe_key: `alert` / "alert:<review>", `update` / "update:<review>:<version>", `reminder` /
    "reminder:<review>", `spike` / "spike:<scope>:<hour>", `summary` (flood control) / "summary:<first item>",
    `refresh` (the alert edited in place after the team acted on it) / "refresh:<review>:<work_version>".
    """

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("destination", "dedupe_key", name="uq_delivery_destination_key"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_review", "review_id"),
        # followups: the health messages, recent alerts (reminders) and recent spikes, by kind
        Index("ix_delivery_kind_created", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), default="alert", server_default="alert")
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # None for messages about no single review (spike, flood summary)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("review.id", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(200))
    # the route's choices, fixed when queued: a Slack channel override and who is pinged
    channel: Mapped[str | None] = mapped_column(String(200))
    mention: Mapped[str | None] = mapped_column(String(200))
    # the message this one belongs to: a flood summary (its thread), or the alert an update/reminder answers
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id", ondelete="SET NULL"))
    # what a spike, summary or update says (counts, the change seen), fixed when queued
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # pending / sent / failed (permanent) / dropped (an update or reminder that no longer made sense)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    review: Mapped[Review | None] = relationship()


class CrawlRun(Base):
    __tablename__ = "crawl_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    requests: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[str | None] = mapped_column(String(50))
    # running / ok / failed / blocked / broken
    outcome: Mapped[str] = mapped_column(String(12), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    source: Mapped[Source] = relationship()


class DigestSent(Base):
    """A weekly digest that went out: one row per business and ISO week, so that it goes out once (a retry, a
    second `repwatch digest --send`, a restart) unless sent again on purpose (`--force`)."""

    __tablename__ = "digest_sent"
    __table_args__ = (UniqueConstraint("business", "week", name="uq_digest_sent_business_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business: Mapped[str] = mapped_column(String(200))  # the name in config.yaml (it may never have been crawled)
    week: Mapped[str] = mapped_column(String(10))  # ISO week, 2026-W47
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    recipients: Mapped[str] = mapped_column(Text)  # the addresses the server accepted, comma-separated


class User(Base):
    """A person of the team: owners manage people, members work reviews (`repwatch users`, the web inbox)."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(12))  # owner / member
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2; None = cannot log in to the web inbox
    slack_user_id: Mapped[str | None] = mapped_column(String(40), unique=True)  # `repwatch users link`
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # bumped on a password reset or removal: every session signed before it ends
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Incident(Base):
    """One complaint, however many sites it was posted on: its reviews point here (Review.incident_id)."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    # the post the incident started with: later posts' alerts go into its Slack thread
    # (no foreign key: review and incident would point at each other)
    first_review_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # why the later posts were linked (same author / near-duplicate text, with the similarity)
    reason: Mapped[str | None] = mapped_column(Text)


class ReviewEvent(Base):
    """The audit trail: who did what to a review, when, and from where (cli / web / slack / crawl)."""

    __tablename__ = "review_event"
    __table_args__ = (Index("ix_review_event_review", "review_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # a user's name, an unmapped Slack name, or "repwatch"
    via: Mapped[str] = mapped_column(String(12))  # cli / web / slack / crawl
    # assign / status / note / draft / snooze / label / link
    action: Mapped[str] = mapped_column(String(20))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)  # the new value, or a note's text
    # the action was taken on an older view of the review than the one it changed (a stale form or message)
    stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class ActionReceipt(Base):
    """An action received from outside (a Slack envelope or action id): applied once however often it is retried."""

    __tablename__ = "action_receipt"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
