"""Discord notifier: each alert or notice as one embed to a channel webhook, review text escaped, nobody pinged."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from alerts.base import (
    Builders,
    Alert,
    AlertUpdate,
    FloodSummary,
    Notice,
    Notifier,
    Reminder,
    SendResult,
    SourceHealth,
    Spike,
    Target,
)
from alerts.http import (
    CHAT_HINTS,
    Answer,
    JsonEndpoint,
    WebhookTarget,
    json_body,
    json_object,
)
from alerts.phrasing import (
    CHANGE_MAX,
    CHANGES_SHOWN,
    EXCERPT_MAX,
    SPIKE_EXAMPLES_SHOWN,
    SUMMARY_COMMAND,
    alert_facts,
    businesses,
    duration,
    excerpt,
    headline,
    health_lines,
    not_listed,
    per_day,
    severities,
    short_rating,
    spike_facts,
    spike_scope,
    summary_title,
    top_severity,
    waiting,
    who,
)
from alerts.text import (
    discord_escape,
    discord_pieces,
    fit_discord,
    fit_pieces,
    fit_plain,
    safe_review_url,
    utf16_len,
    visible_text,
)
from models.vocab import iso_utc

# Discord's limits (discord.com/developers/docs/resources/message#embed-object-embed-limits), counted here in
# UTF-16 units: the stricter count, so an emoji-heavy review cannot slip past a limit.
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
URL_MAX = 2048
# Short facts (rating, author, ...) get less than a field may hold, so the review body keeps most of the 6000.
FACT_MAX = 256
COLOURS = {"critical": 0xD7263D, "high": 0xF18F01, "normal": 0xF6C90E}
COLOUR_SETTLED = 0x2EB67D
COLOUR_SPIKE = COLOURS["critical"]
# Longer review links are left out of a list: one 2,000-character link would take the room of ten reviews.
LIST_URL_MAX = 512


class DiscordConfig(WebhookTarget):
    """`url`: the channel webhook's URL (a secret: it carries the webhook's token)."""

    kind: Literal["discord"]
    # Discord allows about 30 messages a minute per channel.
    min_interval: float = Field(2.0, ge=0, le=60, description="seconds between sends to this URL")


def _footer(alert: Alert) -> dict[str, str]:
    # The footer is not Markdown: plain text, so no escaping (a backslash would show).
    return {"text": fit_plain(f"repwatch · source {visible_text(alert.source, single_line=True)} · review #{alert.review_id}", 300)}


def build_discord(alert: Alert) -> dict[str, Any]:
    """A Discord webhook message: one embed within Discord's limits, review text escaped, nobody pinged."""
    site, business, severity, icon = who(alert)
    url = safe_review_url(alert.url)
    if url and len(url) > URL_MAX:
        url = None

    facts = alert_facts(alert, severity=severity, site=site, business=business)
    fields = [{"name": name, "value": fit_discord(value, FACT_MAX), "inline": True} for name, value in facts]
    why = visible_text(alert.why, single_line=True)
    if why:
        fields.append({"name": "Why it fired", "value": fit_discord(why, FIELD_VALUE_MAX), "inline": False})
    draft = visible_text(alert.draft_reply)
    if draft:
        fields.append({
            "name": "Draft reply, not posted (edit it and post it on the site yourself)",
            "value": fit_discord(draft, FIELD_VALUE_MAX),
            "inline": False,
        })
    if not url:
        fields.append({"name": "Link", "value": "No usable link: the review URL is not http(s)", "inline": False})
    fields = fields[:FIELDS_MAX]

    embed: dict[str, Any] = {
        "title": fit_discord(f"{icon} {short_rating(alert.rating)} review · {business} · {site}", TITLE_MAX),
        "color": COLOURS.get(severity, 0x999999),
        "fields": fields,
        "footer": _footer(alert),
    }
    if url:
        embed["url"] = url
    if alert.published_at is not None:
        embed["timestamp"] = iso_utc(alert.published_at)

    # The body gets whatever the 6000-character embed total leaves, up to the description's own limit.
    used = _embed_used(embed)
    title = visible_text(alert.title, single_line=True)
    heading = f"**{fit_discord(title, 300)}**\n\n" if title else ""  # our bold around escaped text
    body = visible_text(alert.body)
    room = min(DESCRIPTION_MAX, EMBED_TOTAL_MAX - used) - utf16_len(heading)
    cut_note = "… [cut: the full review is behind the title link]" if url else "… [cut: the review is longer]"
    embed["description"] = heading + (fit_pieces(discord_pieces(body), room, cut_note) if body else "(no text)")

    content = fit_discord(f"{icon} {short_rating(alert.rating)} review of {business} on {site} ({severity})", 300)
    return _message(content, embed)


# --------------------------------------------------------------------------------------------------------------
# Notices: a review changed, still waits for a reply, a spike, one summary for a flood, a source's health.
# The same rule as for alerts: review text (and names) only escaped.


def _link(url: str | None, label: str = "Open review") -> str:
    """Our own masked link around a safe review URL; parentheses encoded so the URL cannot close the link early."""
    if not url or len(url) > LIST_URL_MAX:
        return ""
    return f"[{label}]({url.replace('(', '%28').replace(')', '%29')})"


def _item(alert: Alert) -> str:
    """One review in a list: "• **headline** — “excerpt” [Open review](url)", all review text escaped."""
    link = _link(safe_review_url(alert.url))
    line = f"• **{fit_discord(headline(alert), 200)}** — “{fit_discord(excerpt(alert), EXCERPT_MAX)}”"
    return line + (f" {link}" if link else "")


def _embed_used(embed: dict[str, Any]) -> int:
    """What counts against Discord's 6000-character embed total, the description left out."""
    used = utf16_len(embed.get("title", "")) + utf16_len(embed.get("footer", {}).get("text", ""))
    return used + sum(utf16_len(f["name"]) + utf16_len(f["value"]) for f in embed.get("fields", []))


def _lines_within(lines: list[str], room: int, more: Callable[[int], str] | None = None, limit: int | None = None) -> tuple[str, int]:
    """Whole lines (already escaped), at most `limit`, while they fit in `room`, then more(n) for the n left out;
    and how many were kept.

    Lines are never cut: a cut could split our own markup (an open ** or a half link)."""
    reserve = utf16_len(more(len(lines))) + 1 if more else 0  # the note for all of them left out is the longest
    kept: list[str] = []
    used = 0
    for line in lines[:limit]:
        size = utf16_len(line) + (1 if kept else 0)
        if used + size > room - reserve:
            break
        kept.append(line)
        used += size
    left = len(lines) - len(kept)
    if more and left:
        kept.append(more(left))
    return "\n".join(kept), len(kept) - (1 if more and left else 0)


def _message(content: str, embed: dict[str, Any]) -> dict[str, Any]:
    embed["fields"] = embed.get("fields", [])[:FIELDS_MAX]
    assert _embed_used(embed) + utf16_len(embed.get("description", "")) <= EMBED_TOTAL_MAX
    assert utf16_len(embed.get("description", "")) <= DESCRIPTION_MAX and utf16_len(embed["title"]) <= TITLE_MAX
    assert all(0 < utf16_len(f["value"]) <= FIELD_VALUE_MAX for f in embed["fields"])
    assert utf16_len(content) <= CONTENT_MAX
    # parse: [] on every message: whatever the text says, Discord pings nobody.
    return {"content": content, "embeds": [embed], "allowed_mentions": {"parse": []}}


def _review_embed(alert: Alert, title: str, colour: int) -> dict[str, Any]:
    """Title (linked to the review), the alert's short facts, footer: what updates and reminders share."""
    _, _, severity, _ = who(alert)
    url = safe_review_url(alert.url)
    facts = alert_facts(alert, severity=severity, site=None, business=None)
    fields = [{"name": name, "value": fit_discord(value, FACT_MAX), "inline": True} for name, value in facts]
    if not url or len(url) > URL_MAX:
        url = None
        fields.append({"name": "Link", "value": "No usable link: the review URL is not http(s)", "inline": False})
    embed: dict[str, Any] = {
        "title": fit_discord(title, TITLE_MAX),
        "color": colour,
        "fields": fields,
        "footer": _footer(alert),
    }
    if url:
        embed["url"] = url
    return embed


def build_update(update: AlertUpdate) -> dict[str, Any]:
    alert = update.alert
    site, business, severity, _ = who(alert)
    mark, word = ("✅", "Settled") if update.settled else ("🔄", "Changed")
    embed = _review_embed(alert, f"{mark} {word}: {headline(alert)}", COLOUR_SETTLED if update.settled else COLOURS.get(severity, 0x999999))
    embed["fields"].append({"name": "The review now", "value": fit_discord(excerpt(alert), FIELD_VALUE_MAX), "inline": False})
    status = "**No action needed.**" if update.settled else "**Still open:** reply on the site if nobody has yet."
    changes = [visible_text(line, single_line=True) for line in update.changes]
    lines = ["• " + fit_discord(line, CHANGE_MAX) for line in changes if line] or ["• (no details)"]
    room = min(DESCRIPTION_MAX, EMBED_TOTAL_MAX - _embed_used(embed)) - utf16_len(status) - 2
    listed, _ = _lines_within(lines, room, lambda n: f"…and {n} more change{'s' if n != 1 else ''}", limit=CHANGES_SHOWN)
    embed["description"] = f"{listed}\n\n{status}"
    what = "no action needed" if update.settled else "changed"
    content = fit_discord(f"{mark} {short_rating(alert.rating)} review of {business} on {site}: {what}", 300)
    return _message(content, embed)


def build_reminder(reminder: Reminder) -> dict[str, Any]:
    alert = reminder.alert
    site, business, severity, _ = who(alert)
    embed = _review_embed(alert, f"⏰ Still unanswered: {headline(alert)}", COLOURS.get(severity, 0x999999))
    draft = visible_text(alert.draft_reply)
    if draft:
        embed["fields"].append({"name": "Draft reply, not posted (edit it and post it on the site yourself)",
                                "value": fit_discord(draft, FIELD_VALUE_MAX), "inline": False})
    said = f"**{discord_escape(waiting(reminder))}**\n\n"
    room = min(DESCRIPTION_MAX, EMBED_TOTAL_MAX - _embed_used(embed)) - utf16_len(said)
    body = visible_text(alert.body)
    title = visible_text(alert.title, single_line=True)
    heading = f"“{fit_discord(title, 300)}”\n" if title else ""
    room -= utf16_len(heading)
    cut_note = "… [cut: the full review is behind the title link]" if "url" in embed else "… [cut: the review is longer]"
    embed["description"] = said + heading + (fit_pieces(discord_pieces(body), room, cut_note) if body else "(no text)")
    content = fit_discord(f"⏰ {short_rating(alert.rating)} review of {business} on {site} still has no reply "
                          f"after {duration(reminder.waiting)}", 300)
    return _message(content, embed)


def build_spike(spike: Spike) -> dict[str, Any]:
    count, usual = spike_facts(spike)
    fields: list[dict[str, Any]] = []
    for number, alert in enumerate(spike.examples[:SPIKE_EXAMPLES_SHOWN], 1):
        site, business, _, icon = who(alert)
        link = _link(safe_review_url(alert.url))
        value = f"{fit_discord(f'{business} · {site}', 200)}\n“{fit_discord(excerpt(alert), 600)}”" + (f"\n{link}" if link else "")
        # Field names carry only our words: Discord's Markdown in names is not documented, so nothing to escape.
        fields.append({"name": f"Example {number}: {icon} {short_rating(alert.rating)}", "value": value, "inline": False})
    source = visible_text(spike.source, single_line=True)
    embed: dict[str, Any] = {
        "title": fit_discord(f"📈 Negative review spike · {spike_scope(spike)}", TITLE_MAX),
        "color": COLOUR_SPIKE,
        "description": f"**{discord_escape(count)}**\n{discord_escape(usual)}",
        "fields": fields,
        "footer": {"text": fit_plain(f"repwatch · {f'source {source}' if source else 'all sources'}", 300)},
        "timestamp": iso_utc(spike.until),
    }
    business = visible_text(spike.business, single_line=True) or "unknown business"
    content = fit_discord(f"📈 {spike.count} negative reviews of {business} in 24 h (usually {per_day(spike.mean)} a day)", 300)
    return _message(content, embed)


def build_summary(summary: FloodSummary) -> dict[str, Any]:
    by_severity = severities(summary)
    fields = [{"name": "By severity", "value": fit_discord(by_severity, FIELD_VALUE_MAX), "inline": False}] if by_severity else []
    by_business = businesses(summary)
    if by_business:
        fields.append({"name": "By business", "value": fit_discord(by_business, FIELD_VALUE_MAX), "inline": False})
    embed: dict[str, Any] = {
        "title": summary_title(summary),
        "color": COLOURS[top_severity(summary)],
        "fields": fields,
        "footer": {"text": f"repwatch · one message instead of {summary.count}"},
    }
    room = min(DESCRIPTION_MAX, EMBED_TOTAL_MAX - _embed_used(embed))
    extra = not_listed(summary, len(summary.items))  # counted but not among the items at all
    listed, shown = _lines_within([_item(alert) for alert in summary.items], room,
                                  lambda n: f"…and {n + extra} more (`{SUMMARY_COMMAND}`)")
    if extra and shown == len(summary.items):
        listed += f"\n…and {extra} more (`{SUMMARY_COMMAND}`)"
    embed["description"] = listed or "(no reviews listed)"
    content = fit_pieces([summary_title(summary), ": ", *discord_pieces(by_severity)], 300) if by_severity else summary_title(summary)
    return _message(content, embed)


def build_health(health: SourceHealth) -> dict[str, Any]:
    """For the operator: our own words and config values, plus the crawl's one-line error (escaped like the rest)."""
    title, lines = health_lines(health)
    embed: dict[str, Any] = {
        "title": fit_discord(title, TITLE_MAX),
        "description": fit_discord("\n".join(lines), DESCRIPTION_MAX),
        "color": 0x1F883D if health.event == "recovered" else 0xD1242F,
    }
    url = safe_review_url(health.url)
    if url:
        embed["url"] = url
    return _message(fit_discord(title, 300), embed)


BUILDERS = Builders(alert=build_discord, update=build_update, reminder=build_reminder, spike=build_spike,
                    summary=build_summary, health=build_health)


def render(notice: Notice) -> bytes:
    """The request body for one alert or notice."""
    return json_body(BUILDERS.build(notice))


class DiscordNotifier(Notifier):
    """Post each alert and notice to a Discord channel webhook as one embed; nobody is pinged.

        kind: discord
        url: ${DISCORD_WEBHOOK_URL}     # Channel settings → Integrations → Webhooks → Copy Webhook URL

    Review text is escaped, so it shows as typed and never as Markdown, a link or a mention. A flood summary lists
    as many alerts as fit, then "and N more (repwatch reviews --negative)". Optional: timeout: 10, min_interval: 2
    (seconds between sends; Discord allows about 30 messages a minute per channel). 429 (with Retry-After), 5xx and
    network errors are retried by the outbox; other 4xx are not.
    """

    kind: ClassVar[str] = "discord"
    Config: ClassVar[type[BaseModel]] = DiscordConfig
    config: DiscordConfig

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self.endpoint = JsonEndpoint(self.config, "Discord webhook", CHAT_HINTS)

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        # `target` does not apply: one URL is one channel, webhooks cannot reply in a thread, nobody is pinged.
        return _sent(self.endpoint.post(render(alert)))

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        # Updates and reminders are new messages (no threads, no editing the original); a summary lists its alerts.
        return _sent(self.endpoint.post(render(notice)))


def _sent(answer: Answer) -> SendResult:
    # Discord answers 204 without a body unless the URL has ?wait=true; then the message, with its id.
    message_id = json_object(answer.body).get("id")
    return SendResult(remote_id=message_id if isinstance(message_id, str) and message_id.isdigit() else None)
