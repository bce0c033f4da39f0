"""The team inbox's reads: the filtered, counted, paged list of complaints, one review's page, a business's dashboard.

The web inbox and `repwatch inbox` both call these; the actions on a review are monitor/service/work.py's.

The default view is the team's to-do list: complaints (sentiment `neg` or `mixed`) that were news when found (not
the history a source's first crawl stored, unless recent enough to alert then: nobody is asked to answer a
five-year-old review; `include_baseline` shows those too), still `new` or `assigned`, oldest first.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    column,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session, aliased, sessionmaker

from alerts.digest import (
    Digest,
    IsoWeek,
    SiteReply,
    TopicCount,
    WeekPoint,
    build_digest,
    safe_link,
)
from models.tables import (
    REVIEW_DOCUMENT,
    REVIEW_FTS,
    Business,
    Delivery,
    Review,
    Source,
    UTCDateTime,
)
from models.textsafe import terminal_safe
from models.vocab import (
    HANDLED_STATUSES,
    MIXED_LABEL,
    NEGATIVE_LABELS,
    OPEN_STATUSES,
    REVIEW_STATUSES,
)
from monitor.config import Config
from monitor.service.alerting import AlertBuilder, site_name
from monitor.service.reviews import ReviewHistory, review_history
from monitor.service.work import Event, NoSuchReview, review_events
from monitor.topics import TopicMatcher, decode_topics
from spiders.registry import load_spiders

__all__ = [
    "ANY", "COMPLAINT_LABELS", "FACETS", "ORDERS", "AlertSent", "Dashboard", "IncidentPost", "InboxError",
    "InboxPage", "InboxQuery", "InboxRow", "NoSuchReview", "ReviewDetail", "dashboard", "inbox", "review_detail",
]

COMPLAINT_LABELS = (*sorted(NEGATIVE_LABELS), MIXED_LABEL)  # what the inbox shows by default
ANY = "any"  # label=ANY: every label (None: the complaints)
UNSCORED = "unscored"  # the label facet's name for reviews with no verdict yet
ORDERS = ("oldest", "newest", "waited")
FACETS = ("business", "site", "stars", "label", "severity", "language", "topic", "status", "assignee")
MAX_PER_PAGE = 200
EXCERPT_LINES = 3
EXCERPT_CHARS = 280
MAX_SEARCH_CHARS = 500  # a search box pasted full of a novel: the opening is what the person meant
MAX_SEARCH_TERMS = 32


class InboxError(ValueError):
    """A query the inbox cannot answer as asked (an unknown status, order, an empty date range): one clear line."""


@dataclass(frozen=True)
class InboxQuery:
    """Which reviews the inbox lists. Every field is optional; the defaults are the team's to-do list (see the
    module's docstring). Filters combine with AND; a tuple field matches any of its values."""

    business: str | None = None  # Business name, as in config.yaml
    source: str | None = None  # source name, as in config.yaml
    site: str | None = None  # the source's kind: the spider's name (trustpilot, yelp, schema_org, …)
    stars: tuple[int, ...] = ()  # 1-5 (a 4.5★ rating counts as 4); 0 = no rating
    label: str | None = None  # None: the complaints (neg + mixed); ANY: every label; or neg/mixed/neu/pos/unscored
    severity: str | None = None  # normal / high / critical
    language: str | None = None  # the review's language (ISO 639-1)
    topic: str | None = None  # a complaint topic id (delivery, refund, …)
    status: tuple[str, ...] = OPEN_STATUSES  # () = every status
    assignee: str | None = None  # a person's name; "" = nobody's
    published_from: date | None = None  # dates are UTC days, both ends included
    published_to: date | None = None
    seen_from: date | None = None  # first seen by a crawl
    seen_to: date | None = None
    text: str | None = None  # full-text search over title, body and author: words, all of them must appear
    include_baseline: bool = False  # also the history a source's first crawl stored (never alerted)
    page: int = 1
    per_page: int = 50
    order: str = "oldest"  # oldest / newest (by publication, else first seen) / waited (longest wait first)

    def validate(self) -> None:
        """InboxError naming the first thing wrong (the web app and the CLI show it as it is)."""
        unknown = [s for s in self.status if s not in REVIEW_STATUSES]
        if unknown:
            raise InboxError(f"unknown status {unknown[0]!r} (statuses: {', '.join(REVIEW_STATUSES)})")
        if self.order not in ORDERS:
            raise InboxError(f"unknown order {self.order!r} (orders: {', '.join(ORDERS)})")
        if any(not 0 <= s <= 5 for s in self.stars):
            raise InboxError("stars are 1 to 5 (0: no rating)")
        for start, end, what in ((self.published_from, self.published_to, "published"),
                                 (self.seen_from, self.seen_to, "first seen")):
            if start is not None and end is not None and start > end:
                raise InboxError(f"{what} from {start} is after {what} to {end}")


@dataclass(frozen=True)
class InboxRow:
    id: int
    business: str
    source: str
    site: str  # how people call the site ("Trustpilot"), or the post's host for feeds of many sites
    kind: str  # the site filter's value: the source's kind
    stars: float | None
    author: str
    excerpt: str  # the first lines of title and body, control characters removed (still untrusted: escape it)
    language: str | None
    topics: tuple[str, ...]
    label: str
    severity: str | None
    waited: timedelta  # since publication (else first seen) until the first reply, the resolution, or now
    deadline: timedelta | None  # time left to reply_deadline (negative: overdue by); None: none configured or done
    overdue: bool
    assignee: str | None
    status: str
    incident_id: int | None
    incident_posts: int  # reviews in its incident, this one included (1 when alone)
    url: str | None  # http(s) only: never a javascript: link
    published_at: datetime | None
    first_seen_at: datetime
    removed: bool  # no longer on the site
    work_version: int


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    total: int
    counts: dict[str, dict[str, int]]  # facet (FACETS) → value → reviews matching the whole query
    page: int
    per_page: int
    pages: int
    query: InboxQuery = field(default_factory=InboxQuery)
    site_names: dict[str, str] = field(default_factory=dict)  # kind (the site facet's values) → display name


# --------------------------------------------------------------------------------------------------------------
# The list


def _language() -> ColumnElement[Any]:
    """The review's language: the scorer's when it determined one, else what the site said."""
    return func.coalesce(func.nullif(Review.sentiment_lang, "und"), Review.language)


def _when() -> ColumnElement[Any]:
    """Since when the customer waits: publication, else first seen (alerts/digest.py's `_when`, same spelling)."""
    return func.coalesce(Review.published_at, Review.first_seen_at)


def _stars() -> ColumnElement[Any]:
    return case(*[(Review.rating >= s, s) for s in (5, 4, 3, 2, 1)], else_=0)


def _label() -> ColumnElement[Any]:
    return func.coalesce(Review.sentiment_label, UNSCORED)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_terms(text: str | None) -> list[str]:
    """The words of a search, as plain words: no operator, quote or control character survives (each engine
    gets them quoted as literal words)."""
    if not text:
        return []
    if len(text) > MAX_SEARCH_CHARS:  # cut at a word's end: half a word would find nothing
        text = text[:MAX_SEARCH_CHARS + 1].rsplit(None, 1)[0] if " " in text[:MAX_SEARCH_CHARS] else text[:MAX_SEARCH_CHARS]
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    words = re.findall(r"\w+", cleaned)
    return list(dict.fromkeys(w.lower() for w in words))[:MAX_SEARCH_TERMS]


def _search(session: Session, words: str | None) -> ColumnElement[bool] | None:
    """Reviews whose title, body or author has every word: SQLite's FTS5 table, PostgreSQL's GIN index."""
    terms = search_terms(words)
    if not terms:
        return None
    if session.get_bind().dialect.name == "sqlite":
        # each word a quoted FTS5 string: no word can be read as an operator (AND, NEAR, column:, *, ^)
        match = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        found = text(f"SELECT rowid FROM {REVIEW_FTS} WHERE {REVIEW_FTS} MATCH :search").bindparams(search=match)
        return Review.id.in_(found.columns(column("rowid", Integer)))
    # plainto_tsquery reads its text as plain words, whatever it holds
    return text(f"{REVIEW_DOCUMENT} @@ plainto_tsquery('simple'::regconfig, :search)").bindparams(
        search=" ".join(terms))


def _conditions(session: Session, query: InboxQuery) -> list[ColumnElement[bool]]:
    """The WHERE of a query (over review ⋈ source ⋈ business)."""
    where: list[ColumnElement[bool]] = []
    if query.label is None:
        where.append(Review.sentiment_label.in_(COMPLAINT_LABELS))
    elif query.label == UNSCORED:
        where.append(Review.sentiment_label.is_(None) | (Review.sentiment_label == UNSCORED))
    elif query.label != ANY:
        where.append(Review.sentiment_label == query.label)
    if not query.include_baseline:  # history from a first crawl, unless it was recent enough to alert
        where.append(Review.baseline.is_(False) | Review.severity.is_not(None))
    if query.status:
        where.append(Review.status.in_(query.status))
    if query.business is not None:
        where.append(Business.name == query.business)
    if query.source is not None:
        where.append(Source.name == query.source)
    if query.site is not None:
        where.append(Source.kind == query.site)
    if query.stars:
        where.append(or_(*[
            Review.rating.is_(None) if s == 0 else and_(Review.rating >= s, Review.rating < s + 1) if s < 5
            else Review.rating >= 5
            for s in sorted(set(query.stars))
        ]))
    if query.severity is not None:
        where.append(Review.severity == query.severity)
    if query.language is not None:
        where.append(_language() == query.language.lower())
    if query.topic is not None:
        where.append(Review.topics.like(f"%,{_like_escape(query.topic)},%", escape="\\"))
    if query.assignee is not None:
        where.append(Review.assignee.is_(None) | (Review.assignee == "") if query.assignee == ""
                     else Review.assignee == query.assignee)
    when = _when()
    if query.published_from is not None:
        where.append(when >= _day_start(query.published_from))
    if query.published_to is not None:
        where.append(when < _day_start(query.published_to + timedelta(days=1)))
    if query.seen_from is not None:
        where.append(Review.first_seen_at >= _day_start(query.seen_from))
    if query.seen_to is not None:
        where.append(Review.first_seen_at < _day_start(query.seen_to + timedelta(days=1)))
    search = _search(session, query.text)
    if search is not None:
        where.append(search)
    return where


def _wait_end(now: datetime) -> ColumnElement[Any]:
    """When the wait stopped: the first reply, else the review's settling (resolved, not a complaint), else now."""
    settled = case((Review.status.in_(HANDLED_STATUSES), Review.status_changed_at), else_=None)
    return func.coalesce(Review.first_reply_at, settled, literal(now, UTCDateTime()))


def _waited_order(session: Session, now: datetime) -> ColumnElement[Any]:
    end, start = _wait_end(now), _when()
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(end) - func.julianday(start)
    return end - start


def inbox(sessions: sessionmaker[Session], config: Config, query: InboxQuery | None = None, *,
          now: datetime | None = None) -> InboxPage:
    """One page of the inbox, its total and its counts per facet; raises InboxError for a query that makes no sense.

    The counts are over every review the whole query matches (selecting a facet's value narrows the others'
    counts, and that facet shows only its value): what the result holds, by business, site, stars, …
    """
    query = query or InboxQuery()
    query.validate()
    now = now or datetime.now(UTC)
    per_page = max(1, min(query.per_page, MAX_PER_PAGE))
    with sessions() as session:
        where = _conditions(session, query)
        counts, total = _counts(session, where)
        pages = max(1, -(-total // per_page))
        page = max(1, min(query.page, pages))
        when = _when()
        order: list[ColumnElement[Any]]
        if query.order == "newest":
            order = [when.desc(), Review.id.desc()]
        elif query.order == "waited":
            order = [_waited_order(session, now).desc(), Review.id.asc()]
        else:
            order = [when, Review.id.asc()]
        rows = session.execute(
            select(Review, Source, Business.name)
            .join(Source, Review.source_id == Source.id)
            .join(Business, Source.business_id == Business.id)
            .where(*where)
            .order_by(*order)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        posts = _incident_sizes(session, [r.incident_id for r, _, _ in rows if r.incident_id is not None])
        sites = _Sites()
        deadline = config.alerting.reply_deadline
        result = [_row(review, source, business, sites, posts, deadline, now) for review, source, business in rows]
        site_names = {kind: sites.kind_name(kind) for kind in counts["site"]}
    return InboxPage(result, total, counts, page, per_page, pages, query, site_names)


def _counts(session: Session, where: list[ColumnElement[bool]]) -> tuple[dict[str, dict[str, int]], int]:
    """Every facet's counts from one grouped query over the matching reviews (their combinations are few)."""
    stars, label, language = _stars(), _label(), _language()
    grouped = session.execute(
        select(Business.name, Source.kind, stars, label, Review.severity, language, Review.topics, Review.status,
               Review.assignee, func.count())
        .select_from(Review)
        .join(Source, Review.source_id == Source.id)
        .join(Business, Source.business_id == Business.id)
        .where(*where)
        .group_by(Business.name, Source.kind, stars, label, Review.severity, language, Review.topics, Review.status,
                  Review.assignee)
    ).all()
    counters: dict[str, Counter[str]] = {facet: Counter() for facet in FACETS}
    total = 0
    for business, kind, star, label_, severity, lang, topics, status, assignee, count in grouped:
        total += count
        counters["business"][business] += count
        counters["site"][kind] += count
        counters["stars"][str(star)] += count
        counters["label"][label_] += count
        counters["severity"][severity or ""] += count
        counters["language"][lang or ""] += count
        for topic in decode_topics(topics):
            counters["topic"][topic] += count
        counters["status"][status] += count
        counters["assignee"][assignee or ""] += count
    return {facet: dict(counter.most_common()) for facet, counter in counters.items()}, total


def _incident_sizes(session: Session, incident_ids: list[int]) -> dict[int, int]:
    if not incident_ids:
        return {}
    return {incident: count for incident, count in session.execute(  # type: ignore[misc]  # not NULL: filtered
        select(Review.incident_id, func.count()).where(Review.incident_id.in_(set(incident_ids)))
        .group_by(Review.incident_id)
    )}


class _Sites:
    """Source → how people call its site (spider classes looked up once)."""

    def __init__(self) -> None:
        self._spiders = load_spiders()
        self._by_source: dict[int, tuple[str, bool]] = {}

    def kind_name(self, kind: str) -> str:
        spider = self._spiders.get(kind)
        return spider.site_name if spider is not None and spider.site_name else kind

    def of(self, source: Source, review_url: str | None) -> str:
        if source.id not in self._by_source:
            spider = self._spiders.get(source.kind)
            self._by_source[source.id] = (site_name(source), spider is not None and spider.many_sites)
        name, many_sites = self._by_source[source.id]
        if many_sites:  # a feed of mentions: the post's own host is where to answer
            return urlsplit(review_url or "").hostname or name
        return name


def excerpt(title: str | None, body: str | None) -> str:
    """The first lines of a review: title, then the body's opening lines, control characters removed."""
    lines = [line.strip() for line in f"{title or ''}\n{body or ''}".splitlines() if line.strip()]
    return terminal_safe("\n".join(lines[:EXCERPT_LINES]), EXCERPT_CHARS)


def _waited(review: Review, now: datetime) -> timedelta:
    start = review.published_at or review.first_seen_at
    end = review.first_reply_at
    if end is None and review.status in HANDLED_STATUSES:
        end = review.status_changed_at
    return max((end or now) - start, timedelta(0))


def _time_left(review: Review, waited: timedelta, deadline: timedelta | None) -> timedelta | None:
    if deadline is None or review.status in HANDLED_STATUSES or review.first_reply_at is not None:
        return None
    return deadline - waited


def _row(review: Review, source: Source, business: str, sites: _Sites, posts: dict[int, int],
         deadline: timedelta | None, now: datetime) -> InboxRow:
    waited = _waited(review, now)
    left = _time_left(review, waited, deadline)
    language = review.sentiment_lang if review.sentiment_lang not in (None, "und") else review.language
    return InboxRow(
        id=review.id, business=business, source=source.name, site=sites.of(source, review.url), kind=source.kind,
        stars=review.rating, author=terminal_safe(" ".join((review.author or "").split()), 80) or "anonymous",
        excerpt=excerpt(review.title, review.body), language=language, topics=decode_topics(review.topics),
        label=review.sentiment_label or UNSCORED, severity=review.severity, waited=waited, deadline=left,
        overdue=left is not None and left < timedelta(0), assignee=review.assignee or None, status=review.status,
        incident_id=review.incident_id,
        incident_posts=posts.get(review.incident_id, 1) if review.incident_id is not None else 1,
        url=safe_link(review.url), published_at=review.published_at, first_seen_at=review.first_seen_at,
        removed=review.removed_at is not None, work_version=review.work_version or 0,
    )


# --------------------------------------------------------------------------------------------------------------
# One review's page


@dataclass(frozen=True)
class AlertSent:
    destination: str
    kind: str  # alert / update / reminder
    created_at: datetime
    sent_at: datetime | None
    status: str  # pending / sent / failed / dropped


@dataclass(frozen=True)
class IncidentPost:
    id: int
    site: str
    author: str
    url: str | None
    status: str


@dataclass(frozen=True)
class ReviewDetail:
    id: int
    business: str
    source: str
    site: str
    kind: str
    url: str | None  # where to answer it on the site (http(s) only)
    title: str | None  # untrusted, as stored: escape it for the target
    text: str
    rating: float | None
    author: str | None
    language: str | None
    topics: tuple[str, ...]
    topic_titles: dict[str, str]
    label: str
    severity: str | None
    why: str | None
    status: str
    assignee: str | None
    work_version: int
    published_at: datetime | None
    first_seen_at: datetime
    removed_at: datetime | None
    site_reply: str | None  # the business's reply as seen on the site
    site_reply_at: datetime | None
    first_reply_at: datetime | None
    time_to_first_reply: timedelta | None
    waited: timedelta
    deadline: timedelta | None  # time left to reply_deadline (negative: overdue by)
    overdue: bool
    snoozed_until: datetime | None
    history: ReviewHistory  # edits, removal, reappearance, with dates (monitor/service/reviews.review_history)
    alerts: list[AlertSent]
    draft_reply: str | None  # the team's edited draft, else the generated one in the review's language
    draft_edited: bool
    events: list[Event]  # the audit trail, oldest first
    notes: list[Event]  # the events that are notes
    incident_id: int | None
    incident_posts: list[IncidentPost]  # the incident's other posts


def review_detail(sessions: sessionmaker[Session], config: Config, review_id: int, *,
                  now: datetime | None = None) -> ReviewDetail:
    """Everything a review's page shows; raises NoSuchReview."""
    now = now or datetime.now(UTC)
    history = review_history(config, review_id, sessions=sessions)
    events = review_events(sessions, review_id)
    with sessions() as session:
        found = session.execute(
            select(Review, Source, Business)
            .join(Source, Review.source_id == Source.id)
            .join(Business, Source.business_id == Business.id)
            .where(Review.id == review_id)
        ).one_or_none()
        if found is None:
            raise NoSuchReview(f"no review #{review_id} (see `repwatch inbox`)")
        review, source, business = found
        alert = AlertBuilder(config).alert(review, source, business)
        sites = _Sites()
        deliveries = session.scalars(
            select(Delivery).where(Delivery.review_id == review_id).order_by(Delivery.created_at, Delivery.id)
        ).all()
        others: list[IncidentPost] = []
        if review.incident_id is not None:
            other = aliased(Review)
            others = [
                IncidentPost(r.id, sites.of(s, r.url), r.author or "anonymous", safe_link(r.url), r.status)
                for r, s in session.execute(
                    select(other, Source).join(Source, other.source_id == Source.id)
                    .where(other.incident_id == review.incident_id, other.id != review.id).order_by(other.id)
                )
            ]
        stored_topics = decode_topics(review.topics)
        topics = stored_topics or tuple(t.name for t in alert.topics)
        matcher = TopicMatcher.from_config(config)
        waited = _waited(review, now)
        left = _time_left(review, waited, config.alerting.reply_deadline)
        first_reply = review.first_reply_at
        start = review.published_at or review.first_seen_at
        return ReviewDetail(
            id=review.id, business=business.name, source=source.name, site=alert.site, kind=source.kind,
            url=safe_link(review.url), title=review.title, text=review.body, rating=review.rating,
            author=review.author, language=alert.language, topics=topics,
            topic_titles={t: matcher.title(t) for t in topics}, label=review.sentiment_label or UNSCORED,
            severity=review.severity, why=review.sentiment_why, status=review.status,
            assignee=review.assignee or None, work_version=review.work_version or 0,
            published_at=review.published_at, first_seen_at=review.first_seen_at, removed_at=review.removed_at,
            site_reply=review.reply_body, site_reply_at=review.reply_published_at, first_reply_at=first_reply,
            time_to_first_reply=max(first_reply - start, timedelta(0)) if first_reply is not None else None,
            waited=waited, deadline=left, overdue=left is not None and left < timedelta(0),
            snoozed_until=review.snoozed_until, history=history,
            alerts=[AlertSent(d.destination, d.kind, d.created_at, d.sent_at, d.status) for d in deliveries],
            draft_reply=review.draft_reply or alert.draft_reply, draft_edited=bool(review.draft_reply),
            events=events, notes=[e for e in events if e.action == "note"],
            incident_id=review.incident_id, incident_posts=others,
        )


# --------------------------------------------------------------------------------------------------------------
# The dashboard: the weekly digest's numbers, from the digest's own computation


@dataclass(frozen=True)
class Dashboard:
    business: str
    week: IsoWeek  # the week the weekly numbers are of (by default the current one, so far)
    generated_at: datetime
    new_negatives: int  # negatives published this week
    unanswered: int  # open negatives now (the digest's "still unanswered")
    median_reply: timedelta | None  # over the replies that appeared on the site this week
    replies: int
    reply_by_site: list[SiteReply]  # the same, per site
    reply_deadline: timedelta | None
    answered_in_time: int
    answer_due: int
    answered_in_time_share: float | None  # None: nothing due yet, or no reply_deadline
    topics: list[TopicCount]  # this week's top complaint topics, with last week's count (the trend)
    weeks: list[WeekPoint]  # the 8-week series, oldest first (reviews per label, average rating)
    digest: Digest  # everything else the digest has (lists of reviews, per-source counts)


def dashboard(sessions: sessionmaker[Session], config: Config, business: str, *, now: datetime | None = None,
              week: IsoWeek | None = None) -> Dashboard:
    """A business's numbers for a week (default: the current week so far): the digest's, by the digest's code."""
    now = now or datetime.now(UTC)
    week = week or IsoWeek.containing(now)
    with sessions() as session:
        digest = build_digest(session, business, week, topics=TopicMatcher.from_config(config), now=now,
                              reply_deadline=config.alerting.reply_deadline)
    return Dashboard(
        business=business, week=week, generated_at=now, new_negatives=digest.negatives_total,
        unanswered=digest.unanswered_total, median_reply=digest.median_reply, replies=digest.replies,
        reply_by_site=digest.reply_by_site, reply_deadline=digest.reply_deadline,
        answered_in_time=digest.answered_in_time, answer_due=digest.answer_due,
        answered_in_time_share=digest.answered_in_time_share, topics=digest.topics, weeks=digest.weeks,
        digest=digest,
    )
