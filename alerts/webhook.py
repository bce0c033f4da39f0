"""Webhook notifier: each alert or notice POSTed with httpx as repwatch's own JSON, a Microsoft Teams card or a Discord embed."""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from alerts.base import (
    Alert,
    AlertUpdate,
    DeliveryError,
    FloodSummary,
    Notice,
    Notifier,
    Reminder,
    SendResult,
    SourceHealth,
    Spike,
    Target,
)
from alerts.slack import (
    DEFAULT_RETRY_AFTER,
    HEALTH_HEADLINES,
    MAX_RETRY_AFTER,
    PACER,
    SEVERITY_ICONS,
    ZERO_WIDTH_SPACE,
    alert_facts,
    clean_text,
    format_when,
    parse_retry_after,
    safe_review_url,
    short_rating,
    slack_len,
)

SCHEMA_VERSION = 1
USER_AGENT = "repwatch-webhook/1"
# Sends to one URL are spaced this far apart unless `min_interval` says otherwise. Discord allows about 30
# messages a minute per channel; Teams about 4 a second per webhook; an unknown JSON endpoint gets Slack's pace.
DEFAULT_INTERVALS = {"json": 1.0, "teams": 1.0, "discord": 2.0}
# Only the start of an answer is read: it decides retry_after or a hint, and a hostile endpoint can't flood memory.
RESPONSE_READ_MAX = 64 * 1024
# A server's own words shown in an error (Discord's JSON `message`) are cut to this.
DETAIL_SHOWN = 120

# Discord's limits (discord.com/developers/docs/resources/message#embed-object-embed-limits), counted here in
# UTF-16 units (slack_len): the stricter count, so an emoji-heavy review cannot slip past a limit.
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_FOOTER_MAX = 2048
DISCORD_EMBED_TOTAL_MAX = 6000
DISCORD_URL_MAX = 2048
# Short facts (rating, author, ...) get less than a field may hold, so the review body keeps most of the 6000.
DISCORD_FACT_MAX = 256
DISCORD_COLOURS = {"critical": 0xD7263D, "high": 0xF18F01, "normal": 0xF6C90E}

# Teams rejects a message over about 28 KB; the text limits below keep the card well under it even for
# 3-byte-per-character scripts (measured in test_webhook: a maximal CJK review).
TEAMS_PAYLOAD_MAX = 28_000
TEAMS_BODY_MAX = 3000
TEAMS_DRAFT_MAX = 2000
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # httpx encodes header values as ASCII; no CR/LF (no injection)
# Headers repwatch sets itself: a config value would break the request or lie about the body.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
_SURROGATE = re.compile("[\ud800-\udfff]")


class WebhookConfig(BaseModel):
    """`url` (a secret: webhook URLs carry tokens), `format`, optional `headers` (values are secrets)."""

    # Without hide_input_in_errors pydantic would print the URL or a header value in a config error.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    kind: Literal["webhook"]
    url: SecretStr
    format: Literal["json", "teams", "discord"] = "json"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(10, gt=0, le=120)
    min_interval: float | None = Field(None, ge=0, le=60, description="seconds between sends; default 2 for discord, else 1")

    @field_validator("url")
    @classmethod
    def _url_shape(cls, url: SecretStr) -> SecretStr:
        text = url.get_secret_value().strip()
        try:
            parts = urlsplit(text)
            hostname, _ = parts.hostname, parts.port  # .port raises on a port out of range
        except ValueError:
            raise ValueError("is not a URL (check the host and port)") from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise ValueError("must be an http(s) URL like https://hooks.example.com/...")
        if re.search(r"[\s\x00-\x1f\x7f]", text):
            raise ValueError("must not contain spaces or control characters")
        try:
            httpx.Request("POST", text)  # httpx's own checks (IDNA host names), here rather than at the first alert
        except (httpx.InvalidURL, UnicodeError, ValueError):
            raise ValueError("is not a URL httpx can use (check the host name)") from None
        return SecretStr(text)

    @field_validator("headers")
    @classmethod
    def _header_shape(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by repwatch; remove it")
            # The value is a secret: the message names the header, never the value.
            if not _HEADER_VALUE.fullmatch(value.get_secret_value()):
                raise ValueError(f"the value of {name!r} must be one line of printable ASCII")
        return headers

    def interval(self) -> float:
        return DEFAULT_INTERVALS[self.format] if self.min_interval is None else self.min_interval


# --------------------------------------------------------------------------------------------------------------
# Bodies


def _utc_iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _number(value: float | None) -> float | None:
    # NaN and infinities are not JSON; a strict parser on the other side would reject the whole alert.
    return value if value is not None and math.isfinite(value) else None


def _data(text: str | None) -> str | None:
    # Text as found on the site, except lone surrogates (from "\ud800" in a page's JSON-LD): not encodable as UTF-8.
    return None if text is None else _SURROGATE.sub("\ufffd", text)


def review_object(alert: Alert) -> dict[str, Any]:
    """One review as the JSON schema carries it: a type "alert" body, and each review inside the other types.

    Text fields carry the review's text as found (untrusted: escape it wherever you display it); `url` is the
    review's http(s) link, or null when the site gave something else (never javascript:, file:, ...).
    """
    return {
        "review_id": alert.review_id,
        "business": _data(alert.business),
        "source": _data(alert.source),
        "site": _data(alert.site),
        "url": safe_review_url(alert.url),
        "rating": _number(alert.rating),
        "author": _data(alert.author),
        "title": _data(alert.title),
        "body": _data(alert.body),
        "published_at": _utc_iso(alert.published_at),
        "language": _data(alert.language),
        "label": _data(alert.label),
        "score": _number(alert.score),
        "severity": _data(alert.severity),
        "why": _data(alert.why),
        "draft_reply": _data(alert.draft_reply),
        "topics": [_data(topic) for topic in alert.topics],
    }


def _envelope(kind: str) -> dict[str, Any]:
    # Every body says its schema version and type first; new fields and types are additions, never changes.
    return {"repwatch_version": SCHEMA_VERSION, "type": kind}


def build_json(alert: Alert) -> dict[str, Any]:
    """repwatch's own webhook schema, version 1, type "alert" (documented in the WebhookNotifier docstring and README)."""
    return _envelope("alert") | review_object(alert)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _tally(pairs: tuple[tuple[str, int], ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, count in pairs:
        key = _data(name) or ""
        counts[key] = counts.get(key, 0) + count  # summed, not overwritten, should a name come twice
    return counts


def json_update(update: AlertUpdate) -> dict[str, Any]:
    return _envelope("update") | {
        "review": review_object(update.alert),
        "changes": [_data(line) for line in update.changes],
        "settled": update.settled,
    }


def json_reminder(reminder: Reminder) -> dict[str, Any]:
    return _envelope("reminder") | {
        "review": review_object(reminder.alert),
        "waiting_hours": _hours(reminder.waiting),
        "deadline_hours": _hours(reminder.deadline),
    }


def json_spike(spike: Spike) -> dict[str, Any]:
    return _envelope("spike") | {
        "business": _data(spike.business),
        "source": _data(spike.source),
        "site": _data(spike.site),
        "count": spike.count,
        "mean": _number(spike.mean),
        "sd": _number(spike.sd),
        "threshold": _number(spike.threshold),
        "until": _utc_iso(spike.until),
        "examples": [review_object(alert) for alert in spike.examples],
    }


def json_summary(summary: FloodSummary) -> dict[str, Any]:
    # Every item, not a sample: a webhook has no threads, so the alerts are not sent one by one after this.
    return _envelope("summary") | {
        "count": summary.count,
        "by_business": _tally(summary.by_business),
        "by_severity": _tally(summary.by_severity),
        "items": [review_object(alert) for alert in summary.items],
    }


def _fit(pieces: list[str], limit: int, suffix: str = "…") -> str:
    """The pieces joined, cut between pieces so that the result plus `suffix` is at most `limit` UTF-16 units.

    A piece is one source character after escaping, so a cut never splits an escape (a lone backslash at the end
    of a Discord text would escape our suffix, or worse, the next piece of markup).
    """
    whole = "".join(pieces)
    if slack_len(whole) <= limit:
        return whole
    budget = limit - slack_len(suffix)
    out: list[str] = []
    used = 0
    for piece in pieces:
        size = slack_len(piece)
        if used + size > budget:
            break
        out.append(piece)
        used += size
    return "".join(out).rstrip() + suffix


# Discord renders Markdown in content, embed titles, descriptions and field values: **bold**, __underline__,
# ~~strike~~, ||spoilers||, `code`, [masked](links), <@mentions>, <t:timestamps>, and at the start of a line
# > quotes, # headings, -# subtext and lists. A backslash before ASCII punctuation shows that character
# literally, so every character that can open an inline construct is escaped, and the line-start markers only
# where they start a line (escaping every "-" or "." would make the raw text unreadable for no gain). Pings are
# stopped separately by allowed_mentions; an escaped \@everyone does not even read as a mention.
_DISCORD_SPECIAL = frozenset("\\*_~`|<>[]@")
_LINE_START_MARK = re.compile(r"^[ \t]*(?:([#+-])|\d+([.)]))", flags=re.MULTILINE)


def discord_pieces(text: str) -> list[str]:
    """One piece per character of `text`, backslash-escaped where Discord would read it as Markdown."""
    marks = {match.start(match.lastindex) for match in _LINE_START_MARK.finditer(text)}
    return ["\\" + char if char in _DISCORD_SPECIAL or index in marks else char for index, char in enumerate(text)]


def discord_escape(text: str) -> str:
    return "".join(discord_pieces(text))


def _discord_fit(text: str, limit: int) -> str:
    return _fit(discord_pieces(text), limit)


def _plain_fit(text: str, limit: int) -> str:
    return _fit(list(text), limit)


def build_discord(alert: Alert) -> dict[str, Any]:
    """A Discord webhook message: one embed within Discord's limits, review text escaped, nobody pinged."""
    site = clean_text(alert.site, single_line=True) or "unknown site"
    business = clean_text(alert.business, single_line=True) or "unknown business"
    severity = clean_text(alert.severity, single_line=True).lower() or "normal"
    icon = SEVERITY_ICONS.get(severity, "⚪")
    url = safe_review_url(alert.url)
    if url and len(url) > DISCORD_URL_MAX:
        url = None

    facts = alert_facts(alert, severity=severity, site=site, business=business)
    fields = [{"name": name, "value": _discord_fit(value, DISCORD_FACT_MAX), "inline": True} for name, value in facts]
    why = clean_text(alert.why, single_line=True)
    if why:
        fields.append({"name": "Why it fired", "value": _discord_fit(why, DISCORD_FIELD_VALUE_MAX), "inline": False})
    draft = clean_text(alert.draft_reply)
    if draft:
        fields.append({
            "name": "Draft reply, not posted (edit it and post it on the site yourself)",
            "value": _discord_fit(draft, DISCORD_FIELD_VALUE_MAX),
            "inline": False,
        })
    if not url:
        fields.append({"name": "Link", "value": "No usable link: the review URL is not http(s)", "inline": False})
    fields = fields[:DISCORD_FIELDS_MAX]

    embed: dict[str, Any] = {
        "title": _discord_fit(f"{icon} {short_rating(alert.rating)} review · {business} · {site}", DISCORD_TITLE_MAX),
        "color": DISCORD_COLOURS.get(severity, 0x999999),
        "fields": fields,
        # The footer is not Markdown: plain text, so no escaping (a backslash would show).
        "footer": {"text": _plain_fit(f"repwatch · source {clean_text(alert.source, single_line=True)} · review #{alert.review_id}", 300)},
    }
    if url:
        embed["url"] = url
    if alert.published_at is not None:
        embed["timestamp"] = _utc_iso(alert.published_at)

    # The body gets whatever the 6000-character embed total leaves, up to the description's own limit.
    used = slack_len(embed["title"]) + slack_len(embed["footer"]["text"])
    used += sum(slack_len(f["name"]) + slack_len(f["value"]) for f in fields)
    title = clean_text(alert.title, single_line=True)
    heading = f"**{_discord_fit(title, 300)}**\n\n" if title else ""  # our bold around escaped text
    body = clean_text(alert.body)
    room = min(DISCORD_DESCRIPTION_MAX, DISCORD_EMBED_TOTAL_MAX - used) - slack_len(heading)
    cut_note = "… [cut: the full review is behind the title link]" if url else "… [cut: the review is longer]"
    embed["description"] = heading + (_fit(discord_pieces(body), room, cut_note) if body else "(no text)")

    content = _discord_fit(f"{icon} {short_rating(alert.rating)} review of {business} on {site} ({severity})", 300)
    total = used + slack_len(embed["description"])
    assert total <= DISCORD_EMBED_TOTAL_MAX and slack_len(embed["description"]) <= DISCORD_DESCRIPTION_MAX
    assert slack_len(content) <= DISCORD_CONTENT_MAX
    return {"content": content, "embeds": [embed], "allowed_mentions": {"parse": []}}


# Teams: TextBlock renders a Markdown subset (**bold**, _italic_, lists, [links](url)), and backslash escapes are
# rendered inconsistently across Teams clients (AdaptiveCards issues #5590, #4677; mobile fixes into 2024).
# RichTextBlock's TextRun is documented as never rendering Markdown, so untrusted text goes only into TextRuns;
# TextBlocks carry only our own words. {{DATE(...)}}/{{TIME(...)}} functions are broken up as well.


def teams_inert(text: str) -> str:
    return text.replace("{{", "{" + ZERO_WIDTH_SPACE + "{")


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": teams_inert(text), **style}


def _rich(*runs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **extra}


def build_teams(alert: Alert) -> dict[str, Any]:
    """A Teams incoming-webhook message: one Adaptive Card (1.4) with an "Open review" button."""
    site = clean_text(alert.site, single_line=True) or "unknown site"
    business = clean_text(alert.business, single_line=True) or "unknown business"
    severity = clean_text(alert.severity, single_line=True).lower() or "normal"
    icon = SEVERITY_ICONS.get(severity, "⚪")
    url = safe_review_url(alert.url)
    headline = f"{icon} {short_rating(alert.rating)} review · {business} · {site}"

    body: list[dict[str, Any]] = [_rich(_run(_plain_fit(headline, 300), size="Large", weight="Bolder"))]
    # Site and business are already in the card's title. Not a FactSet: Teams renders Markdown in fact values too.
    facts = alert_facts(alert, severity=severity, site=None, business=None)
    body += [_rich(_run(f"{name}: ", weight="Bolder"), _run(_plain_fit(value, 300)), spacing="None") for name, value in facts]
    title = clean_text(alert.title, single_line=True)
    if title:
        body.append(_rich(_run(_plain_fit(f"“{title}”", 300), weight="Bolder"), spacing="Medium"))
    text = clean_text(alert.body)
    cut_note = "… [cut: the full review is behind “Open review”]" if url else "… [cut: the review is longer]"
    body.append(_rich(_run(_fit(list(text), TEAMS_BODY_MAX, cut_note) if text else "(no text)")))
    why = clean_text(alert.why, single_line=True)
    if why:
        body.append({"type": "TextBlock", "text": "Why it fired", "weight": "Bolder", "spacing": "Medium", "wrap": True})
        body.append(_rich(_run(_plain_fit(why, 1000)), spacing="None"))
    draft = clean_text(alert.draft_reply)
    if draft:
        body.append({"type": "TextBlock", "text": "Draft reply, not posted: edit it and post it on the site yourself",
                     "weight": "Bolder", "spacing": "Medium", "wrap": True})
        body.append(_rich(_run(_plain_fit(draft, TEAMS_DRAFT_MAX)), spacing="None"))
    if not url:
        body.append({"type": "TextBlock", "text": "No usable link: the review URL is not http(s)", "isSubtle": True, "wrap": True})
    body.append(_rich(_run(_plain_fit(f"repwatch · source {clean_text(alert.source, single_line=True)} · review #{alert.review_id}", 300),
                           isSubtle=True, size="Small")))

    return _teams_message(headline, body, url)


# --------------------------------------------------------------------------------------------------------------
# Notices in Teams and Discord: a review changed, still waits for a reply, a spike, one summary for a flood.
# The same rule as for alerts: review text (and names) only escaped (Discord) or only in TextRuns (Teams).

SUMMARY_COMMAND = "repwatch reviews --negative"
EXCERPT_MAX = 160  # a review in a list: enough to recognise it, short enough to list many
CHANGE_MAX = 300
CHANGES_SHOWN = 10
SPIKE_EXAMPLES_SHOWN = 3
# A summary card lists at most this many reviews, and stops earlier at this payload size: the rest of the 28 KB
# is left for the "and N more" line and for what Teams adds around the card.
TEAMS_LIST_MAX = 50
TEAMS_LIST_BYTES = 24_000
# Longer review links are left out of a list: one 2,000-character link would take the room of ten reviews.
DISCORD_LIST_URL_MAX = 512
SEVERITY_ORDER = ("critical", "high", "normal")
COLOUR_SETTLED = 0x2EB67D
COLOUR_SPIKE = DISCORD_COLOURS["critical"]


def _who(alert: Alert) -> tuple[str, str, str, str]:
    """site, business, severity and its icon, cleaned the way the alert builders do."""
    site = clean_text(alert.site, single_line=True) or "unknown site"
    business = clean_text(alert.business, single_line=True) or "unknown business"
    severity = clean_text(alert.severity, single_line=True).lower() or "normal"
    return site, business, severity, SEVERITY_ICONS.get(severity, "⚪")


def _headline(alert: Alert) -> str:
    site, business, _, icon = _who(alert)
    return f"{icon} {short_rating(alert.rating)} review · {business} · {site}"


def _excerpt(alert: Alert) -> str:
    """Title and body on one line (raw, untrusted: the caller escapes and cuts it)."""
    title = clean_text(alert.title, single_line=True)
    body = clean_text(alert.body, single_line=True)
    return (f"{title}: {body}" if title and body else title or body) or "(no text)"


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours <= 48:  # "48 h" reads better than "2 days" for a deadline set in hours
        return f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days" + (f" {hours} h" if hours else "")


def _waiting(reminder: Reminder) -> str:
    late = reminder.waiting - reminder.deadline
    overdue = f" (overdue by {_duration(late)})" if late > timedelta(0) else ""
    return f"No reply on the site after {_duration(reminder.waiting)}; the reply deadline is {_duration(reminder.deadline)}{overdue}."


def _per_day(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "?"


def _spike_scope(spike: Spike) -> str:
    business = clean_text(spike.business, single_line=True) or "unknown business"
    site = clean_text(spike.site, single_line=True)
    return f"{business} · {site}" if site else f"{business} · all sources"


def _spike_facts(spike: Spike) -> tuple[str, str]:
    count = f"{spike.count} negative review{'s' if spike.count != 1 else ''} in the 24 h up to {format_when(spike.until)}."
    usual = (f"Usually {_per_day(spike.mean)} ± {_per_day(spike.sd)} a day over the 7 days before; "
             f"the alert threshold is {_per_day(spike.threshold)}.")
    return count, usual


def _severities(summary: FloodSummary) -> str:
    counts = _tally(summary.by_severity)
    known = [name for name in SEVERITY_ORDER if counts.get(name)] + [name for name in counts if name not in SEVERITY_ORDER]
    return " · ".join(f"{SEVERITY_ICONS.get(name, '⚪')} {counts[name]} {clean_text(name, single_line=True)}" for name in known if counts[name])


def _businesses(summary: FloodSummary) -> str:
    counts = _tally(summary.by_business)
    return " · ".join(f"{clean_text(name, single_line=True) or 'unknown business'}: {count}" for name, count in counts.items())


def _top_severity(summary: FloodSummary) -> str:
    counts = _tally(summary.by_severity)
    return next((name for name in SEVERITY_ORDER if counts.get(name)), "normal")


def _summary_title(summary: FloodSummary) -> str:
    return f"📣 {summary.count} new review alert{'s' if summary.count != 1 else ''} in one run"


def _not_listed(summary: FloodSummary, shown: int) -> int:
    return max(summary.count, len(summary.items)) - shown


# Discord ------------------------------------------------------------------------------------------------------


def _discord_link(url: str | None, label: str = "Open review") -> str:
    """Our own masked link around a safe review URL; parentheses encoded so the URL cannot close the link early."""
    if not url or len(url) > DISCORD_LIST_URL_MAX:
        return ""
    return f"[{label}]({url.replace('(', '%28').replace(')', '%29')})"


def _discord_item(alert: Alert) -> str:
    """One review in a list: "• **headline** — “excerpt” [Open review](url)", all review text escaped."""
    link = _discord_link(safe_review_url(alert.url))
    line = f"• **{_discord_fit(_headline(alert), 200)}** — “{_discord_fit(_excerpt(alert), EXCERPT_MAX)}”"
    return line + (f" {link}" if link else "")


def _embed_used(embed: dict[str, Any]) -> int:
    """What counts against Discord's 6000-character embed total, the description left out."""
    used = slack_len(embed.get("title", "")) + slack_len(embed.get("footer", {}).get("text", ""))
    return used + sum(slack_len(f["name"]) + slack_len(f["value"]) for f in embed.get("fields", []))


def _lines_within(lines: list[str], room: int, more: Callable[[int], str] | None = None, limit: int | None = None) -> tuple[str, int]:
    """Whole lines (already escaped), at most `limit`, while they fit in `room`, then more(n) for the n left out;
    and how many were kept.

    Lines are never cut: a cut could split our own markup (an open ** or a half link)."""
    reserve = slack_len(more(len(lines))) + 1 if more else 0  # the note for all of them left out is the longest
    kept: list[str] = []
    used = 0
    for line in lines[:limit]:
        size = slack_len(line) + (1 if kept else 0)
        if used + size > room - reserve:
            break
        kept.append(line)
        used += size
    left = len(lines) - len(kept)
    if more and left:
        kept.append(more(left))
    return "\n".join(kept), len(kept) - (1 if more and left else 0)


def _discord_message(content: str, embed: dict[str, Any]) -> dict[str, Any]:
    embed["fields"] = embed.get("fields", [])[:DISCORD_FIELDS_MAX]
    assert _embed_used(embed) + slack_len(embed.get("description", "")) <= DISCORD_EMBED_TOTAL_MAX
    assert slack_len(embed.get("description", "")) <= DISCORD_DESCRIPTION_MAX and slack_len(embed["title"]) <= DISCORD_TITLE_MAX
    assert all(0 < slack_len(f["value"]) <= DISCORD_FIELD_VALUE_MAX for f in embed["fields"])
    assert slack_len(content) <= DISCORD_CONTENT_MAX
    # parse: [] on every message: whatever the text says, Discord pings nobody.
    return {"content": content, "embeds": [embed], "allowed_mentions": {"parse": []}}


def _discord_review_embed(alert: Alert, title: str, colour: int) -> dict[str, Any]:
    """Title (linked to the review), the alert's short facts, footer: what updates and reminders share."""
    _, _, severity, _ = _who(alert)
    url = safe_review_url(alert.url)
    facts = alert_facts(alert, severity=severity, site=None, business=None)
    fields = [{"name": name, "value": _discord_fit(value, DISCORD_FACT_MAX), "inline": True} for name, value in facts]
    if not url or len(url) > DISCORD_URL_MAX:
        url = None
        fields.append({"name": "Link", "value": "No usable link: the review URL is not http(s)", "inline": False})
    embed: dict[str, Any] = {
        "title": _discord_fit(title, DISCORD_TITLE_MAX),
        "color": colour,
        "fields": fields,
        "footer": {"text": _plain_fit(f"repwatch · source {clean_text(alert.source, single_line=True)} · review #{alert.review_id}", 300)},
    }
    if url:
        embed["url"] = url
    return embed


def discord_update(update: AlertUpdate) -> dict[str, Any]:
    alert = update.alert
    site, business, severity, _ = _who(alert)
    mark, word = ("✅", "Settled") if update.settled else ("🔄", "Changed")
    embed = _discord_review_embed(alert, f"{mark} {word}: {_headline(alert)}", COLOUR_SETTLED if update.settled else DISCORD_COLOURS.get(severity, 0x999999))
    embed["fields"].append({"name": "The review now", "value": _discord_fit(_excerpt(alert), DISCORD_FIELD_VALUE_MAX), "inline": False})
    status = "**No action needed.**" if update.settled else "**Still open:** reply on the site if nobody has yet."
    changes = [clean_text(line, single_line=True) for line in update.changes]
    lines = ["• " + _discord_fit(line, CHANGE_MAX) for line in changes if line] or ["• (no details)"]
    room = min(DISCORD_DESCRIPTION_MAX, DISCORD_EMBED_TOTAL_MAX - _embed_used(embed)) - slack_len(status) - 2
    listed, _ = _lines_within(lines, room, lambda n: f"…and {n} more change{'s' if n != 1 else ''}", limit=CHANGES_SHOWN)
    embed["description"] = f"{listed}\n\n{status}"
    what = "no action needed" if update.settled else "changed"
    content = _discord_fit(f"{mark} {short_rating(alert.rating)} review of {business} on {site}: {what}", 300)
    return _discord_message(content, embed)


def discord_reminder(reminder: Reminder) -> dict[str, Any]:
    alert = reminder.alert
    site, business, severity, _ = _who(alert)
    embed = _discord_review_embed(alert, f"⏰ Still unanswered: {_headline(alert)}", DISCORD_COLOURS.get(severity, 0x999999))
    draft = clean_text(alert.draft_reply)
    if draft:
        embed["fields"].append({"name": "Draft reply, not posted (edit it and post it on the site yourself)",
                                "value": _discord_fit(draft, DISCORD_FIELD_VALUE_MAX), "inline": False})
    waiting = f"**{discord_escape(_waiting(reminder))}**\n\n"
    room = min(DISCORD_DESCRIPTION_MAX, DISCORD_EMBED_TOTAL_MAX - _embed_used(embed)) - slack_len(waiting)
    body = clean_text(alert.body)
    title = clean_text(alert.title, single_line=True)
    heading = f"“{_discord_fit(title, 300)}”\n" if title else ""
    room -= slack_len(heading)
    cut_note = "… [cut: the full review is behind the title link]" if "url" in embed else "… [cut: the review is longer]"
    embed["description"] = waiting + heading + (_fit(discord_pieces(body), room, cut_note) if body else "(no text)")
    content = _discord_fit(f"⏰ {short_rating(alert.rating)} review of {business} on {site} still has no reply "
                           f"after {_duration(reminder.waiting)}", 300)
    return _discord_message(content, embed)


def discord_spike(spike: Spike) -> dict[str, Any]:
    count, usual = _spike_facts(spike)
    fields: list[dict[str, Any]] = []
    for number, alert in enumerate(spike.examples[:SPIKE_EXAMPLES_SHOWN], 1):
        site, business, _, icon = _who(alert)
        link = _discord_link(safe_review_url(alert.url))
        value = f"{_discord_fit(f'{business} · {site}', 200)}\n“{_discord_fit(_excerpt(alert), 600)}”" + (f"\n{link}" if link else "")
        # Field names carry only our words: Discord's Markdown in names is not documented, so nothing to escape.
        fields.append({"name": f"Example {number}: {icon} {short_rating(alert.rating)}", "value": value, "inline": False})
    source = clean_text(spike.source, single_line=True)
    embed: dict[str, Any] = {
        "title": _discord_fit(f"📈 Negative review spike · {_spike_scope(spike)}", DISCORD_TITLE_MAX),
        "color": COLOUR_SPIKE,
        "description": f"**{discord_escape(count)}**\n{discord_escape(usual)}",
        "fields": fields,
        "footer": {"text": _plain_fit(f"repwatch · {f'source {source}' if source else 'all sources'}", 300)},
        "timestamp": _utc_iso(spike.until),
    }
    business = clean_text(spike.business, single_line=True) or "unknown business"
    content = _discord_fit(f"📈 {spike.count} negative reviews of {business} in 24 h (usually {_per_day(spike.mean)} a day)", 300)
    return _discord_message(content, embed)


def discord_summary(summary: FloodSummary) -> dict[str, Any]:
    severities = _severities(summary)
    fields = [{"name": "By severity", "value": _discord_fit(severities, DISCORD_FIELD_VALUE_MAX), "inline": False}] if severities else []
    businesses = _businesses(summary)
    if businesses:
        fields.append({"name": "By business", "value": _discord_fit(businesses, DISCORD_FIELD_VALUE_MAX), "inline": False})
    embed: dict[str, Any] = {
        "title": _summary_title(summary),
        "color": DISCORD_COLOURS[_top_severity(summary)],
        "fields": fields,
        "footer": {"text": f"repwatch · one message instead of {summary.count}"},
    }
    room = min(DISCORD_DESCRIPTION_MAX, DISCORD_EMBED_TOTAL_MAX - _embed_used(embed))
    extra = _not_listed(summary, len(summary.items))  # counted but not among the items at all
    listed, shown = _lines_within([_discord_item(alert) for alert in summary.items], room,
                                  lambda n: f"…and {n + extra} more (`{SUMMARY_COMMAND}`)")
    if extra and shown == len(summary.items):
        listed += f"\n…and {extra} more (`{SUMMARY_COMMAND}`)"
    embed["description"] = listed or "(no reviews listed)"
    content = _fit([_summary_title(summary), ": ", *discord_pieces(severities)], 300) if severities else _summary_title(summary)
    return _discord_message(content, embed)


# Teams --------------------------------------------------------------------------------------------------------


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _note(text: str, **style: Any) -> dict[str, Any]:
    """A TextBlock: only for repwatch's own words (TextBlock renders Markdown)."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _teams_message(fallback: str, body: list[dict[str, Any]], url: str | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "fallbackText": teams_inert(_plain_fit(fallback, 300)),
        "body": body,
    }
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open review", "url": url}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def _teams_item(alert: Alert, excerpt_max: int = EXCERPT_MAX) -> dict[str, Any]:
    """One review in a list: headline, excerpt and an "Open review" link, each a TextRun (never Markdown)."""
    runs = [_run(_plain_fit(_headline(alert), 300), weight="Bolder"), _run(f" — “{_plain_fit(_excerpt(alert), excerpt_max)}”")]
    url = safe_review_url(alert.url)
    if url:
        runs.append(_run(" Open review", color="Accent", selectAction={"type": "Action.OpenUrl", "url": url}))
    return _rich(*runs, spacing="Small")


def _teams_facts(alert: Alert) -> list[dict[str, Any]]:
    _, _, severity, _ = _who(alert)
    facts = alert_facts(alert, severity=severity, site=None, business=None)
    return [_rich(_run(f"{name}: ", weight="Bolder"), _run(_plain_fit(value, 300)), spacing="None") for name, value in facts]


def _teams_footer(alert: Alert) -> dict[str, Any]:
    text = f"repwatch · source {clean_text(alert.source, single_line=True)} · review #{alert.review_id}"
    return _rich(_run(_plain_fit(text, 300), isSubtle=True, size="Small"))


def teams_update(update: AlertUpdate) -> dict[str, Any]:
    alert = update.alert
    mark, word = ("✅", "Settled") if update.settled else ("🔄", "Changed")
    headline = f"{mark} {word}: {_headline(alert)}"
    body = [_rich(_run(_plain_fit(headline, 300), size="Large", weight="Bolder")), _note("What changed", weight="Bolder", spacing="Medium")]
    changes = [clean_text(line, single_line=True) for line in update.changes]
    changes = [line for line in changes if line] or ["(no details)"]
    body += [_rich(_run("• " + _plain_fit(line, CHANGE_MAX)), spacing="None") for line in changes[:CHANGES_SHOWN]]
    if len(changes) > CHANGES_SHOWN:
        left = len(changes) - CHANGES_SHOWN
        body.append(_note(f"…and {left} more change{'s' if left != 1 else ''}", spacing="None", isSubtle=True))
    if update.settled:
        body.append(_note("No action needed.", weight="Bolder", color="Good", spacing="Medium"))
    else:
        body.append(_note("Still open: reply on the site if nobody has yet.", weight="Bolder", spacing="Medium"))
    body += _teams_facts(alert)
    body.append(_rich(_run(_plain_fit(f"“{_excerpt(alert)}”", 1000)), spacing="Medium"))
    body.append(_teams_footer(alert))
    return _teams_message(headline, body, safe_review_url(alert.url))


def teams_reminder(reminder: Reminder) -> dict[str, Any]:
    alert = reminder.alert
    headline = f"⏰ Still unanswered: {_headline(alert)}"
    body = [_rich(_run(_plain_fit(headline, 300), size="Large", weight="Bolder")),
            _note(_waiting(reminder), weight="Bolder", spacing="Small")]
    body += _teams_facts(alert)
    title = clean_text(alert.title, single_line=True)
    if title:
        body.append(_rich(_run(_plain_fit(f"“{title}”", 300), weight="Bolder"), spacing="Medium"))
    text = clean_text(alert.body)
    url = safe_review_url(alert.url)
    cut_note = "… [cut: the full review is behind “Open review”]" if url else "… [cut: the review is longer]"
    body.append(_rich(_run(_fit(list(text), TEAMS_BODY_MAX, cut_note) if text else "(no text)")))
    draft = clean_text(alert.draft_reply)
    if draft:
        body.append(_note("Draft reply, not posted: edit it and post it on the site yourself", weight="Bolder", spacing="Medium"))
        body.append(_rich(_run(_plain_fit(draft, TEAMS_DRAFT_MAX)), spacing="None"))
    body.append(_teams_footer(alert))
    return _teams_message(headline, body, url)


def teams_spike(spike: Spike) -> dict[str, Any]:
    count, usual = _spike_facts(spike)
    headline = f"📈 Negative review spike · {_spike_scope(spike)}"
    body = [_rich(_run(_plain_fit(headline, 300), size="Large", weight="Bolder")),
            _note(count, weight="Bolder", spacing="Small"), _note(usual, spacing="None")]
    examples = spike.examples[:SPIKE_EXAMPLES_SHOWN]
    if examples:
        body.append(_note("Examples", weight="Bolder", spacing="Medium"))
        body += [_teams_item(alert, 600) for alert in examples]
    source = clean_text(spike.source, single_line=True)
    body.append(_rich(_run(_plain_fit(f"repwatch · {f'source {source}' if source else 'all sources'}", 300), isSubtle=True, size="Small")))
    return _teams_message(headline, body)


def teams_summary(summary: FloodSummary) -> dict[str, Any]:
    headline = _summary_title(summary)
    body = [_rich(_run(headline, size="Large", weight="Bolder"))]
    severities = _severities(summary)
    if severities:
        body.append(_rich(_run("By severity: ", weight="Bolder"), _run(severities), spacing="Small"))
    businesses = _businesses(summary)
    if businesses:
        body.append(_rich(_run("By business: ", weight="Bolder"), _run(_plain_fit(businesses, 1000)), spacing="None"))

    def more(count: int) -> dict[str, Any]:
        return _rich(_run(f"…and {count} more ("), _run(SUMMARY_COMMAND, fontType="Monospace"), _run(")"), spacing="Medium")

    # Items are added while the whole payload stays within TEAMS_LIST_BYTES, with room kept for the last line.
    used = _size(_teams_message(headline, body)) + _size(more(max(summary.count, len(summary.items)))) + 1
    shown = 0
    for alert in summary.items[:TEAMS_LIST_MAX]:
        item = _teams_item(alert)
        if used + _size(item) + 1 > TEAMS_LIST_BYTES:
            break
        body.append(item)
        used += _size(item) + 1
        shown += 1
    left = _not_listed(summary, shown)
    if left > 0:
        body.append(more(left))
    return _teams_message(headline, body)


# --------------------------------------------------------------------------------------------------------------
# Source health (for the operator): our own words and config values, plus the crawl's one-line error


def json_health(health: SourceHealth) -> dict[str, Any]:
    return _envelope("source_health") | {
        "event": health.event,
        "business": _data(health.business),
        "source": _data(health.source),
        "site": _data(health.site),
        "url": safe_review_url(health.url),
        "state": health.state,
        "failures": health.failures,
        "error": _data(health.error),
        "last_success_at": _utc_iso(health.last_success_at),
        "silent_days": _number(health.silent_days),
        "usual_per_week": _number(health.usual_per_week),
    }


def _health_lines(health: SourceHealth) -> tuple[str, list[str]]:
    headline = HEALTH_HEADLINES[health.event].format(
        source=health.source, site=health.site, state=health.state, days=health.silent_days or 0
    )
    lines = [f"Business: {health.business}"]
    if health.event == "bad":
        lines += [f"{health.failures} crawls in a row failed. Last error: {health.error or 'unknown'}",
                  "Last good crawl: " + (_utc_iso(health.last_success_at) or "never")]
    elif health.event == "silent":
        lines.append(f"It usually gets about {health.usual_per_week or 0:.1f} new reviews a week; check the page.")
    return clean_text(headline, single_line=True), [clean_text(line, single_line=True) for line in lines]


def discord_health(health: SourceHealth) -> dict[str, Any]:
    headline, lines = _health_lines(health)
    embed: dict[str, Any] = {
        "title": _discord_fit(headline, DISCORD_TITLE_MAX),
        "description": _discord_fit("\n".join(lines), DISCORD_DESCRIPTION_MAX),
        "color": 0x1F883D if health.event == "recovered" else 0xD1242F,
    }
    url = safe_review_url(health.url)
    if url:
        embed["url"] = url
    return _discord_message(_discord_fit(headline, 300), embed)


def teams_health(health: SourceHealth) -> dict[str, Any]:
    headline, lines = _health_lines(health)
    body = [_rich(_run(_plain_fit(headline, 300), size="Large", weight="Bolder"))]
    body += [_rich(_run(_plain_fit(line, 1000)), spacing="Small") for line in lines]
    return _teams_message(headline, body, safe_review_url(health.url))


BUILDERS: dict[type, dict[str, Callable[[Any], dict[str, Any]]]] = {
    SourceHealth: {"json": json_health, "teams": teams_health, "discord": discord_health},
    Alert: {"json": build_json, "teams": build_teams, "discord": build_discord},
    AlertUpdate: {"json": json_update, "teams": teams_update, "discord": discord_update},
    Reminder: {"json": json_reminder, "teams": teams_reminder, "discord": discord_reminder},
    Spike: {"json": json_spike, "teams": teams_spike, "discord": discord_spike},
    FloodSummary: {"json": json_summary, "teams": teams_summary, "discord": discord_summary},
}


def render(notice: Notice, fmt: str) -> bytes:
    """The request body for one alert or notice in one format (UTF-8 JSON; allow_nan=False: strict parsers must accept it)."""
    try:
        build = BUILDERS[type(notice)][fmt]
    except KeyError:
        raise TypeError(f"no {fmt} webhook message for a {type(notice).__name__}") from None
    body = json.dumps(build(notice), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    assert fmt != "teams" or len(body) <= TEAMS_PAYLOAD_MAX
    return body


# --------------------------------------------------------------------------------------------------------------
# Delivery

_FORMAT_NAMES = {"json": "webhook", "teams": "Teams webhook", "discord": "Discord webhook"}
# Legacy Teams connectors answer 200 with this text when Teams itself refused the message (e.g. its own 429).
_TEAMS_FAILED = re.compile(rb"^Webhook message delivery failed.*?HTTP error (\d{3})", flags=re.DOTALL)


class WebhookNotifier(Notifier):
    """POST each alert and notice as JSON to a URL: repwatch's own schema, a Microsoft Teams card, or a Discord embed.

        kind: webhook
        url: ${ALERT_WEBHOOK_URL}
        format: json              # json (default) | teams | discord
        headers:                  # optional, e.g. for your own endpoint
          Authorization: "Bearer ${ALERT_WEBHOOK_TOKEN}"

    format: json sends repwatch's schema: every body has "repwatch_version": 1 and a "type". A review object is
    {"review_id", "business", "source", "site", "url", "rating", "author", "title", "body", "published_at" (ISO 8601,
    UTC), "language", "label", "score", "severity", "why", "draft_reply", "topics" (list)}; missing values are null
    and review text is as found on the site (escape it when you show it). Types: "alert" (the review object's
    fields at the top level); "update" (a review changed or was handled: "review", "changes" (list of lines),
    "settled" (true: nothing left to do)); "reminder" (still no reply: "review", "waiting_hours",
    "deadline_hours"); "spike" (more negative reviews than usual: "business", "source" and "site" (null: all
    sources), "count" in the 24 h up to "until" (ISO 8601, UTC), "mean" and "sd" per day over the 7 days before,
    "threshold", "examples" (review objects)); "summary" (one run found more alerts than alerting.flood_threshold:
    "count", "by_business" and "by_severity" (name: count), "items": every alert, as review objects, since they are
    not sent one by one). Ignore types you do not know: more may come.

    format: teams posts an Adaptive Card to a Teams incoming webhook or Workflows URL; format: discord posts one
    embed and pings nobody. There a summary lists as many alerts as fit, then "and N more (repwatch reviews
    --negative)". Optional: timeout: 10, min_interval (seconds between sends; default 2 for discord, else 1).
    429 (with Retry-After), 5xx and network errors are retried by the outbox; other 4xx are not.
    """

    kind: ClassVar[str] = "webhook"
    Config: ClassVar[type[BaseModel]] = WebhookConfig
    config: WebhookConfig

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        cfg = self.config
        self._url = cfg.url.get_secret_value()
        parts = urlsplit(self._url)
        self._destination = f"{_FORMAT_NAMES[cfg.format]} ({parts.hostname})"
        self._pace_key = "webhook:" + hashlib.sha256(self._url.encode()).hexdigest()
        self._headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        self._headers.update({key: value.get_secret_value() for key, value in cfg.headers.items()})
        # Everything that must never reach a log line: the URL and its parts (tokens live in path, query or
        # userinfo), and every configured header value.
        self._secrets = [self._url, parts.path, parts.query, parts.password or "", parts.username or ""]
        self._secrets += [value.get_secret_value() for value in cfg.headers.values()]
        self._secrets = sorted({s for s in self._secrets if len(s) > 4 and s != "/"}, key=len, reverse=True)

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        # `target` does not apply: one URL is one channel, webhooks cannot reply in a thread, nobody is pinged.
        return self._post(render(alert, self.config.format))

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        # Updates and reminders are new messages (no threads, no editing the original); a summary lists its alerts.
        return self._post(render(notice, self.config.format))

    def _post(self, body: bytes) -> SendResult:
        PACER.wait_turn(self._pace_key, self.config.interval())
        try:
            # A client per send: alerts are few and paced, and nothing stays open between outbox runs.
            # follow_redirects=False: a redirected POST would go (with its auth header) somewhere not configured.
            with (
                httpx.Client(timeout=self.config.timeout, follow_redirects=False) as client,
                client.stream("POST", self._url, content=body, headers=self._headers) as response,
            ):
                answer = _read_capped(response)
                status, headers = response.status_code, response.headers
        except httpx.HTTPError as err:
            raise self._network_error(err) from None
        except (httpx.InvalidURL, UnicodeError, ValueError) as err:
            # e.g. an IDNA label httpx only rejects when connecting; the exception's text may hold the URL.
            raise DeliveryError(self._safe(f"{self._destination}: the URL cannot be used ({type(err).__name__})"), retryable=False) from None
        return self._result(status, headers, answer)

    def _result(self, status: int, headers: httpx.Headers, answer: bytes) -> SendResult:
        if 200 <= status < 300:
            failed = _TEAMS_FAILED.match(answer) if self.config.format == "teams" else None
            if failed:
                raise self._http_error(int(failed.group(1)), headers, b"", via="Teams reported")
            return SendResult(remote_id=_discord_id(answer) if self.config.format == "discord" else None)
        raise self._http_error(status, headers, answer)

    def _http_error(self, status: int, headers: httpx.Headers, answer: bytes, *, via: str = "HTTP") -> DeliveryError:
        what = f"{self._destination}: {via} {status}"
        data = _json_object(answer)
        if status == 429:
            seconds = _retry_after(headers, data)
            return DeliveryError(self._safe(f"{what}: rate limited, retry in {seconds:g}s"), retryable=True, retry_after=seconds)
        if status >= 500 or status == 408:
            return DeliveryError(self._safe(f"{what}: the endpoint is having trouble, will retry"), retryable=True)
        detail = _detail(data)
        hint = self._hint(status)
        text = what + (f" ({detail})" if detail else "") + (f": {hint}" if hint else "")
        return DeliveryError(self._safe(text), retryable=False)

    def _hint(self, status: int) -> str | None:
        chat = self.config.format != "json"
        if 300 <= status < 400:
            return "the URL redirects; put the final URL in config (redirects are not followed)"
        if status == 400:
            return "the message was rejected (a bug in repwatch: please report it)" if chat else \
                "the endpoint rejected the message; does it expect repwatch's JSON (format: json)?"
        if status in (401, 403):
            return "the webhook's token is wrong or was revoked" if chat else "access refused; check `headers` (e.g. Authorization)"
        if status in (404, 410):
            return "the webhook URL is wrong or the webhook was deleted"
        if status == 405:
            return "the URL does not accept POST"
        if status == 413:
            return "the message is too large for the endpoint"
        return None

    def _network_error(self, err: httpx.HTTPError) -> DeliveryError:
        # httpx's own messages are not shown whole: some carry the request URL. Only a known shape is kept.
        if isinstance(err, httpx.TimeoutException):
            detail = f"no answer within {self.config.timeout:g}s"
        elif "CERTIFICATE_VERIFY_FAILED" in str(err):
            return DeliveryError(self._safe(f"{self._destination}: the server's TLS certificate is not trusted"), retryable=False)
        elif isinstance(err, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)):
            return DeliveryError(self._safe(f"{self._destination}: request refused by httpx ({type(err).__name__})"), retryable=False)
        elif isinstance(err, httpx.ConnectError):
            cause = err.__context__ or err.__cause__
            detail = "connection refused" if "refused" in str(err).lower() or isinstance(cause, ConnectionRefusedError) else "could not connect"
        else:
            detail = type(err).__name__
        return DeliveryError(self._safe(f"{self._destination}: could not reach the endpoint ({detail}), will retry"), retryable=True)

    def _safe(self, message: str) -> str:
        """Belt and braces: no secret survives into a message, whatever a server or library put into it."""
        for secret in self._secrets:
            message = message.replace(secret, "[redacted]")
        return message


def _read_capped(response: httpx.Response) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= RESPONSE_READ_MAX:
            break
    return bytes(data[:RESPONSE_READ_MAX])


def _json_object(answer: bytes) -> dict[str, Any]:
    try:
        data = json.loads(answer.decode("utf-8")) if answer.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(headers: httpx.Headers, data: dict[str, Any]) -> float:
    """The wait a 429 asks for: Retry-After (seconds or HTTP-date), else Discord's X-RateLimit-Reset-After, else
    Discord's JSON `retry_after`; the headers come first because the JSON one has been reported in milliseconds on
    unversioned webhook URLs (discord-api-docs #4722), while the headers are always seconds."""
    if "retry-after" in headers:
        return parse_retry_after(headers["retry-after"])
    if "x-ratelimit-reset-after" in headers:
        return parse_retry_after(headers["x-ratelimit-reset-after"])
    value = data.get("retry_after")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return min(float(value), MAX_RETRY_AFTER)
    return DEFAULT_RETRY_AFTER


def _detail(data: dict[str, Any]) -> str | None:
    """Discord's own error text ({"message": "Unknown Webhook", "code": 10015}), one short line; else nothing."""
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        return None
    text = clean_text(message, single_line=True)
    if len(text) > DETAIL_SHOWN:
        text = text[: DETAIL_SHOWN - 1] + "…"
    code = data.get("code")
    return f"{text}, code {code}" if isinstance(code, int) and not isinstance(code, bool) else text


def _discord_id(answer: bytes) -> str | None:
    # Discord answers 204 without a body unless the URL has ?wait=true; then the message, with its id.
    message_id = _json_object(answer).get("id")
    return message_id if isinstance(message_id, str) and message_id.isdigit() else None
