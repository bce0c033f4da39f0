"""The team inbox's reads: the filtered, counted, paged list of complaints, one review's page, a business's dashboard.

The web inbox and `repwatch inbox` both call these; the actions on a review are monitor/service/work.py's.

The default view is the team's to-do list: complaints (sentiment `neg` or `mixed`) that were news when found (not
the history a source's first crawl stored, unless recent enough to alert then: nobody is asked to answer a
five-year-old review; `include_baseline` shows those too), still `new` or `assigned`, oldest first. An incident
(one complaint posted on several sites) is one row: its earliest post the query finds, with how many posts it has.
Counts per facet are over every row the whole query finds. Search: words, all of them, in the title, text or
author (SQLite FTS5, PostgreSQL full-text search; whole words, any case).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from operator import itemgetter
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    column,
    exists,
    func,
    literal,
    literal_column,
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
from monitor.drafts import Drafts
from monitor.service.alerting import AlertBuilder
from monitor.service.reviews import ReviewHistory, review_history
from monitor.service.work import Event, NoSuchReview, review_events
from monitor.topics import TopicMatcher, decode_topics
from spiders.base import ReviewSpider
from spiders.registry import load_spiders

__all__ = [
    "ANY", "COMPLAINT_LABELS", "FACETS", "ORDERS", "AlertSent", "Dashboard", "IncidentPost", "InboxError",
    "InboxPage", "InboxQuery", "InboxRow", "NoSuchReview", "ReviewDetail", "dashboard", "inbox", "review_detail",
]

COMPLAINT_LABELS = (*sorted(NEGATIVE_LABELS), MIXED_LABEL)  # what the inbox shows by default
ANY = "any"  # label=ANY: every label (None: the complaints)
UNSCORED = "unscored"  # the label facet's name for reviews with no verdict yet
LABELS = (*COMPLAINT_LABELS, "neu", "pos", UNSCORED)
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
        if self.label not in (None, ANY, *LABELS):
            raise InboxError(f"unknown label {self.label!r} (labels: {', '.join(LABELS)}, or {ANY})")
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


def _when() -> ColumnElement[Any]:
    """Since when the customer waits: publication, else first seen (alerts/digest.py's `_when`, same spelling, which
    the indexes on it need)."""
    return func.coalesce(Review.published_at, Review.first_seen_at)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _quoted(values: tuple[str, ...] | list[str]) -> str:
    """A list of known words (validated statuses and labels) as SQL literals."""
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


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


def _search(session: Session, words: str | None, review: Any = Review, table: str = "review", *,
            few_rows: bool = False) -> ColumnElement[bool] | None:
    """Reviews whose title, body or author has every word: SQLite's FTS5 table, PostgreSQL's GIN index.

    `few_rows`: the other conditions select few rows by an index (the open complaints): SQLite reads those and
    checks each against the search's ids, instead of fetching every review the words are in (a common word is in
    a tenth of them) by its id.
    """
    terms = search_terms(words)
    if not terms:
        return None
    if session.get_bind().dialect.name == "sqlite":
        # each word a quoted FTS5 string: no word can be read as an operator (AND, NEAR, column:, *, ^)
        match = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        found = f"SELECT rowid FROM {REVIEW_FTS} WHERE {REVIEW_FTS} MATCH :search_{table}"
        if few_rows:  # `+id`: not a way in for the planner, only a test of the rows it reads
            return and_(text(f"+{table}.id IN ({found})").bindparams(**{f"search_{table}": match}))
        ids = text(found).bindparams(**{f"search_{table}": match}).columns(column("rowid", Integer))
        return cast(ColumnElement[bool], review.id.in_(ids))
    # plainto_tsquery reads its text as plain words, whatever it holds
    document = REVIEW_DOCUMENT.replace("review.", f"{table}.")
    return and_(text(f"{document} @@ plainto_tsquery('simple'::regconfig, :search_{table})").bindparams(
        **{f"search_{table}": " ".join(terms)}))


@dataclass(frozen=True)
class _SourceInfo:
    business: str
    name: str
    kind: str


def _source_table(session: Session) -> dict[int, _SourceInfo]:
    """Every source with its business (a few thousand at most): the filters on business, source and site become a
    list of source ids, and the counts need no join."""
    return {source_id: _SourceInfo(business, name, kind) for source_id, name, kind, business in session.execute(
        select(Source.id, Source.name, Source.kind, Business.name).join(Business, Source.business_id == Business.id))}


def _conditions(session: Session, query: InboxQuery, sources: dict[int, _SourceInfo], review: Any = Review,
                table: str = "review") -> list[ColumnElement[bool]]:
    """The WHERE of a query, over the review table alone (or its alias `review` named `table`).

    The status and label lists are spelled as sorted literals (they are validated words): the default view's
    `status IN ('assigned', 'new') AND sentiment_label IN ('mixed', 'neg')` is then the very condition of the
    partial index ix_review_inbox (models.tables.OPEN_COMPLAINTS), which SQLite uses only when it sees that.
    """
    where: list[ColumnElement[bool]] = []
    if query.status:
        where.append(and_(text(f"{table}.status IN ({_quoted(sorted(set(query.status)))})")))
    if query.label is None:
        where.append(and_(text(f"{table}.sentiment_label IN ({_quoted(sorted(COMPLAINT_LABELS))})")))
    elif query.label == UNSCORED:
        where.append(review.sentiment_label.is_(None) | (review.sentiment_label == UNSCORED))
    elif query.label != ANY:
        where.append(review.sentiment_label == query.label)
    if not query.include_baseline:  # history from a first crawl, unless it was recent enough to alert
        where.append(review.baseline.is_(False) | review.severity.is_not(None))
    if query.business is not None or query.source is not None or query.site is not None:
        ids = [source_id for source_id, info in sources.items()
               if query.business in (None, info.business) and query.source in (None, info.name)
               and query.site in (None, info.kind)]
        where.append(review.source_id.in_(ids))
    if query.stars:
        where.append(or_(*[
            review.rating.is_(None) if s == 0 else and_(review.rating >= s, review.rating < s + 1) if s < 5
            else review.rating >= 5
            for s in sorted(set(query.stars))
        ]))
    if query.severity is not None:
        where.append(review.severity == query.severity)
    if query.language is not None:
        lang = query.language.lower()
        where.append(or_(review.sentiment_lang == lang,
                         and_(or_(review.sentiment_lang.is_(None), review.sentiment_lang == "und"),
                              review.language == lang)))
    if query.topic is not None:
        where.append(review.topics.like(f"%,{_like_escape(query.topic)},%", escape="\\"))
    if query.assignee is not None:
        where.append(review.assignee.is_(None) | (review.assignee == "") if query.assignee == ""
                     else review.assignee == query.assignee)
    when = func.coalesce(review.published_at, review.first_seen_at)  # _when()
    if query.published_from is not None:
        where.append(when >= _day_start(query.published_from))
    if query.published_to is not None:
        where.append(when < _day_start(query.published_to + timedelta(days=1)))
    if query.seen_from is not None:
        where.append(review.first_seen_at >= _day_start(query.seen_from))
    if query.seen_to is not None:
        where.append(review.first_seen_at < _day_start(query.seen_to + timedelta(days=1)))
    search = _search(session, query.text, review, table,
                     few_rows=query.label is None and bool(query.status) and set(query.status) <= set(OPEN_STATUSES))
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
        if session.get_bind().dialect.name == "postgresql":
            # The counts' plan looks costly (a subquery per row, for incidents, that never runs): PostgreSQL would
            # compile it to machine code first (JIT), which took 220 of its 300 ms at a million reviews.
            session.execute(text("SET LOCAL jit = off"))
        sources = _source_table(session)
        where = _conditions(session, query, sources)
        # An incident (one complaint posted on several sites) is one row: its earliest post the query finds.
        earlier = aliased(Review, name="earlier_post")
        where.append(Review.incident_id.is_(None) | ~exists().where(
            earlier.incident_id == Review.incident_id, earlier.id < Review.id,
            *_conditions(session, query, sources, earlier, "earlier_post")))
        counts, total = _counts(session, where, sources)
        pages = max(1, -(-total // per_page))
        page = max(1, min(query.page, pages))
        when = _when()
        order: list[ColumnElement[Any]]
        if query.order == "newest":
            order = [when.desc(), Review.id.desc()]
        elif query.order == "waited" and not set(query.status or REVIEW_STATUSES) <= set(OPEN_STATUSES):
            order = [_waited_order(session, now).desc(), Review.id.asc()]
        else:  # oldest; and waited among open reviews only, whose wait runs until now: the oldest waited longest
            order = [when, Review.id.asc()]
        page_ids = list(session.scalars(
            select(Review.id).where(*where).order_by(*order).limit(per_page).offset((page - 1) * per_page)))
        loaded = {review.id: review for review in session.scalars(select(Review).where(Review.id.in_(page_ids)))}
        reviews = [loaded[review_id] for review_id in page_ids]
        posts = _incident_sizes(session, [r.incident_id for r in reviews if r.incident_id is not None])
        source_rows = {s.id: s for s in session.scalars(select(Source).where(
            Source.id.in_({r.source_id for r in reviews})))}
        sites = _Sites()
        deadline = config.alerting.reply_deadline
        result = [_row(review, source_rows[review.source_id], sources[review.source_id].business, sites, posts,
                       deadline, now) for review in reviews]
        site_names = {kind: sites.kind_name(kind) for kind in counts["site"]}
    return InboxPage(result, total, counts, page, per_page, pages, query, site_names)


def _stars_of(rating: float | None) -> int:
    return 0 if rating is None else max(0, min(5, int(rating)))


def _language_of(sentiment_lang: str | None, language: str | None) -> str | None:
    """The review's language: the scorer's when it determined one, else what the site said."""
    return sentiment_lang if sentiment_lang not in (None, "und") else language


def _counts(session: Session, where: list[ColumnElement[bool]],
            sources: dict[int, _SourceInfo]) -> tuple[dict[str, dict[str, int]], int]:
    """Every facet's counts over the matching reviews, in one read of their own columns (for the default view
    ix_review_inbox holds them all: the database reads that index alone).

    PostgreSQL counts them itself (GROUPING SETS: one pass, hashed). SQLite has neither grouping sets nor hashed
    grouping: each GROUP BY sorts every matching row (~40 ms per facet for the 50,000 open complaints of a million
    reviews; all of them at once 150 ms), so the values are read once and counted here, in C (Counter over
    itemgetter), which costs less.
    """
    language = func.coalesce(func.nullif(Review.sentiment_lang, literal_column("'und'")), Review.language)
    columns = (Review.source_id, Review.rating, Review.sentiment_label, Review.severity, language, Review.topics,
               Review.status, Review.assignee)
    by_column: list[Counter[Any]] = [Counter() for _ in columns]
    if session.get_bind().dialect.name == "postgresql":
        last = len(columns) - 1
        for grouping, *values, count in session.execute(
                select(func.grouping(*columns), *columns, func.count()).where(*where)
                .group_by(func.grouping_sets(*columns))):
            index = next(i for i in range(len(columns)) if not grouping >> (last - i) & 1)  # the column grouped
            by_column[index][values[index]] += count
    else:
        # the driver's own tuples: SQLAlchemy's rows cost 3-5 times the read itself here (no column needs a
        # result processor: integers, a float, text)
        rows = session.connection().execute(select(*columns).where(*where)).cursor.fetchall()
        by_column = [Counter(map(itemgetter(i), rows)) for i in range(len(columns))]
    by_source, ratings, labels, severities, languages, topic_sets, statuses, assignees = by_column
    counters: dict[str, Counter[str]] = {facet: Counter() for facet in FACETS}
    for source_id, count in by_source.items():
        source = sources.get(source_id)
        counters["business"][source.business if source else ""] += count
        counters["site"][source.kind if source else ""] += count
    for rating, count in ratings.items():
        counters["stars"][str(_stars_of(rating))] += count
    for topics, count in topic_sets.items():
        for topic in decode_topics(topics):
            counters["topic"][topic] += count
    for facet, counter in (("label", labels), ("severity", severities), ("language", languages),
                           ("status", statuses), ("assignee", assignees)):
        for value, count in counter.items():
            counters[facet][value or (UNSCORED if facet == "label" else "")] += count
    total = sum(by_source.values())
    return {facet: dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))
            for facet, counter in counters.items()}, total


def _incident_sizes(session: Session, incident_ids: list[int]) -> dict[int, int]:
    if not incident_ids:
        return {}
    return {incident: count for incident, count in session.execute(  # type: ignore[misc]  # not NULL: filtered
        select(Review.incident_id, func.count()).where(Review.incident_id.in_(set(incident_ids)))
        .group_by(Review.incident_id)
    )}


@cache
def _spiders() -> dict[str, type[ReviewSpider]]:
    """The spider registry, read once per process (load_spiders walks the packages every time)."""
    return load_spiders()


class _Sites:
    """Source → how people call its site (monitor.service.alerting.site_name's answer, without its registry walk)."""

    def __init__(self) -> None:
        self._spiders = _spiders()
        self._by_source: dict[int, tuple[str, bool]] = {}

    def kind_name(self, kind: str) -> str:
        spider = self._spiders.get(kind)
        return spider.site_name if spider is not None and spider.site_name else kind

    def of(self, source: Source, review_url: str | None) -> str:
        if source.id not in self._by_source:
            spider = self._spiders.get(source.kind)
            name = spider.site_name if spider is not None and spider.site_name else (
                urlsplit(source.url).hostname or source.kind)
            self._by_source[source.id] = (name, spider is not None and spider.many_sites)
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
    language = _language_of(review.sentiment_lang, review.language)
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
    snoozed_until: datetime | None  # while the reply reminder still waits; None once the snooze has ended
    history: ReviewHistory  # edits, removal, reappearance, with dates (monitor/service/reviews.review_history)
    alerts: list[AlertSent]
    draft_reply: str | None  # the team's edited draft, else the generated one in the review's language
    draft_edited: bool
    generated_draft: str | None  # the draft repwatch wrote (in the review's language, for its first topic)
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
        generated = Drafts(config.alerting.drafts).draft(
            language=alert.language, topics=[t.name for t in alert.topics], author=review.author,
            business=business.name, site=alert.site)
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
            # a snooze that has ended is no longer news
            snoozed_until=review.snoozed_until if review.snoozed_until and review.snoozed_until > now else None,
            history=history,
            alerts=[AlertSent(d.destination, d.kind, d.created_at, d.sent_at, d.status) for d in deliveries],
            draft_reply=review.draft_reply or generated, draft_edited=bool(review.draft_reply),
            generated_draft=generated,
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
