"""Incidents in the database: link new complaints as they are scored, thread their alerts, list, link and unlink by hand.

The matching itself is monitor/incidents.py (pure); this module finds the candidates (the business's negative posts
of the last 14 days), records the links and their reasons, and puts a later post's alert into the first post's
thread. A person's link or unlink (`repwatch link` / `unlink`) is audited (ReviewEvent action "link") and is never
undone by the linker.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Business, Delivery, Incident, Review, ReviewEvent, Source
from models.vocab import MIXED_LABEL, NEGATIVE_LABELS, OPEN_STATUSES
from monitor.incidents import WINDOW, Post, best_match, earliest
from monitor.service.alerting import site_name
from monitor.service.work import Actor, NoSuchReview, WorkError

__all__ = [
    "IncidentView", "NoSuchIncident", "PostView", "incident", "link", "link_new", "open_incidents",
    "thread_alerts", "unlink",
]

COMPLAINT_LABELS = (*sorted(NEGATIVE_LABELS), MIXED_LABEL)
CRAWL = Actor("repwatch", "crawl")


class NoSuchIncident(LookupError):
    pass


def _text(review: Review) -> str:
    return f"{review.title}. {review.body}" if review.title else review.body


def _post(review: Review, business_id: int) -> Post:
    return Post(review.id, business_id, review.published_at or review.first_seen_at, review.author, _text(review),
                incident_id=review.incident_id)


def _record(session: Session, review: Review, actor: Actor, before: str | None, after: str | None,
            now: datetime) -> None:
    session.add(ReviewEvent(review_id=review.id, at=now, actor=actor.name, via=actor.via, action="link",
                            before=before, after=after))
    review.work_version = (review.work_version or 0) + 1


def _incident_word(incident_id: int | None) -> str | None:
    return f"incident #{incident_id}" if incident_id is not None else None


# --- linking as reviews are scored ---------------------------------------------------------------------------


def link_new(session: Session, review_ids: Sequence[int], now: datetime) -> dict[int, int]:
    """Link each of these just-scored reviews that is a complaint (neg or mixed, not history) to the incident of a
    matching post of its business from the last 14 days, creating the incident when the match has none.

    Candidates are the business's complaints first seen since 14 days before the new post (an indexed range), so
    the cost follows the business's recent negatives, not the table. A review a person linked or unlinked by hand
    is left alone. Returns {review id: incident id} for the reviews linked now.
    """
    rows = session.execute(
        select(Review, Source.business_id).join(Source, Review.source_id == Source.id)
        .where(Review.id.in_(review_ids), Review.sentiment_label.in_(COMPLAINT_LABELS),
               Review.baseline.is_(False), Review.incident_id.is_(None),
               ~exists().where(ReviewEvent.review_id == Review.id, ReviewEvent.action == "link",
                               ReviewEvent.via != CRAWL.via))
        .order_by(Review.id)
    ).all()
    if not rows:
        return {}
    by_business: dict[int, list[Review]] = defaultdict(list)
    for review, business_id in rows:
        by_business[business_id].append(review)
    linked: dict[int, int] = {}
    for business_id, news in by_business.items():
        since = min(r.published_at or r.first_seen_at for r in news) - WINDOW
        candidates = session.execute(
            select(Review).join(Source, Review.source_id == Source.id)
            .where(Source.business_id == business_id, Review.first_seen_at >= since,
                   Review.sentiment_label.in_(COMPLAINT_LABELS))
        ).scalars().all()
        reviews = {r.id: r for r in candidates}
        posts = {r.id: _post(r, business_id) for r in candidates}
        for new in news:
            if new.incident_id is not None:
                continue  # linked a moment ago, as the match of an earlier post of this batch
            found = best_match(_post(new, business_id), [p for i, p in posts.items() if i != new.id])
            if found is None:
                continue
            old = reviews[found.post.id]
            incident_id = _join(session, new, old, business_id, found.reason, now)
            posts[new.id] = _post(new, business_id)
            posts[old.id] = _post(old, business_id)
            linked[new.id] = incident_id
    return linked


def _join(session: Session, new: Review, old: Review, business_id: int, reason: str, now: datetime) -> int:
    line = f"#{new.id} ~ #{old.id}: {reason}"
    incident = _incident_for(session, new, old, business_id, line, CRAWL, now)
    new.incident_id = incident.id
    _record(session, new, CRAWL, None, f"{_incident_word(incident.id)}: {line}", now)
    _take_over_assignee(session, new, incident.id, now)
    return incident.id


def _take_over_assignee(session: Session, new: Review, incident_id: int, now: datetime) -> None:
    """A new post of a complaint somebody already has is theirs too (its status `assigned`): the person working the
    incident sees it, instead of a `new` post nobody has. Its status stays its own otherwise: a post on another site
    still waits for its own answer there."""
    if new.status != "new" or new.assignee is not None:
        return
    holder = session.scalars(
        select(Review.assignee).where(Review.incident_id == incident_id, Review.id != new.id,
                                      Review.assignee.is_not(None), Review.status.in_(OPEN_STATUSES))
        .order_by(Review.id).limit(1)
    ).first()
    if holder is None:
        return
    session.add(ReviewEvent(review_id=new.id, at=now, actor=CRAWL.name, via=CRAWL.via, action="assign",
                            before=None, after=holder))
    session.add(ReviewEvent(review_id=new.id, at=now, actor=CRAWL.name, via=CRAWL.via, action="status",
                            before="new", after="assigned"))
    new.assignee, new.status, new.status_changed_at = holder, "assigned", now
    new.work_version = (new.work_version or 0) + 2


def _incident_for(session: Session, joining: Review, other: Review, business_id: int, line: str, actor: Actor,
                  now: datetime) -> Incident:
    """The incident `joining` is to join: `other`'s, its reason extended by `line`, or a new one made for the two
    (its first post the earlier of them, `other` recorded joining it)."""
    if other.incident_id is None:
        first = earliest([_post(joining, business_id), _post(other, business_id)])
        incident = Incident(business_id=business_id, first_review_id=first.id, created_at=now, reason=line)
        session.add(incident)
        session.flush()
        other.incident_id = incident.id
        _record(session, other, actor, None, f"{_incident_word(incident.id)}: {line}", now)
        return incident
    found = session.get(Incident, other.incident_id)
    assert found is not None
    found.reason = f"{found.reason}\n{line}" if found.reason else line
    _restart(session, found, extra=joining)
    return found


def _restart(session: Session, incident: Incident, extra: Review | None = None) -> None:
    """first_review_id = the incident's earliest post (by publication), `extra` counted before it is flushed in."""
    posts = list(session.scalars(select(Review).where(Review.incident_id == incident.id)).all())
    if extra is not None and extra not in posts:
        posts.append(extra)
    if posts:
        incident.first_review_id = earliest([_post(p, incident.business_id) for p in posts]).id


def thread_alerts(session: Session, review_ids: Sequence[int]) -> int:
    """Put the not-yet-sent alerts of these reviews, when they belong to an incident, under the incident's first
    alert to the same destination (its thread in Slack; an "also posted on" alert elsewhere); returns how many.

    The first alert is the one queued first for that destination among the incident's other posts; an alert the
    incident never sent to that destination leaves this one a normal alert.
    """
    # By review id only, kind and status tested here: in SQL, SQLite (no statistics) would read every alert by
    # ix_delivery_kind_created instead (tests/models/test_query_plans.py).
    rows = session.execute(
        select(Delivery.id, Delivery.destination, Delivery.kind, Delivery.status, Delivery.parent_id,
               Delivery.attempts, Review.incident_id)
        .join(Review, Delivery.review_id == Review.id)
        .where(Delivery.review_id.in_(review_ids), Review.incident_id.is_not(None))
    ).all()
    mine = [(row.id, row.destination, row.incident_id) for row in rows
            if row.kind == "alert" and row.status == "pending" and row.parent_id is None and row.attempts == 0]
    threaded = 0
    for delivery_id, destination, incident_id in mine:
        posts = select(Review.id).where(Review.incident_id == incident_id)  # ix_review_incident_id
        earlier = [row.id for row in session.execute(
            select(Delivery.id, Delivery.kind, Delivery.destination).where(Delivery.review_id.in_(posts))
        ) if row.kind == "alert" and row.destination == destination and row.id < delivery_id]
        if earlier:
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(parent_id=min(earlier)))
            threaded += 1
    return threaded


# --- by hand -------------------------------------------------------------------------------------------------


def _review(session: Session, review_id: int) -> tuple[Review, int]:
    row = session.execute(
        select(Review, Source.business_id).join(Source, Review.source_id == Source.id)
        .where(Review.id == review_id).with_for_update()
    ).first()
    if row is None:
        raise NoSuchReview(f"no review #{review_id} (see `repwatch reviews`)")
    return row[0], row[1]


def _leave(session: Session, review: Review) -> None:
    """Take the review out of its incident; an incident left with one post is no incident any more."""
    incident_id = review.incident_id
    if incident_id is None:
        return
    review.incident_id = None
    session.flush()
    rest = session.scalars(select(Review).where(Review.incident_id == incident_id)).all()
    incident = session.get(Incident, incident_id)
    if len(rest) <= 1:
        for post in rest:
            post.incident_id = None
        session.flush()
        session.execute(delete(Incident).where(Incident.id == incident_id))
    elif incident is not None:
        _restart(session, incident)


def link(sessions: sessionmaker[Session], review_id: int, to: int, actor: Actor, *,
         now: datetime | None = None) -> int:
    """A person says review `review_id` is the same complaint as review `to`: it joins `to`'s incident (made when
    `to` has none), leaving its own. Both must be reviews of one business. Returns the incident id."""
    now = now or datetime.now(UTC)
    if review_id == to:
        raise WorkError("a review cannot be linked to itself")
    with sessions.begin() as session:
        review, business_id = _review(session, review_id)
        other, other_business = _review(session, to)
        if business_id != other_business:
            raise WorkError(f"reviews #{review_id} and #{to} belong to different businesses; an incident is one "
                            "business's complaint")
        if review.incident_id is not None and review.incident_id == other.incident_id:
            return review.incident_id
        before = _incident_word(review.incident_id)
        _leave(session, review)
        line = f"#{review.id} ~ #{other.id}: linked by {actor.name}"
        incident = _incident_for(session, review, other, business_id, line, actor, now)
        review.incident_id = incident.id
        session.flush()
        _restart(session, incident)
        _record(session, review, actor, before, f"{_incident_word(incident.id)}: {line}", now)
        return incident.id


def unlink(sessions: sessionmaker[Session], review_id: int, actor: Actor, *, now: datetime | None = None) -> int:
    """A person says this review is a complaint of its own: it leaves its incident (an incident left with one post
    ends). Returns the incident it left; WorkError when it was in none."""
    now = now or datetime.now(UTC)
    with sessions.begin() as session:
        review, _ = _review(session, review_id)
        incident_id = review.incident_id
        if incident_id is None:
            raise WorkError(f"review #{review_id} belongs to no incident")
        _leave(session, review)
        _record(session, review, actor, _incident_word(incident_id), None, now)
        return incident_id


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostView:
    review_id: int
    site: str
    source: str
    author: str | None
    rating: float | None
    status: str
    assignee: str | None
    published_at: datetime | None
    first_seen_at: datetime
    url: str
    title: str | None
    body: str


@dataclass(frozen=True)
class IncidentView:
    id: int
    business: str
    first_review_id: int | None
    created_at: datetime
    reason: str
    posts: tuple[PostView, ...]  # first published first

    @property
    def open(self) -> bool:
        return any(p.status in OPEN_STATUSES for p in self.posts)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.site for p in self.posts))


def _views(session: Session, incidents: Sequence[Incident]) -> list[IncidentView]:
    if not incidents:
        return []
    ids = [i.id for i in incidents]
    rows = session.execute(
        select(Review, Source).join(Source, Review.source_id == Source.id).where(Review.incident_id.in_(ids))
    ).all()
    posts: dict[int, list[PostView]] = defaultdict(list)
    for review, source in rows:
        assert review.incident_id is not None
        posts[review.incident_id].append(PostView(
            review.id, site_name(source), source.name, review.author, review.rating, review.status,
            review.assignee, review.published_at, review.first_seen_at, review.url, review.title, review.body,
        ))
    names = {business_id: name for business_id, name in session.execute(
        select(Business.id, Business.name).where(Business.id.in_({i.business_id for i in incidents})))}
    return [
        IncidentView(i.id, names.get(i.business_id, "?"), i.first_review_id, i.created_at, i.reason or "",
                     tuple(sorted(posts[i.id], key=lambda p: (p.published_at or p.first_seen_at, p.review_id))))
        for i in incidents
    ]


def open_incidents(sessions: sessionmaker[Session], *, business: str | None = None,
                   include_settled: bool = False) -> list[IncidentView]:
    """Incidents with a post still waiting for the team (every incident with include_settled), newest first."""
    with sessions() as session:
        query = select(Incident).order_by(Incident.id.desc())
        if business is not None:
            query = query.join(Business, Incident.business_id == Business.id).where(Business.name == business)
        if not include_settled:
            query = query.where(exists().where(Review.incident_id == Incident.id,
                                               Review.status.in_(OPEN_STATUSES)))
        return _views(session, session.scalars(query).all())


def incident(sessions: sessionmaker[Session], incident_id: int) -> IncidentView:
    with sessions() as session:
        found = session.get(Incident, incident_id)
        if found is None:
            raise NoSuchIncident(f"no incident #{incident_id} (see `repwatch incidents`)")
        return _views(session, [found])[0]
