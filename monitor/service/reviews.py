"""The work on stored reviews: list them, read one's history, mark one handled (and update its alerts)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.outbox import DeliveryReport
from models.tables import Review, ReviewVersion, Source
from monitor.config import Config
from monitor.service.alerting import AlertBuilder
from monitor.service.followups import baseline_counts, unanswered
from monitor.service.pipeline import open_sessions, send_due
from monitor.service.work import Actor, NoSuchReview, Outcome, set_status

__all__ = ["NoSuchReview", "ReviewQuery", "baseline_waiting", "draft_reply", "handle", "list_reviews", "review_history"]


@dataclass(frozen=True)
class ReviewQuery:
    """Which stored reviews to list: newest first, or with `unanswered` the ones still waiting, oldest first."""

    negative: bool = False
    seen_within: timedelta | None = None  # first seen within this long
    source: str | None = None
    limit: int = 50
    unanswered: bool = False
    # with `unanswered`: also the older negatives a source's first crawl stored as a silent baseline (never alerted)
    include_baseline: bool = False
    published_within: timedelta | None = None  # published on the site within this long


def list_reviews(config: Config, query: ReviewQuery, *, sessions: sessionmaker[Session] | None = None,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """Reviews as plain records (what `repwatch reviews --format json` prints, one per line)."""
    sessions = sessions or open_sessions(config)
    now = now or datetime.now(UTC)
    statement = select(Review, Source.name).join(Source).order_by(Review.published_at.desc().nulls_last(),
                                                                  Review.id.desc())
    if query.unanswered:
        statement = select(Review, Source.name).join(Source).where(
            unanswered(now, include_baseline=query.include_baseline)).order_by(
            Review.first_seen_at, Review.published_at.asc().nulls_last(), Review.id)
    if query.negative:
        statement = statement.where(Review.sentiment_label == "neg")
    if query.seen_within is not None:
        # The window's rows by their index first, then the order: as a plain condition, SQLite walked the whole
        # published_at index when fewer than --limit rows matched (2 s at a million reviews; bench/bench_scale.py).
        in_window = select(Review.id).where(Review.first_seen_at >= now - query.seen_within)
        if query.negative:
            in_window = in_window.where(Review.sentiment_label == "neg")
        statement = statement.where(Review.id.in_(in_window))
    if query.published_within is not None:
        statement = statement.where(Review.published_at >= now - query.published_within)
    if query.source:
        statement = statement.where(Source.name == query.source)
    with sessions() as session:
        rows = session.execute(statement.limit(query.limit)).all()
    return [
        {
            "id": r.id,
            "source": name,
            "published_at": r.published_at.isoformat() if r.published_at else None,
            "rating": r.rating,
            "label": r.sentiment_label,
            "severity": r.severity,
            "lang": r.sentiment_lang or r.language,
            "author": r.author,
            "title": r.title,
            "body": r.body,
            "why": r.sentiment_why,
            "url": r.url,
            "reply": r.reply_body,
            "status": r.status,
            "app_version": r.app_version,
            "votes": r.votes,
            "assignee": r.assignee,
            "incident": r.incident_id,
            "baseline": r.baseline and r.severity is None,  # stored by the source's first crawl, never alerted
            # The customer has waited since they posted; without a date, since we saw it.
            "waiting_hours": round((now - (r.published_at or r.first_seen_at)).total_seconds() / 3600, 1)
            if query.unanswered else None,
        }
        for r, name in rows
    ]


def baseline_waiting(config: Config, *, source: str | None = None, sessions: sessionmaker[Session] | None = None,
                     now: datetime | None = None) -> int:
    """How many unanswered negatives the silent baseline holds (what `--unanswered` leaves out without
    `--include-baseline`)."""
    sessions = sessions or open_sessions(config)
    with sessions() as session:
        counts = baseline_counts(session, [source] if source else None, now or datetime.now(UTC))
    return sum(c.unanswered for c in counts.values())


@dataclass(frozen=True)
class ReviewHistory:
    url: str
    removed_at: datetime | None
    versions: list[dict[str, Any]]  # oldest first: what the review said on each date it changed


def review_history(config: Config, review_id: int, *, sessions: sessionmaker[Session] | None = None) -> ReviewHistory:
    """What a review said on each date it changed, with the hash of the raw snippet it was read from."""
    sessions = sessions or open_sessions(config)
    with sessions() as session:
        review = session.get(Review, review_id)
        if review is None:
            raise NoSuchReview(f"no review with id {review_id}")
        versions = session.scalars(
            select(ReviewVersion).where(ReviewVersion.review_id == review_id).order_by(ReviewVersion.id)
        ).all()
        return ReviewHistory(review.url, review.removed_at, [
            {"seen_at": v.seen_at.isoformat(), "change": v.change, "rating": v.rating, "title": v.title,
             "body": v.body, "reply": v.reply_body, "snippet_sha256": v.snippet_hash, "content_sha256": v.content_hash}
            for v in versions
        ])


def handle(config: Config, review_id: int, *, note: str | None = None, actor: Actor | None = None,
           sessions: sessionmaker[Session] | None = None) -> tuple[Outcome, DeliveryReport | None]:
    """Mark a review resolved (no reminder after this) and send the updates of its alerts; raises NoSuchReview."""
    sessions = sessions or open_sessions(config)
    outcome = set_status(sessions, review_id, "resolved", actor or Actor.from_cli(), note=note)
    return outcome, send_due(config, sessions) if outcome.updates_queued else None


def draft_reply(config: Config, review_id: int, *, sessions: sessionmaker[Session] | None = None) -> str:
    """The reply to start from: the team's edited draft, else the one generated in the reviewer's language."""
    sessions = sessions or open_sessions(config)
    with sessions() as session:
        alert = AlertBuilder(config).alerts(session, [review_id]).get(review_id)
    if alert is None:
        raise NoSuchReview(f"no review #{review_id} (see `repwatch reviews`)")
    return alert.draft_reply or ""
