"""Microsoft Teams notifier: each alert or notice as an Adaptive Card to an incoming webhook or Workflows URL."""
from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

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
from alerts.http import CHAT_HINTS, JsonEndpoint, WebhookTarget, json_body
from alerts.phrasing import (
    CHANGE_MAX,
    CHANGES_SHOWN,
    EXCERPT_MAX,
    SPIKE_EXAMPLES_SHOWN,
    SUMMARY_COMMAND,
    alert_facts,
    businesses,
    excerpt,
    headline,
    health_lines,
    not_listed,
    severities,
    spike_facts,
    spike_scope,
    summary_title,
    waiting,
    who,
)
from alerts.text import (
    fit_pieces,
    fit_plain,
    safe_review_url,
    teams_inert,
    visible_text,
)

# Teams rejects a message over about 28 KB; the text limits below keep the card well under it even for
# 3-byte-per-character scripts (measured in test_teams: a maximal CJK review).
PAYLOAD_MAX = 28_000
BODY_MAX = 3000
DRAFT_MAX = 2000
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# A summary card lists at most this many reviews, and stops earlier at this payload size: the rest of the 28 KB
# is left for the "and N more" line and for what Teams adds around the card.
LIST_MAX = 50
LIST_BYTES = 24_000
# Legacy Teams connectors answer 200 with this text when Teams itself refused the message (e.g. its own 429).
_TEAMS_FAILED = re.compile(rb"^Webhook message delivery failed.*?HTTP error (\d{3})", flags=re.DOTALL)


class TeamsConfig(WebhookTarget):
    """`url`: the incoming webhook's or Workflows URL (a secret: it carries a token).

    Teams allows about 4 messages a second per webhook; the default min_interval (1 s) stays well under it.
    """

    kind: Literal["teams"]


# --------------------------------------------------------------------------------------------------------------
# Card parts: untrusted text only ever in a TextRun (never Markdown); TextBlocks carry only repwatch's own words.


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": teams_inert(text), **style}


def _rich(*runs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **extra}


def _note(text: str, **style: Any) -> dict[str, Any]:
    """A TextBlock: only for repwatch's own words (TextBlock renders Markdown)."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _message(fallback: str, body: list[dict[str, Any]], url: str | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "fallbackText": teams_inert(fit_plain(fallback, 300)),
        "body": body,
    }
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open review", "url": url}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def _item(alert: Alert, excerpt_max: int = EXCERPT_MAX) -> dict[str, Any]:
    """One review in a list: headline, excerpt and an "Open review" link, each a TextRun (never Markdown)."""
    runs = [_run(fit_plain(headline(alert), 300), weight="Bolder"), _run(f" — “{fit_plain(excerpt(alert), excerpt_max)}”")]
    url = safe_review_url(alert.url)
    if url:
        runs.append(_run(" Open review", color="Accent", selectAction={"type": "Action.OpenUrl", "url": url}))
    return _rich(*runs, spacing="Small")


def _facts(alert: Alert) -> list[dict[str, Any]]:
    # Site and business are already in the card's title. Not a FactSet: Teams renders Markdown in fact values too.
    _, _, severity, _ = who(alert)
    facts = alert_facts(alert, severity=severity, site=None, business=None)
    return [_rich(_run(f"{name}: ", weight="Bolder"), _run(fit_plain(value, 300)), spacing="None") for name, value in facts]


def _footer(alert: Alert) -> dict[str, Any]:
    text = f"repwatch · source {visible_text(alert.source, single_line=True)} · review #{alert.review_id}"
    return _rich(_run(fit_plain(text, 300), isSubtle=True, size="Small"))


def _body_text(alert: Alert, url: str | None) -> dict[str, Any]:
    text = visible_text(alert.body)
    cut_note = "… [cut: the full review is behind “Open review”]" if url else "… [cut: the review is longer]"
    return _rich(_run(fit_pieces(list(text), BODY_MAX, cut_note) if text else "(no text)"))


# --------------------------------------------------------------------------------------------------------------
# Messages


def build_teams(alert: Alert) -> dict[str, Any]:
    """A Teams incoming-webhook message: one Adaptive Card (1.4) with an "Open review" button."""
    url = safe_review_url(alert.url)
    title_line = headline(alert)

    body: list[dict[str, Any]] = [_rich(_run(fit_plain(title_line, 300), size="Large", weight="Bolder"))]
    body += _facts(alert)
    title = visible_text(alert.title, single_line=True)
    if title:
        body.append(_rich(_run(fit_plain(f"“{title}”", 300), weight="Bolder"), spacing="Medium"))
    body.append(_body_text(alert, url))
    why = visible_text(alert.why, single_line=True)
    if why:
        body.append({"type": "TextBlock", "text": "Why it fired", "weight": "Bolder", "spacing": "Medium", "wrap": True})
        body.append(_rich(_run(fit_plain(why, 1000)), spacing="None"))
    draft = visible_text(alert.draft_reply)
    if draft:
        body.append({"type": "TextBlock", "text": "Draft reply, not posted: edit it and post it on the site yourself",
                     "weight": "Bolder", "spacing": "Medium", "wrap": True})
        body.append(_rich(_run(fit_plain(draft, DRAFT_MAX)), spacing="None"))
    if not url:
        body.append({"type": "TextBlock", "text": "No usable link: the review URL is not http(s)", "isSubtle": True, "wrap": True})
    body.append(_footer(alert))
    return _message(title_line, body, url)


def build_update(update: AlertUpdate) -> dict[str, Any]:
    alert = update.alert
    mark, word = ("✅", "Settled") if update.settled else ("🔄", "Changed")
    title_line = f"{mark} {word}: {headline(alert)}"
    body = [_rich(_run(fit_plain(title_line, 300), size="Large", weight="Bolder")), _note("What changed", weight="Bolder", spacing="Medium")]
    changes = [visible_text(line, single_line=True) for line in update.changes]
    changes = [line for line in changes if line] or ["(no details)"]
    body += [_rich(_run("• " + fit_plain(line, CHANGE_MAX)), spacing="None") for line in changes[:CHANGES_SHOWN]]
    if len(changes) > CHANGES_SHOWN:
        left = len(changes) - CHANGES_SHOWN
        body.append(_note(f"…and {left} more change{'s' if left != 1 else ''}", spacing="None", isSubtle=True))
    if update.settled:
        body.append(_note("No action needed.", weight="Bolder", color="Good", spacing="Medium"))
    else:
        body.append(_note("Still open: reply on the site if nobody has yet.", weight="Bolder", spacing="Medium"))
    body += _facts(alert)
    body.append(_rich(_run(fit_plain(f"“{excerpt(alert)}”", 1000)), spacing="Medium"))
    body.append(_footer(alert))
    return _message(title_line, body, safe_review_url(alert.url))


def build_reminder(reminder: Reminder) -> dict[str, Any]:
    alert = reminder.alert
    title_line = f"⏰ Still unanswered: {headline(alert)}"
    body = [_rich(_run(fit_plain(title_line, 300), size="Large", weight="Bolder")),
            _note(waiting(reminder), weight="Bolder", spacing="Small")]
    body += _facts(alert)
    title = visible_text(alert.title, single_line=True)
    if title:
        body.append(_rich(_run(fit_plain(f"“{title}”", 300), weight="Bolder"), spacing="Medium"))
    url = safe_review_url(alert.url)
    body.append(_body_text(alert, url))
    draft = visible_text(alert.draft_reply)
    if draft:
        body.append(_note("Draft reply, not posted: edit it and post it on the site yourself", weight="Bolder", spacing="Medium"))
        body.append(_rich(_run(fit_plain(draft, DRAFT_MAX)), spacing="None"))
    body.append(_footer(alert))
    return _message(title_line, body, url)


def build_spike(spike: Spike) -> dict[str, Any]:
    count, usual = spike_facts(spike)
    title_line = f"📈 Negative review spike · {spike_scope(spike)}"
    body = [_rich(_run(fit_plain(title_line, 300), size="Large", weight="Bolder")),
            _note(count, weight="Bolder", spacing="Small"), _note(usual, spacing="None")]
    examples = spike.examples[:SPIKE_EXAMPLES_SHOWN]
    if examples:
        body.append(_note("Examples", weight="Bolder", spacing="Medium"))
        body += [_item(alert, 600) for alert in examples]
    source = visible_text(spike.source, single_line=True)
    body.append(_rich(_run(fit_plain(f"repwatch · {f'source {source}' if source else 'all sources'}", 300), isSubtle=True, size="Small")))
    return _message(title_line, body)


def build_summary(summary: FloodSummary) -> dict[str, Any]:
    title_line = summary_title(summary)
    body = [_rich(_run(title_line, size="Large", weight="Bolder"))]
    by_severity = severities(summary)
    if by_severity:
        body.append(_rich(_run("By severity: ", weight="Bolder"), _run(by_severity), spacing="Small"))
    by_business = businesses(summary)
    if by_business:
        body.append(_rich(_run("By business: ", weight="Bolder"), _run(fit_plain(by_business, 1000)), spacing="None"))

    def more(count: int) -> dict[str, Any]:
        return _rich(_run(f"…and {count} more ("), _run(SUMMARY_COMMAND, fontType="Monospace"), _run(")"), spacing="Medium")

    # Items are added while the whole payload stays within LIST_BYTES, with room kept for the last line.
    used = _size(_message(title_line, body)) + _size(more(max(summary.count, len(summary.items)))) + 1
    shown = 0
    for alert in summary.items[:LIST_MAX]:
        item = _item(alert)
        if used + _size(item) + 1 > LIST_BYTES:
            break
        body.append(item)
        used += _size(item) + 1
        shown += 1
    left = not_listed(summary, shown)
    if left > 0:
        body.append(more(left))
    return _message(title_line, body)


def build_health(health: SourceHealth) -> dict[str, Any]:
    """For the operator: our own words and config values, plus the crawl's one-line error, all in TextRuns."""
    title_line, lines = health_lines(health)
    body = [_rich(_run(fit_plain(title_line, 300), size="Large", weight="Bolder"))]
    body += [_rich(_run(fit_plain(line, 1000)), spacing="Small") for line in lines]
    return _message(title_line, body, safe_review_url(health.url))


BUILDERS = Builders(alert=build_teams, update=build_update, reminder=build_reminder, spike=build_spike,
                    summary=build_summary, health=build_health)


def render(notice: Notice) -> bytes:
    """The request body for one alert or notice, within Teams' size limit."""
    message = BUILDERS.build(notice)
    body = json_body(message)
    assert len(body) <= PAYLOAD_MAX
    return body


class TeamsNotifier(Notifier):
    """Post each alert and notice to Microsoft Teams as an Adaptive Card, with an "Open review" button.

        kind: teams
        url: ${TEAMS_WEBHOOK_URL}     # an incoming webhook, or a Workflows "post to a channel when a webhook
                                      # request is received" URL

    Review text goes only where Teams never renders Markdown, so it shows as typed. A flood summary lists as many
    alerts as fit, then "and N more (repwatch reviews --negative)". Optional: timeout: 10, min_interval: 1 (seconds
    between sends). 429 (with Retry-After), 5xx and network errors are retried by the outbox; other 4xx are not.
    """

    kind: ClassVar[str] = "teams"
    Config: ClassVar[type[BaseModel]] = TeamsConfig
    config: TeamsConfig

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self.endpoint = JsonEndpoint(self.config, "Teams webhook", CHAT_HINTS)

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        # `target` does not apply: one URL is one channel, webhooks cannot reply in a thread, nobody is pinged.
        return self._post(render(alert))

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        # Updates and reminders are new messages (no threads, no editing the original); a summary lists its alerts.
        return self._post(render(notice))

    def _post(self, body: bytes) -> SendResult:
        answer = self.endpoint.post(body)
        failed = _TEAMS_FAILED.match(answer.body)
        if failed:
            raise self.endpoint.error(int(failed.group(1)), answer.headers, b"", via="Teams reported")
        return SendResult(remote_id=None)
