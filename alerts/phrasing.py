"""The words notifiers share: stars, durations, an alert's facts and headline, and how notices are summed up."""
from __future__ import annotations

import math
from datetime import timedelta

from alerts.base import Alert, FloodSummary, Reminder, SourceHealth, Spike
from alerts.text import visible_text, without_surrogates
from models.vocab import SEVERITIES, format_when, iso_utc

SEVERITY_ICONS = {"critical": "🔴", "high": "🟠", "normal": "🟡"}
SUMMARY_COMMAND = "repwatch reviews --negative"
EXCERPT_MAX = 160  # a review in a list: enough to recognise it, short enough to list many
CHANGE_MAX = 300
CHANGES_SHOWN = 10
SPIKE_EXAMPLES_SHOWN = 3

HEALTH_HEADLINES = {
    "bad": "🛑 {source} ({site}) is {state}: repwatch cannot see its reviews",
    "recovered": "✅ {source} ({site}) is crawled again",
    "silent": "🔇 {source} ({site}): no new reviews for {days:.0f} days",
}


def stars(rating: float | None) -> str:
    """★★☆☆☆ 2/5, or "no rating"."""
    if rating is None or not math.isfinite(rating):
        return "no rating"
    filled = min(5, max(0, round(rating)))
    return "★" * filled + "☆" * (5 - filled) + f" {rating:g}/5"


def short_rating(rating: float | None) -> str:
    if rating is None or not math.isfinite(rating):
        return "Unrated"
    return f"{rating:g}★"


def duration(delta: timedelta) -> str:
    """'25 min', '5 h', '2 days 5 h'."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours <= 48:  # "48 h" reads better than "2 days" for a deadline set in hours
        return f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days" + (f" {hours} h" if hours else "")


def per_day(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "?"


def sentiment(alert: Alert) -> str | None:
    label = visible_text(alert.label, single_line=True)
    if not label:
        return None
    if alert.score is not None and math.isfinite(alert.score):
        return f"{label} ({alert.score:+.2f})"
    return label


def alert_facts(alert: Alert, *, severity: str, site: str | None, business: str | None) -> list[tuple[str, str]]:
    """The labelled facts every alert shows, in this order, empty ones left out (every notifier alike)."""
    facts = [
        ("Rating", stars(alert.rating)),
        ("Severity", severity),
        ("Site", site),
        ("Business", business),
        ("Author", visible_text(alert.author, single_line=True) or None),
        ("Published", format_when(alert.published_at)),
        ("Sentiment", sentiment(alert)),
        ("Language", visible_text(alert.language, single_line=True) or None),
        ("Topics", visible_text(", ".join(topic.title for topic in alert.topics), single_line=True) or None),
        ("Also posted on", also_posted_on(alert) or None),
        ("App version", visible_text(alert.app_version, single_line=True) or None),
        ("Votes", None if alert.votes is None else f"{alert.votes:,}"),
    ]
    return [(label, value) for label, value in facts if value]


def also_posted_on(alert: Alert) -> str:
    """'Trustpilot, Google (incident #4)': where else the same complaint was posted; '' when nowhere."""
    sites = ", ".join(visible_text(site, single_line=True) for site in alert.also_posted_on)
    if not sites:
        return ""
    return f"{sites} (incident #{alert.incident_id})" if alert.incident_id is not None else sites


def who(alert: Alert) -> tuple[str, str, str, str]:
    """site, business, severity and its icon, as every alert names them."""
    site = visible_text(alert.site, single_line=True) or "unknown site"
    business = visible_text(alert.business, single_line=True) or "unknown business"
    severity = visible_text(alert.severity, single_line=True).lower() or "normal"
    return site, business, severity, SEVERITY_ICONS.get(severity, "⚪")


def headline(alert: Alert) -> str:
    """'🟠 1★ review · Acme Bakery · Trustpilot'."""
    site, business, _, icon = who(alert)
    return f"{icon} {short_rating(alert.rating)} review · {business} · {site}"


def excerpt(alert: Alert) -> str:
    """Title and body on one line (untrusted: the caller escapes and cuts it)."""
    title = visible_text(alert.title, single_line=True)
    body = visible_text(alert.body, single_line=True)
    return (f"{title}: {body}" if title and body else title or body) or "(no text)"


def waiting(reminder: Reminder) -> str:
    late = reminder.waiting - reminder.deadline
    overdue = f" (overdue by {duration(late)})" if late > timedelta(0) else ""
    return f"No reply on the site after {duration(reminder.waiting)}; the reply deadline is {duration(reminder.deadline)}{overdue}."


def spike_scope(spike: Spike) -> str:
    business = visible_text(spike.business, single_line=True) or "unknown business"
    site = visible_text(spike.site, single_line=True)
    return f"{business} · {site}" if site else f"{business} · all sources"


def spike_facts(spike: Spike) -> tuple[str, str]:
    """How many, and what is usual."""
    count = f"{spike.count} negative review{'s' if spike.count != 1 else ''} in the 24 h up to {format_when(spike.until)}."
    usual = (f"Usually {per_day(spike.mean)} ± {per_day(spike.sd)} a day over the 7 days before; "
             f"the alert threshold is {per_day(spike.threshold)}.")
    return count, usual


def tally(pairs: tuple[tuple[str, int], ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, count in pairs:
        key = without_surrogates(name) or ""
        counts[key] = counts.get(key, 0) + count  # summed, not overwritten, should a name come twice
    return counts


def severities(summary: FloodSummary) -> str:
    """'🔴 1 critical · 🟠 2 high'."""
    counts = tally(summary.by_severity)
    known = [name for name in SEVERITIES if counts.get(name)] + [name for name in counts if name not in SEVERITIES]
    return " · ".join(f"{SEVERITY_ICONS.get(name, '⚪')} {counts[name]} {visible_text(name, single_line=True)}"
                      for name in known if counts[name])


def businesses(summary: FloodSummary) -> str:
    counts = tally(summary.by_business)
    return " · ".join(f"{visible_text(name, single_line=True) or 'unknown business'}: {count}" for name, count in counts.items())


def top_severity(summary: FloodSummary) -> str:
    counts = tally(summary.by_severity)
    return next((name for name in SEVERITIES if counts.get(name)), "normal")


def summary_title(summary: FloodSummary) -> str:
    return f"📣 {summary.count} new review alert{'s' if summary.count != 1 else ''} in one run"


def not_listed(summary: FloodSummary, shown: int) -> int:
    return max(summary.count, len(summary.items)) - shown


def health_headline(health: SourceHealth) -> str:
    return HEALTH_HEADLINES[health.event].format(
        source=health.source, site=health.site, state=health.state, days=health.silent_days or 0
    )


def health_lines(health: SourceHealth) -> tuple[str, list[str]]:
    """The headline and a few lines, each on one line, for a card or an email."""
    lines = [f"Business: {health.business}"]
    if health.event == "bad":
        lines += [f"{health.failures} crawls in a row failed. Last error: {health.error or 'unknown'}",
                  "Last good crawl: " + (iso_utc(health.last_success_at) or "never")]
    elif health.event == "silent":
        lines.append(f"It usually gets about {health.usual_per_week or 0:.1f} new reviews a week; check the page.")
    return visible_text(health_headline(health), single_line=True), [visible_text(line, single_line=True) for line in lines]
