"""How values read on the inbox's pages: times waited, stars, statuses, first lines (Jinja filters; no markup here)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jinja2

from models.vocab import OPEN_STATUSES
from monitor.service.inbox import InboxQuery
from monitor.web.security import web_url

STATUS_WORDS = {"new": "new", "assigned": "assigned", "replied": "replied", "resolved": "resolved",
                "not_complaint": "not a complaint"}
ACTION_WORDS = {"assign": "assigned", "status": "status", "note": "note", "draft": "draft", "snooze": "snoozed",
                "label": "label", "link": "linked"}


def span(delta: timedelta | None) -> str:
    """2 d 4 h, 3 h 12 m, 5 m: the two largest units."""
    if delta is None:
        return "—"
    seconds = int(max(delta.total_seconds(), 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    return f"{minutes} m"


def when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def stars(rating: float | None) -> str:
    """★★☆☆☆ for 2 of 5; "no stars" for a post without a rating (a mention, a feed item)."""
    if rating is None:
        return "no stars"
    full = max(0, min(5, round(rating)))
    return "★" * full + "☆" * (5 - full)


def first_lines(text: str | None, lines: int = 3, limit: int = 240) -> str:
    text = " ".join((text or "").splitlines()[:lines]).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def status_word(status: str | None) -> str:
    return STATUS_WORDS.get(status or "", status or "—")


def install_filters(env: jinja2.Environment, clock: Callable[[], datetime]) -> None:
    env.filters.update(span=span, when=when, stars=stars, first_lines=first_lines, status_word=status_word,
                       web_url=web_url, action_word=lambda action: ACTION_WORDS.get(action, action))
    env.globals.update(now=clock, STATUS_WORDS=STATUS_WORDS)


def describe_event(event: Any) -> str:
    """One trail entry in a sentence: "ana (web) assign: — → bob, 2026-03-02 12:00 UTC"."""
    before = event.before if event.before is not None else "—"
    after = event.after if event.after is not None else "—"
    change = after if event.action == "note" else f"{before} → {after}"
    if len(change) > 200:
        change = change[:199] + "…"
    return f"{event.actor} ({event.via}) {event.action}: {change}, {when(event.at)}"


# --- the inbox's filter form: GET parameters ⇄ the service's InboxQuery --------------------------------------

OPEN = "open"  # the status filter's default: new and assigned
EVERY = "all"
NOBODY = "nobody"
ME = "me"


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class InboxForm:
    """The filters as the form shows them (strings, "" for any)."""

    business: str = ""
    site: str = ""
    stars: tuple[str, ...] = ()
    label: str = ""
    severity: str = ""
    language: str = ""
    topic: str = ""
    status: str = OPEN
    assignee: str = ""
    published_from: str = ""
    published_to: str = ""
    seen_from: str = ""
    seen_to: str = ""
    q: str = ""
    order: str = "oldest"
    baseline: bool = False
    page: int = 1
    per_page: int = 50
    me: str = ""

    @classmethod
    def from_params(cls, params: Any, *, me: str) -> InboxForm:
        def one(name: str, default: str = "") -> str:
            return str(params.get(name) or default).strip()[:500]

        def number(name: str, default: int) -> int:
            try:
                return max(1, int(one(name, str(default))))
            except ValueError:
                return default

        stars = tuple(s for s in params.getlist("stars") if s in ("0", "1", "2", "3", "4", "5"))
        return cls(business=one("business"), site=one("site"), stars=stars, label=one("label"),
                   severity=one("severity"), language=one("language"), topic=one("topic"),
                   status=one("status", OPEN), assignee=one("assignee"), published_from=one("published_from"),
                   published_to=one("published_to"), seen_from=one("seen_from"), seen_to=one("seen_to"),
                   q=one("q"), order=one("order", "oldest"), baseline=bool(params.get("baseline")),
                   page=number("page", 1), per_page=number("per_page", 50), me=me)

    def query(self) -> InboxQuery:
        status: tuple[str, ...]
        if self.status == OPEN:
            status = OPEN_STATUSES
        elif self.status == EVERY:
            status = ()
        else:
            status = (self.status,)
        assignee: str | None = None
        if self.assignee == NOBODY:
            assignee = ""
        elif self.assignee == ME:
            assignee = self.me
        elif self.assignee:
            assignee = self.assignee
        return InboxQuery(
            business=self.business or None, site=self.site or None, stars=tuple(int(s) for s in self.stars),
            label=self.label or None, severity=self.severity or None, language=self.language or None,
            topic=self.topic or None, status=status, assignee=assignee,
            published_from=_date(self.published_from), published_to=_date(self.published_to),
            seen_from=_date(self.seen_from), seen_to=_date(self.seen_to), text=self.q or None,
            include_baseline=self.baseline, page=self.page, per_page=self.per_page, order=self.order)

    @property
    def filtered(self) -> bool:
        return self.query() != InboxQuery(page=self.page, per_page=self.per_page, order=self.order)


def page_url(params: Any, page: int) -> str:
    """This inbox view's URL at another page."""
    kept = [(k, v) for k, v in params.multi_items() if k != "page"]
    return "/?" + urlencode([*kept, ("page", str(page))])


@dataclass
class RowGroup:
    """An inbox line: a review, and the other posts of its incident found on the same page."""

    row: Any
    others: list[Any] = field(default_factory=list)


def incident_groups(rows: Sequence[Any]) -> list[RowGroup]:
    """One line per incident: its first post on the page, the others listed under it."""
    groups: list[RowGroup] = []
    by_incident: dict[int, RowGroup] = {}
    for row in rows:
        if row.incident_id is not None and row.incident_id in by_incident:
            by_incident[row.incident_id].others.append(row)
            continue
        group = RowGroup(row)
        groups.append(group)
        if row.incident_id is not None:
            by_incident[row.incident_id] = group
    return groups


# --- the dashboard's 8-week chart: SVG by attributes (the CSP allows no inline style) ------------------------

CHART_LABELS = (("neg", "negative"), ("mixed", "mixed"), ("neu", "neutral"), ("pos", "positive"))


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label: str  # CSS class: the sentiment label
    title: str


def week_chart(weeks: Sequence[Any], *, height: int = 160, bar: int = 44, gap: int = 16) -> dict[str, Any]:
    """Stacked bars per week (negative at the bottom), scaled to the busiest week."""
    tallest = max([sum(w.counts.values()) for w in weeks] + [1])
    bars: list[Bar] = []
    ticks = []
    for index, week in enumerate(weeks):
        x = gap + index * (bar + gap)
        y = height
        for label, word in CHART_LABELS:
            count = int(week.counts.get(label, 0))
            if not count:
                continue
            size = max(1, round(count / tallest * (height - 10)))
            y -= size
            bars.append(Bar(x, y, bar, size, label, f"{week.week.label}: {count} {word}"))
        ticks.append({"x": x + bar // 2, "label": week.week.label.split("-")[1], "total": sum(week.counts.values())})
    return {"bars": bars, "ticks": ticks, "width": gap + len(weeks) * (bar + gap), "height": height}
