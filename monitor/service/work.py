"""The team's work on complaints: take, reply, resolve, label, note, snooze, edit the draft; every action audited.

The CLI, the web inbox and the Slack buttons all act through these functions, so a review has one state and one
trail whoever touched it. An action on a review that belongs to an incident (one complaint posted on several sites)
applies to every post of the incident, except notes and drafts, which belong to the post they were written on.
"""
from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.outbox import enqueue, outbox_row
from models.tables import Delivery, Review, ReviewEvent, ReviewVersion, User
from models.vocab import HANDLED_STATUSES, OPEN_STATUSES, REVIEW_STATUSES

__all__ = [
    "Actor", "NoSuchReview", "Outcome", "WorkError", "add_note", "assign", "mark_replies_seen", "review_events",
    "save_draft", "set_status", "snooze",
]

VIAS = ("cli", "web", "slack", "crawl")
MAX_NOTE = 4000  # characters: a note or a draft longer than a page is a paste gone wrong
MAX_DRAFT = 8000
MAX_SNOOZE = timedelta(days=30)
# What a status change says in the alert's thread (the reminder stops for all three).
SETTLED_WORDS = {"replied": "marked replied", "resolved": "marked resolved", "not_complaint": "marked not a complaint"}


class NoSuchReview(LookupError):
    pass


class WorkError(ValueError):
    """An action that cannot be taken as asked (an unknown status or person, an empty note): nothing changed."""


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: recorded with every action in the audit trail."""

    name: str
    via: str  # cli / web / slack / crawl

    @classmethod
    def from_cli(cls, name: str | None = None) -> Actor:
        return cls(name or getpass.getuser() or "cli", "cli")

    def __post_init__(self) -> None:
        if self.via not in VIAS:
            raise WorkError(f"unknown channel {self.via!r}")
        if not self.name.strip():
            raise WorkError("an action needs somebody's name")


@dataclass(frozen=True)
class Outcome:
    """What an action did: the review's state after it, and whether it was taken on a stale view."""

    review_id: int
    status: str
    assignee: str | None
    work_version: int
    changed: bool  # False when the review already was in that state (a double click, a retried request)
    stale: bool  # the action was taken on an older view of the review than the one it changed
    reviews: tuple[int, ...]  # every review it applied to: the incident's posts, or just this one
    # alert-thread updates and in-place refreshes of sent alerts queued (send them with monitor.service.pipeline.send_due)
    updates_queued: int = 0


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str
    via: str
    action: str
    before: str | None
    after: str | None
    stale: bool


def _review(session: Session, review_id: int) -> Review:
    review = session.get(Review, review_id, with_for_update=True)
    if review is None:
        raise NoSuchReview(f"no review #{review_id} (see `repwatch reviews`)")
    return review


def _posts(session: Session, review: Review) -> list[Review]:
    """The review and, when it belongs to an incident, the incident's other posts (locked: two people acting on
    one incident at once end in one state)."""
    if review.incident_id is None:
        return [review]
    others = session.scalars(
        select(Review).where(Review.incident_id == review.incident_id, Review.id != review.id)
        .order_by(Review.id).with_for_update()
    ).all()
    return [review, *others]


def _record(session: Session, review: Review, actor: Actor, action: str, before: str | None, after: str | None,
            now: datetime, *, stale: bool = False) -> None:
    session.add(ReviewEvent(review_id=review.id, at=now, actor=actor.name, via=actor.via, action=action,
                            before=before, after=after, stale=stale))
    review.work_version = (review.work_version or 0) + 1


def _is_stale(review: Review, seen_version: int | None) -> bool:
    return seen_version is not None and seen_version != (review.work_version or 0)


def _outcome(review: Review, posts: Sequence[Review], *, changed: bool, stale: bool, queued: int = 0) -> Outcome:
    return Outcome(review.id, review.status, review.assignee, review.work_version or 0, changed, stale,
                   tuple(p.id for p in posts), queued)


def _known_person(session: Session, name: str) -> str:
    """A repwatch user's name as stored (case-insensitive match), or WorkError."""
    wanted = name.strip()
    users = session.scalars(select(User.name)).all()
    for user in users:
        if user.casefold() == wanted.casefold():
            return user
    known = ", ".join(sorted(users)) or "nobody yet: `repwatch users add NAME`"
    raise WorkError(f"no user {wanted!r} (users: {known})")


def assign(sessions: sessionmaker[Session], review_id: int, actor: Actor, *, to: str | None = None,
           check_user: bool = False, seen_version: int | None = None, now: datetime | None = None) -> Outcome:
    """Give a review (its incident) to somebody: `to` (default: the actor); "" takes it back to nobody.

    With check_user, `to` must be a repwatch user (the CLI and the web inbox); Slack records an unmapped clicker by
    their Slack name. A new review becomes `assigned`; a replied one keeps its status.
    """
    now = now or datetime.now(UTC)
    with sessions.begin() as session:
        review = _review(session, review_id)
        stale = _is_stale(review, seen_version)
        assignee = (to if to is not None else actor.name).strip() or None
        if assignee is not None and check_user:
            assignee = _known_person(session, assignee)
        posts = _posts(session, review)
        changed = False
        for post in posts:
            if post.assignee == assignee:
                continue
            changed = True
            _record(session, post, actor, "assign", post.assignee, assignee, now, stale=stale)
            post.assignee = assignee
            if post.status == "new" and assignee is not None:
                _record(session, post, actor, "status", post.status, "assigned", now, stale=stale)
                post.status, post.status_changed_at = "assigned", now
            elif post.status == "assigned" and assignee is None:
                _record(session, post, actor, "status", post.status, "new", now, stale=stale)
                post.status, post.status_changed_at = "new", now
        queued = _refresh_alerts(session, posts, now) if changed else 0
        session.flush()
        return _outcome(review, posts, changed=changed, stale=stale, queued=queued)


def set_status(sessions: sessionmaker[Session], review_id: int, status: str, actor: Actor, *,
               note: str | None = None, seen_version: int | None = None, now: datetime | None = None) -> Outcome:
    """Move a review (its incident) to `status`; `replied` records the time to first reply; `not_complaint` records
    the owner's label for `repwatch train`; a settled review's alerts say so in their thread."""
    if status not in REVIEW_STATUSES:
        raise WorkError(f"status must be one of {', '.join(REVIEW_STATUSES)}, got {status!r}")
    note = _clean_text(note, MAX_NOTE, "note") if note else None
    now = now or datetime.now(UTC)
    with sessions.begin() as session:
        review = _review(session, review_id)
        stale = _is_stale(review, seen_version)
        posts = _posts(session, review)
        settled: list[Review] = []
        changed = False
        for post in posts:
            if post.status == status:
                continue
            changed = True
            _record(session, post, actor, "status", post.status, status, now, stale=stale)
            post.status, post.status_changed_at = status, now
            if status == "replied" and post.first_reply_at is None:
                post.first_reply_at = now
            if status in HANDLED_STATUSES:
                post.handled_at = now
                settled.append(post)
            if status == "not_complaint":
                label = "pos" if (post.rating or 0) >= 4 else "neu"
                _record(session, post, actor, "label", post.owner_label, label, now, stale=stale)
                post.owner_label, post.owner_labelled_at = label, now
                post.sentiment_label = label
        if note:
            _record(session, review, actor, "note", None, note, now, stale=stale)
            review.handled_note = note
        queued = _settle_alerts(session, settled, status, actor, note, now)
        if changed or note:  # a settled post's update edits its alert already
            queued += _refresh_alerts(session, [p for p in posts if p not in settled], now)
        session.flush()
        return _outcome(review, posts, changed=changed, stale=stale, queued=queued)


def _settle_alerts(session: Session, reviews: list[Review], status: str, actor: Actor, note: str | None,
                   now: datetime) -> int:
    """A line in each sent alert's thread: settled, by whom (and the note); the reminder will not come."""
    if not reviews:
        return 0
    ids = [r.id for r in reviews]
    alerts = session.execute(
        select(Delivery.id, Delivery.review_id, Delivery.destination, Delivery.channel)
        .where(Delivery.review_id.in_(ids), Delivery.kind == "alert", Delivery.status == "sent")
    ).all()
    change = f"{SETTLED_WORDS[status]} by {actor.name}" + (f": {note}" if note else "")
    return enqueue(session, [
        outbox_row("update", f"update:{row.review_id}:{status}:{now:%Y%m%dT%H%M%S}", row.destination, now,
                   review_id=row.review_id, channel=row.channel, parent_id=row.id,
                   payload={"changes": [change], "settled": True})
        for row in alerts
    ])


def _refresh_alerts(session: Session, reviews: Sequence[Review], now: datetime) -> int:
    """Each sent alert of these reviews is edited in place to show who has it, its status and when (an outbox row
    of kind `refresh`, one per review state: the Slack notifier applies it with chat.update, others drop it)."""
    if not reviews:
        return 0
    versions = {r.id: r.work_version or 0 for r in reviews}
    alerts = session.execute(
        select(Delivery.id, Delivery.review_id, Delivery.destination, Delivery.channel)
        .where(Delivery.review_id.in_(list(versions)), Delivery.kind == "alert", Delivery.status == "sent",
               Delivery.remote_id.is_not(None))
    ).all()
    return enqueue(session, [
        outbox_row("refresh", f"refresh:{row.review_id}:{versions[row.review_id]}", row.destination, now,
                   review_id=row.review_id, channel=row.channel, parent_id=row.id)
        for row in alerts if row.review_id is not None
    ])


def _clean_text(value: str | None, limit: int, what: str) -> str:
    text = (value or "").replace("\r\n", "\n").strip()
    if not text:
        raise WorkError(f"the {what} is empty")
    if len(text) > limit:
        raise WorkError(f"the {what} is {len(text)} characters long; at most {limit}")
    return text


def add_note(sessions: sessionmaker[Session], review_id: int, text: str, actor: Actor, *,
             now: datetime | None = None) -> Outcome:
    """An internal note on one review (never shown outside the team)."""
    note = _clean_text(text, MAX_NOTE, "note")
    now = now or datetime.now(UTC)
    with sessions.begin() as session:
        review = _review(session, review_id)
        _record(session, review, actor, "note", None, note, now)
        session.flush()
        return _outcome(review, [review], changed=True, stale=False)


def save_draft(sessions: sessionmaker[Session], review_id: int, text: str, actor: Actor, *,
               seen_version: int | None = None, now: datetime | None = None) -> Outcome:
    """The team's edit of the draft reply, kept with the review (repwatch never posts it on the site by itself)."""
    draft = _clean_text(text, MAX_DRAFT, "draft")
    now = now or datetime.now(UTC)
    with sessions.begin() as session:
        review = _review(session, review_id)
        stale = _is_stale(review, seen_version)
        changed = draft != review.draft_reply
        if changed:
            _record(session, review, actor, "draft", review.draft_reply, draft, now, stale=stale)
            review.draft_reply = draft
        queued = _refresh_alerts(session, [review], now) if changed else 0
        session.flush()
        return _outcome(review, [review], changed=changed, stale=stale, queued=queued)


def snooze(sessions: sessionmaker[Session], review_id: int, duration: timedelta, actor: Actor, *,
           now: datetime | None = None) -> Outcome:
    """The reply reminder of a review (its incident) waits `duration` more; it comes after that if still open."""
    if not timedelta(0) < duration <= MAX_SNOOZE:
        raise WorkError("a snooze lasts more than nothing and at most 30d")
    now = now or datetime.now(UTC)
    until = now + duration
    with sessions.begin() as session:
        review = _review(session, review_id)
        posts = _posts(session, review)
        for post in posts:
            before = post.snoozed_until.isoformat(timespec="minutes") if post.snoozed_until else None
            _record(session, post, actor, "snooze", before, until.isoformat(timespec="minutes"), now)
            post.snoozed_until = until
        queued = _refresh_alerts(session, posts, now)
        session.flush()
        return _outcome(review, posts, changed=True, stale=False, queued=queued)


def review_events(sessions: sessionmaker[Session], review_id: int) -> list[Event]:
    """A review's audit trail, oldest first."""
    with sessions() as session:
        if session.get(Review, review_id) is None:
            raise NoSuchReview(f"no review #{review_id} (see `repwatch reviews`)")
        rows = session.scalars(
            select(ReviewEvent).where(ReviewEvent.review_id == review_id).order_by(ReviewEvent.id)
        ).all()
        return [Event(e.at, e.actor, e.via, e.action, e.before, e.after, e.stale) for e in rows]


CRAWL = Actor("repwatch", "crawl")


def mark_replies_seen(session: Session, now: datetime, window: timedelta = timedelta(days=30)) -> int:
    """Open reviews whose business reply the crawl has found become `replied`, answered when the reply was published
    (or when it was first seen, for sites that do not date replies); returns how many."""
    changed_lately = select(ReviewVersion.review_id).where(ReviewVersion.seen_at >= now - window)
    reviews = session.scalars(
        select(Review).where(Review.id.in_(changed_lately), Review.status.in_(OPEN_STATUSES),
                             (Review.reply_body.is_not(None)) | (Review.reply_published_at.is_not(None)))
    ).all()
    for review in reviews:
        _record(session, review, CRAWL, "status", review.status, "replied", now)
        review.status, review.status_changed_at = "replied", now
        if review.first_reply_at is None:
            review.first_reply_at = min(review.reply_published_at or now, now)
    return len(reviews)  # no refresh: the crawl's update about the reply edits the alert already
