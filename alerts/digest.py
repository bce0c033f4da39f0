"""The weekly digest: numbers per business for an ISO week (queries over models/), its chart, HTML/text and email."""
from __future__ import annotations

import base64
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from alerts.email import DigestSettings, mailbox
from models.tables import Business, Review, Source
from models.textsafe import terminal_safe
from models.vocab import HANDLED_STATUSES

WEEK = timedelta(weeks=1)
CHART_WEEKS = 8
# Sentiment buckets in display order: name, colour as text (email), colour as a bar (chart). "mixed": 4-5★ with
# clearly negative text (monitor.rules.MIXED_LABEL), its own bucket, not "unscored".
LABEL_STYLES = {
    "neg": ("negative", "#d1242f", "#d1242f"),
    "mixed": ("mixed", "#bc4c00", "#bc4c00"),
    "neu": ("neutral", "#6e7781", "#9a9fa6"),
    "pos": ("positive", "#1f883d", "#1f883d"),
    "unscored": ("unscored", "#8c959f", "#d8dee4"),
}
LABELS = tuple(LABEL_STYLES)
# Rows fetched per list; rendering may show fewer to stay inside the size budget.
LIST_LIMIT = 30
EXCERPT_CHARS = 240
TOP_TOPICS = 5
# Gmail clips HTML bodies over ~102 KB behind a "message clipped" link.
HTML_BUDGET = 100_000
TEMPLATES = Path(__file__).parent / "templates"




class TopicFinder(Protocol):
    """Finds complaint topics in a review's text and names them (monitor.topics.TopicMatcher is one)."""

    def topics(self, text: str, lang: str | None) -> list[str]: ...

    def title(self, topic: str) -> str: ...


# --------------------------------------------------------------------------------------------------------------
# Weeks


@dataclass(frozen=True)
class IsoWeek:
    year: int
    week: int

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(date.fromisocalendar(self.year, self.week, 1), datetime.min.time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + WEEK

    def shifted(self, weeks: int) -> IsoWeek:
        return IsoWeek.containing(self.start + weeks * WEEK)

    @classmethod
    def containing(cls, moment: datetime) -> IsoWeek:
        year, week, _ = moment.astimezone(UTC).isocalendar()
        return cls(year, week)

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """'2026-W47' (ISO 8601 week; Monday 00:00 UTC to the next Monday)."""
        match = re.fullmatch(r"(\d{4})-?W(\d{1,2})", text.strip(), flags=re.IGNORECASE)
        if not match:
            raise ValueError(f"expected an ISO week like 2026-W47, got {text!r}")
        year, week = int(match[1]), int(match[2])
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"{year} has no week {week}") from None
        return cls(year, week)

    @classmethod
    def last_complete(cls, now: datetime) -> IsoWeek:
        return cls.containing(now).shifted(-1)


# --------------------------------------------------------------------------------------------------------------
# The numbers


@dataclass(frozen=True)
class SourceCount:
    source: str
    site: str  # the site's host name, e.g. www.trustpilot.com
    count: int


@dataclass(frozen=True)
class WeekPoint:
    week: IsoWeek
    counts: dict[str, int]  # label (LABELS) -> reviews
    average_rating: float | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ReviewLine:
    review_id: int
    source: str
    site: str
    url: str | None  # None when the stored URL is not http(s): never a link
    rating: float | None
    author: str
    excerpt: str  # title and body, cleaned and cut; still untrusted (escape when rendering HTML)
    published_at: datetime
    age: timedelta
    status: str
    severity: str | None
    replied: bool
    removed: bool


@dataclass(frozen=True)
class TopicCount:
    topic: str  # id, e.g. "delivery"
    title: str  # as shown, e.g. "Delivery"
    count: int  # this week's negative reviews that mention it (once per review)
    share: float  # of this week's negative reviews, 0–1; a review may mention several topics
    last_week: int  # last week's negative reviews that mention it

    @property
    def change(self) -> int:
        return self.count - self.last_week


@dataclass(frozen=True)
class SiteReply:
    site: str  # the site's host name, as in SourceCount
    replies: int  # replies that appeared on the site this week
    median: timedelta | None


@dataclass(frozen=True)
class Digest:
    business: str
    week: IsoWeek
    generated_at: datetime
    by_source: list[SourceCount]
    weeks: list[WeekPoint]  # CHART_WEEKS, oldest first; the last one is `week`
    negatives: list[ReviewLine]  # this week's, oldest first, at most LIST_LIMIT
    negatives_total: int
    unanswered: list[ReviewLine]  # open negatives up to the week's end, oldest first, at most LIST_LIMIT
    unanswered_total: int
    median_reply: timedelta | None  # over replies that appeared on the site this week
    replies: int
    topics: list[TopicCount] = field(default_factory=list)  # top complaint topics of this week's negatives
    # The same numbers by site, and the week's negatives answered within reply_deadline: what the web dashboard
    # shows besides the digest's (monitor/service/inbox.py `dashboard` reads them from this same computation).
    reply_by_site: list[SiteReply] = field(default_factory=list)
    reply_deadline: timedelta | None = None
    answered_in_time: int = 0  # of `answer_due`: first reply within reply_deadline of publication
    answer_due: int = 0  # the week's negatives answered, or whose deadline has passed by `generated_at`

    @property
    def answered_in_time_share(self) -> float | None:
        return self.answered_in_time / self.answer_due if self.answer_due else None

    @property
    def this_week(self) -> WeekPoint:
        return self.weeks[-1]

    @property
    def last_week(self) -> WeekPoint:
        return self.weeks[-2]

    @property
    def new_reviews(self) -> int:
        return self.this_week.total

    @property
    def sentiment(self) -> dict[str, int]:
        return self.this_week.counts


def _when():
    # A review belongs to the week it was published; a site that shows no date falls back to when we first saw it.
    return func.coalesce(Review.published_at, Review.first_seen_at)


def build_digest(
    session: Session, business: str, week: IsoWeek, *, topics: TopicFinder, now: datetime | None = None,
    reply_deadline: timedelta | None = None,
) -> Digest:
    """Every number of one business's digest, read from the database (SQLite or PostgreSQL).

    `topics` finds complaint topics in the negative reviews (the built-ins and config.yaml's `topics:`). The web
    dashboard is this same digest for the week it is asked about (see `reply_by_site`, `answered_in_time`).
    """
    now = now or datetime.now(UTC)
    business_id = session.scalar(select(Business.id).where(Business.name == business))
    if business_id is None:  # configured but never crawled: an honest empty digest
        return Digest(business, week, now, [], _empty_weeks(week), [], 0, [], 0, None, 0)
    when = _when()
    mine = Source.business_id == business_id

    counts = func.count(Review.id)
    by_source = [
        SourceCount(name, _site(url), count)
        for name, url, count in session.execute(
            select(Source.name, Source.url, counts)
            .outerjoin(Review, and_(Review.source_id == Source.id, when >= week.start, when < week.end))
            .where(mine)
            .group_by(Source.id, Source.name, Source.url)
            .order_by(counts.desc(), Source.name)
        )
    ]

    negative_this_week = _negative_in(mine, week)
    unanswered = and_(
        mine,
        Review.sentiment_label == "neg",
        Review.reply_body.is_(None),
        Review.reply_published_at.is_(None),
        Review.status.not_in(HANDLED_STATUSES),  # the same rule as `repwatch reviews --unanswered`
        Review.removed_at.is_(None),  # gone from the site: nothing left to reply to
        Review.severity.is_not(None),  # news when found, not a first crawl's history (as `reviews --unanswered`)
        when < week.end,
    )
    negatives, negatives_total = _review_lines(session, negative_this_week, now)
    open_negatives, open_total = _review_lines(session, unanswered, now)

    reply_pairs = session.execute(
        select(Review.published_at, Review.reply_published_at, Review.url, Source.url)
        .join(Source)
        .where(mine, Review.published_at.is_not(None), Review.reply_published_at >= week.start, Review.reply_published_at < week.end)
    ).all()
    # A site showing only dates can put a same-day reply "before" the review: count it as immediate.
    waits = [max((replied - published).total_seconds(), 0.0) for published, replied, _, _ in reply_pairs
             if published is not None and replied is not None]  # the query keeps only both
    median_reply = timedelta(seconds=statistics.median(waits)) if waits else None
    by_site: dict[str, list[float]] = {}
    for published, replied, review_url, source_url in reply_pairs:
        if published is not None and replied is not None:
            site = _site(review_url) or _site(source_url)
            by_site.setdefault(site, []).append(max((replied - published).total_seconds(), 0.0))
    reply_by_site = [SiteReply(site, len(site_waits), timedelta(seconds=statistics.median(site_waits)))
                     for site, site_waits in sorted(by_site.items(), key=lambda item: (-len(item[1]), item[0]))]
    in_time, due = _answered_in_time(session, negative_this_week, reply_deadline, now)

    return Digest(
        business=business,
        week=week,
        generated_at=now,
        by_source=by_source,
        weeks=_weekly(session, business_id, week),
        negatives=negatives,
        negatives_total=negatives_total,
        unanswered=open_negatives,
        unanswered_total=open_total,
        median_reply=median_reply,
        replies=len(waits),
        topics=_top_topics(session, mine, week, negatives_total, topics),
        reply_by_site=reply_by_site,
        reply_deadline=reply_deadline,
        answered_in_time=in_time,
        answer_due=due,
    )


def _answered_in_time(session: Session, condition: Any, deadline: timedelta | None,
                      now: datetime) -> tuple[int, int]:
    """(answered within the deadline, answered or past their deadline) among the reviews `condition` selects.

    Answered = the first reply (the team's `replied`, or the business's reply the crawl saw on the site); a
    review still inside its deadline and unanswered is not counted either way yet.
    """
    if deadline is None:
        return 0, 0
    rows = session.execute(
        select(_when(), Review.first_reply_at, Review.reply_published_at).join(Source).where(condition)
    ).all()
    in_time = due = 0
    for published, first_reply, site_reply in rows:
        replied = min((t for t in (first_reply, site_reply) if t is not None), default=None)
        if replied is not None:
            due += 1
            in_time += replied - published <= deadline
        elif published + deadline <= now:
            due += 1
    return in_time, due


def _negative_in(mine: Any, week: IsoWeek) -> Any:
    when = _when()
    return and_(mine, Review.sentiment_label == "neg", when >= week.start, when < week.end)


def _top_topics(session: Session, mine: Any, week: IsoWeek, negatives: int, matcher: TopicFinder) -> list[TopicCount]:
    """The week's most mentioned complaint topics among its negative reviews, against last week's counts."""
    if not negatives:
        return []
    this_week = _topic_counts(session, _negative_in(mine, week), matcher)
    last_week = _topic_counts(session, _negative_in(mine, week.shifted(-1)), matcher)
    ranked = sorted(this_week.items(), key=lambda item: (-item[1], item[0]))[:TOP_TOPICS]
    return [
        TopicCount(topic, matcher.title(topic), count, count / negatives, last_week.get(topic, 0))
        for topic, count in ranked
    ]


def _topic_counts(session: Session, condition: Any, matcher: TopicFinder) -> Counter[str]:
    """Reviews per topic: a review counts once per topic however often it names it."""
    rows = session.execute(
        select(Review.title, Review.body, func.coalesce(Review.sentiment_lang, Review.language))
        .join(Source)
        .where(condition)
    )
    counts: Counter[str] = Counter()
    for title, body, lang in rows:
        text = f"{title}\n{body}" if title else body
        counts.update(set(matcher.topics(text or "", lang)))
    return counts


def _weekly(session: Session, business_id: int, week: IsoWeek) -> list[WeekPoint]:
    """Reviews per week and label, and rating sums, for the chart's weeks: one grouped query."""
    weeks = [week.shifted(i - CHART_WEEKS + 1) for i in range(CHART_WEEKS)]
    when = _when()
    bucket = case(*[(when < w.end, index) for index, w in enumerate(weeks)])
    label = case((Review.sentiment_label.in_(LABELS[:-1]), Review.sentiment_label), else_="unscored")
    # Grouped in an outer query: PostgreSQL does not match a CASE with bound parameters in SELECT and GROUP BY.
    rows = (
        select(bucket.label("bucket"), label.label("label"), Review.rating.label("rating"))
        .join(Source)
        .where(Source.business_id == business_id, when >= weeks[0].start, when < week.end)
        .subquery()
    )
    grouped = session.execute(
        select(rows.c.bucket, rows.c.label, func.count(), func.sum(rows.c.rating), func.count(rows.c.rating))
        .group_by(rows.c.bucket, rows.c.label)
    ).all()
    counts = [dict.fromkeys(LABELS, 0) for _ in weeks]
    rating_sum = [0.0] * len(weeks)
    rated = [0] * len(weeks)
    for index, label_, count, total, n_rated in grouped:
        counts[index][label_] += count
        rating_sum[index] += total or 0.0
        rated[index] += n_rated
    return [
        WeekPoint(w, counts[i], rating_sum[i] / rated[i] if rated[i] else None) for i, w in enumerate(weeks)
    ]


def _empty_weeks(week: IsoWeek) -> list[WeekPoint]:
    return [WeekPoint(week.shifted(i - CHART_WEEKS + 1), dict.fromkeys(LABELS, 0), None) for i in range(CHART_WEEKS)]


def _review_lines(session: Session, condition: Any, now: datetime) -> tuple[list[ReviewLine], int]:
    when = _when()
    total = session.scalar(select(func.count(Review.id)).join(Source).where(condition)) or 0
    rows = session.execute(
        select(Review, Source.name, Source.url, when.label("when"))
        .join(Source)
        .where(condition)
        .order_by(when, Review.id)
        .limit(LIST_LIMIT)
    ).all()
    return [_line(review, name, source_url, published, now) for review, name, source_url, published in rows], total


def _line(review: Review, source: str, source_url: str, published: datetime, now: datetime) -> ReviewLine:
    text = f"{review.title}: {review.body}" if review.title else review.body
    return ReviewLine(
        review_id=review.id,
        source=source,
        site=_site(review.url) or _site(source_url),
        url=safe_link(review.url),
        rating=review.rating,
        author=_clean(review.author, 60) or "anonymous",
        excerpt=_clean(text, EXCERPT_CHARS),
        published_at=published,
        age=max(now - published, timedelta(0)),
        status=review.status,
        severity=review.severity,
        replied=review.reply_body is not None or review.reply_published_at is not None,
        removed=review.removed_at is not None,
    )


def _clean(text: str | None, limit: int) -> str:
    """Untrusted site text on one line, without control or bidi characters, cut to `limit`."""
    return terminal_safe(" ".join((text or "").split()), limit)


def safe_link(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link (a scraped `javascript:` URL must never become a link)."""
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _site(url: str | None) -> str:
    link = safe_link(url)
    return (urlsplit(link).hostname or "") if link else ""


# --------------------------------------------------------------------------------------------------------------
# Chart


def render_chart(digest: Digest) -> bytes:
    """PNG: reviews per week stacked by sentiment, with the average rating as a line (matplotlib, Agg, no pyplot)."""
    # matplotlib takes about a second to import: only a digest being sent or previewed pays for it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.6, 2.6), dpi=200)  # shown at 560 px wide: sharp on high-density screens
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = list(range(len(digest.weeks)))
    bottom = [0] * len(x)
    for label, (name, _, colour) in LABEL_STYLES.items():
        heights = [point.counts[label] for point in digest.weeks]
        axes.bar(x, heights, bottom=bottom, color=colour, width=0.65, label=name)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_xticks(x, [f"W{point.week.week:02d}" for point in digest.weeks], fontsize=7)
    axes.tick_params(axis="y", labelsize=7)
    axes.set_ylabel("reviews", fontsize=7)
    axes.set_ylim(0, max(max(bottom), 1) * 1.15)
    axes.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # MaxNLocator takes it; the stub knows only Locator
    axes.spines[["top"]].set_visible(False)

    rating = axes.twinx()
    rating.plot(
        x, [p.average_rating if p.average_rating is not None else float("nan") for p in digest.weeks],
        color="#0969da", marker="o", markersize=3, linewidth=1.5, label="average rating",
    )
    rating.set_ylim(0.8, 5.2)
    rating.set_yticks([1, 2, 3, 4, 5])
    rating.tick_params(axis="y", labelsize=7, colors="#0969da")
    rating.set_ylabel("★ average", fontsize=7, color="#0969da")
    rating.spines[["top"]].set_visible(False)
    handles = axes.get_legend_handles_labels()[0] + rating.get_legend_handles_labels()[0]
    figure.legend(handles=handles, loc="upper center", ncols=5, fontsize=6.5, frameon=False)
    figure.subplots_adjust(left=0.08, right=0.92, bottom=0.12, top=0.86)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------------------
# Rendering


def _environment():
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),  # review text is untrusted
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        stars=format_stars, age=format_age, day=lambda d: d.strftime("%a %d %b"), percent=format_percent,
        change=format_change,
    )
    return env


def format_stars(rating: float | None) -> str:
    return "–" if rating is None else f"{rating:.1f}".removesuffix(".0") + "★"


def format_age(age: timedelta | None) -> str:
    if age is None:
        return "–"
    hours = age.total_seconds() / 3600
    if hours < 1:
        return "<1 h"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


def format_percent(share: float) -> str:
    return f"{share:.0%}"


def format_change(change: int) -> str:
    """Against last week's count: '+2', '-1', 'same'."""
    return "same" if change == 0 else f"{change:+d}"


def format_average(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _context(digest: Digest, shown: int) -> dict[str, Any]:
    this, last = digest.this_week.average_rating, digest.last_week.average_rating
    change = None if this is None or last is None else this - last
    return {
        "d": digest,
        "week_start": digest.week.start,
        "week_last_day": digest.week.end - timedelta(days=1),
        "average": format_average(this),
        "average_last": format_average(last),
        "average_change": None if change is None else f"{change:+.2f}",
        "average_direction": None if change is None else ("up" if change > 0.005 else "down" if change < -0.005 else "same"),
        "negatives": digest.negatives[:shown],
        "negatives_hidden": digest.negatives_total - min(shown, len(digest.negatives)),
        "unanswered": digest.unanswered[:shown],
        "unanswered_hidden": digest.unanswered_total - min(shown, len(digest.unanswered)),
        "median_reply": format_age(digest.median_reply) if digest.median_reply is not None else None,
        "sentiment": [(label, digest.sentiment[label]) for label in LABELS],
        "label_styles": LABEL_STYLES,
        "handled_statuses": HANDLED_STATUSES,
    }


def render_html(digest: Digest, chart_src: str) -> str:
    """The HTML part, CSS inline (Gmail drops <style>); lists shrink until it fits HTML_BUDGET."""
    template = _environment().get_template("digest.html.j2")
    html = ""
    for shown in (LIST_LIMIT, 15, 5, 0):
        html = template.render(**_context(digest, shown), chart_src=chart_src)
        if len(html.encode()) <= HTML_BUDGET:
            break
    return html


def render_text(digest: Digest) -> str:
    return _environment().get_template("digest.txt.j2").render(**_context(digest, LIST_LIMIT))


def subject_for(digest: Digest, template: str) -> str:
    return " ".join(template.format(business=digest.business, week=digest.week.label).split())


def chart_data_uri(png: bytes) -> str:
    """For a preview file opened in a browser (an email uses cid: instead)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_digest_email(digest: Digest, settings: DigestSettings, chart_png: bytes | None = None) -> EmailMessage:
    """multipart/alternative: text, then multipart/related (HTML + the chart as image/png by Content-ID)."""
    chart_png = render_chart(digest) if chart_png is None else chart_png
    sender = mailbox(settings.sender)
    chart_cid = make_msgid("chart", domain=sender.domain or "repwatch.invalid")
    message = EmailMessage()
    message["Subject"] = subject_for(digest, settings.subject)
    message["From"] = sender
    message["To"] = [mailbox(address) for address in settings.to]
    message["Date"] = format_datetime(digest.generated_at)
    message["Message-ID"] = make_msgid("digest", domain=sender.domain or "repwatch.invalid")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the robot
    message.set_content(render_text(digest), cte="quoted-printable")
    message.add_alternative(render_html(digest, "cid:" + chart_cid[1:-1]), subtype="html", cte="quoted-printable")
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)  # just added above
    html_part.add_related(chart_png, maintype="image", subtype="png", cid=chart_cid, filename="reviews-by-week.png", disposition="inline")
    return message
