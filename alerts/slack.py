"""Slack notifier: one Block Kit message per alert, via a bot token (chat.postMessage) or an incoming webhook."""
from __future__ import annotations

import http.client
import logging
import re
from dataclasses import replace
from typing import Any, ClassVar, Literal
from urllib.error import URLError
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.webhook import WebhookClient

from alerts.base import (
    MENTIONS,
    Alert,
    AlertRefresh,
    AlertUpdate,
    DeliveryError,
    FloodSummary,
    Notifier,
    Reminder,
    SendResult,
    SourceHealth,
    Spike,
    Target,
)
from alerts.http import PACER, header, pace_key, parse_retry_after
from alerts.phrasing import (
    SEVERITY_ICONS,
    alert_facts,
    health_headline,
    short_rating,
    who,
)
from alerts.text import (
    fit,
    inert_mrkdwn,
    safe_review_url,
    slack_escape,
    utf16_len,
    visible_text,
)
from models.vocab import format_when, mask_secrets

DEFAULT_API_URL = "https://slack.com/api/"
# Slack's limits (docs.slack.dev, Block Kit reference), measured on the escaped text with utf16_len().
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
BLOCKS_MAX = 50
MESSAGE_TEXT_MAX = 40000
# The notification text only needs a glance's worth of the review.
FALLBACK_EXCERPT = 200

# Slack errors that may pass on their own; every other `ok: false` is a request or setup problem.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
     "team_added_to_org"}
)
# What the operator should do about the common permanent errors.
ERROR_HINTS = {
    "invalid_auth": "the bot token is wrong; copy the Bot User OAuth Token (xoxb-...) again",
    "not_authed": "no token reached Slack",
    "token_revoked": "the token was revoked; reinstall the app",
    "token_expired": "the token expired; reinstall the app or refresh the token",
    "account_inactive": "the app or its user was deactivated",
    "missing_scope": "the app needs the chat:write scope",
    "channel_not_found": "no such channel, or a private one the bot cannot see; use the channel id (C0123...)",
    "not_in_channel": "invite the bot to the channel (/invite @yourbot)",
    "is_archived": "the channel is archived",
    "invalid_blocks": "Slack rejected the message layout (a bug in repwatch: please report it)",
    "msg_too_long": "the message is too long (a bug in repwatch: please report it)",
    "invalid_payload": "Slack could not read the message (a bug in repwatch: please report it)",
    "no_service": "the webhook was removed or its URL is wrong; create a new incoming webhook",
    "invalid_token": "the webhook URL is wrong or was revoked; create a new incoming webhook",
    "action_prohibited": "a workspace admin restricted this webhook",
    "channel_is_archived": "the webhook's channel is archived",
    "posting_to_general_channel_denied": "only admins may post to that channel",
}
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{1,60}")

# The work buttons (monitor/service/slack_actions.py reads them back): action_id names the action, value carries
# "<review id>:<work_version>" (the state the message showed), well within Slack's 255 / 2000 character limits.
ACTION_PREFIX = "repwatch:"
WORK_ACTIONS = (  # action, button label, style
    ("take", "Take it", "primary"),
    ("replied", "Replied", None),
    ("resolved", "Resolved", None),
    ("not_complaint", "Not a complaint", None),
    ("snooze", "Snooze 1 day", None),
    ("draft", "Edit draft", None),
)
WORK_BLOCK_ID = "repwatch_work"
DRAFT_CALLBACK_ID = "repwatch:draft"
DRAFT_BLOCK_ID = "draft"
DRAFT_INPUT_ID = "text"
DRAFT_INPUT_MAX = 3000  # plain_text_input max_length
STATUS_WORDS = {"new": "new: nobody has taken it", "assigned": "taken", "replied": "replied",
                "resolved": "resolved", "not_complaint": "not a complaint"}

# A bare "@here" does not ping; Slack's syntax is <!here>, <!channel>, <@U...>, <!subteam^S...>.


class SlackConfig(BaseModel):
    """`token` + `channel` (bot token, chat.postMessage) or `webhook_url` (incoming webhook): exactly one."""

    # The one-mode check below fails on the whole entry; without this, pydantic would print the token in it.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    kind: Literal["slack"]
    token: SecretStr | None = None
    channel: str | None = None
    webhook_url: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    timeout: float = Field(10, gt=0)
    # The work buttons (Take it, Replied, Resolved, …) on each alert; they need slack_actions: set up to do anything.
    buttons: bool = True
    mention: str | None = None  # e.g. "<!here>" or "<@U123>"; added to critical alerts only
    # Slack allows about one message per second per channel; sends to one destination are spaced this far apart.
    min_interval: float = Field(1.0, ge=0, le=60)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not token.get_secret_value().strip().startswith("xox"):
            raise ValueError("does not look like a Slack token: use the Bot User OAuth Token, which starts with xoxb-")
        return token

    @field_validator("webhook_url")
    @classmethod
    def _webhook_shape(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and urlsplit(url.get_secret_value().strip()).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL like https://hooks.slack.com/services/T…/B…/…")
        return url

    @field_validator("api_url")
    @classmethod
    def _api_url_shape(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL (default {DEFAULT_API_URL})")
        return url if url.endswith("/") else url + "/"

    @field_validator("mention")
    @classmethod
    def _mention_shape(cls, mention: str | None) -> str | None:
        if mention is not None and not MENTIONS.fullmatch(mention.strip()):
            raise ValueError("write <!here>, <!channel>, <@U0123ABCD> or <!subteam^S0123ABCD> (a bare @here does not ping)")
        return mention.strip() if mention else None

    @model_validator(mode="after")
    def _exactly_one_mode(self) -> SlackConfig:
        if self.token is not None and self.webhook_url is not None:
            raise ValueError("give either `token` + `channel` (bot token) or `webhook_url` (incoming webhook), not both")
        if self.token is None and self.webhook_url is None:
            raise ValueError("give either `token` + `channel` (bot token, chat.postMessage) or `webhook_url` (incoming webhook)")
        if self.token is not None and not self.channel:
            raise ValueError("`channel` is required with `token`, e.g. \"#reviews\" or a channel id \"C0123ABCD\"")
        if self.webhook_url is not None and self.channel:
            raise ValueError("remove `channel`: an incoming webhook always posts to the channel chosen when it was created")
        return self


# --------------------------------------------------------------------------------------------------------------
# Untrusted text
#
# Everything that comes from a review site (author, title, body, site name, URL, why, draft) goes into Block Kit
# `plain_text` objects with emoji=False, escaped by alerts.text; the only mrkdwn we emit is our own (labels, the
# operator's mention, a link whose URL we validated). The top-level `text` (the notification) is inert mrkdwn, one
# line that starts with our own words, so a `>` in the review can never start a quote.


def plain(text: str) -> PlainTextObject:
    """A plain_text object for already-escaped text; emoji=False keeps :codes: in review text literal."""
    return PlainTextObject(text=text, emoji=False)


# --------------------------------------------------------------------------------------------------------------
# The message


def work_value(alert: Alert) -> str:
    return f"{alert.review_id}:{alert.work_version}"


def work_line(alert: Alert) -> str:
    """Who has the review, its status and since when, as one line (the assignee may be a Slack name: untrusted)."""
    status = STATUS_WORDS.get(alert.status, alert.status)
    who = visible_text(alert.assignee, single_line=True) if alert.assignee else ""
    parts = [f"Status: {status}"]
    if who:
        parts.append(f"taken by {who}")
    if alert.status_changed_at is not None:
        parts.append(f"since {format_when(alert.status_changed_at)}")
    return "🙋 " + " · ".join(parts) if who else "📋 " + " · ".join(parts)


def work_buttons(alert: Alert) -> list[ButtonElement]:
    return [
        ButtonElement(text=PlainTextObject(text=label, emoji=False), action_id=ACTION_PREFIX + action,
                      value=work_value(alert), style=style)
        for action, label, style in WORK_ACTIONS
    ]


def build_alert(
    alert: Alert, *, mention: str | None = None, ping_always: bool = False, update: AlertUpdate | None = None,
    in_thread: bool = False,
    buttons: bool = False,
) -> dict[str, Any]:
    """`{"text": ..., "blocks": [...]}` for one alert, within Slack's limits, with review text inert.

    `mention` pings on critical alerts (the notifier's own setting), or on every alert with `ping_always` (a
    route's). With `update`, this is the original message edited in place (chat.update): what changed is on top.
    `in_thread`: a reply in another alert's thread; for a later post of an incident it says so on top.
    """
    site, business, severity, icon = who(alert)
    ping = mention if (mention and (ping_always or severity == "critical") and update is None) else None
    url = safe_review_url(alert.url)
    repost = in_thread and bool(alert.also_posted_on) and update is None

    blocks: list[Block] = []
    if repost:
        incident = f" (incident #{alert.incident_id})" if alert.incident_id is not None else ""
        blocks.append(ContextBlock(elements=[plain(fit(
            f"🔁 Also posted on {site}: the same complaint as the alert above{incident}", 1000))]))
    if update is not None:
        state = "✅ no action needed now" if update.settled else "✏️ changed on the site"
        changes = "; ".join(visible_text(change, single_line=True) for change in update.changes)
        blocks.append(ContextBlock(elements=[plain(fit(f"{state}: {changes}", 1000))]))
    if ping:
        # The operator's own mention, so raw mrkdwn on purpose; it is validated by the config.
        what = "critical review" if severity == "critical" else f"{severity} review"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"{ping} {what}: please look now")))

    blocks.append(HeaderBlock(text=plain(fit(f"{icon} {short_rating(alert.rating)} review · {business} · {site}", HEADER_MAX))))

    fields = alert_facts(alert, severity=severity, site=site, business=business)
    blocks.append(SectionBlock(fields=[plain(fit(f"{label}\n{value}", FIELD_TEXT_MAX)) for label, value in fields][:FIELDS_MAX]))

    title = visible_text(alert.title, single_line=True)
    if title:
        blocks.append(SectionBlock(text=plain(fit(f"“{title}”", 300))))

    body = visible_text(alert.body)
    cut_note = "… [cut: the full review is behind “Open review”]" if url else "… [cut: the review is longer]"
    blocks.append(SectionBlock(text=plain(fit(body, SECTION_TEXT_MAX, cut_note) if body else "(no text)")))

    why = visible_text(alert.why, single_line=True)
    if why:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="*Why it fired*"), plain(fit(why, 1000))]))
    if buttons or alert.assignee or alert.status != "new":
        blocks.append(ContextBlock(elements=[plain(fit(work_line(alert), 1000))]))

    draft = visible_text(alert.draft_reply)
    if draft:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text="*Draft reply, not posted:* edit it and post it on the site yourself")])
        )
        blocks.append(SectionBlock(text=plain(fit(draft, SECTION_TEXT_MAX))))

    footer: list[Any] = []
    actions: list[ButtonElement] = work_buttons(alert) if buttons else []
    if url:
        actions.append(ButtonElement(text=PlainTextObject(text="Open review", emoji=False), url=url, action_id="open_review"))
    if actions:
        blocks.append(ActionsBlock(block_id=WORK_BLOCK_ID if buttons else None, elements=actions))
    if url:
        footer.append(MarkdownTextObject(text=f"<{slack_escape(url)}|Open the review on the site>"))
    else:
        footer.append(plain("No usable link: the review URL is not http(s)"))
    footer.append(plain(fit(f"repwatch · source {visible_text(alert.source, single_line=True)} · review #{alert.review_id}", 300)))
    blocks.append(ContextBlock(elements=footer))

    fallback = f"{icon} {short_rating(alert.rating)} review of {business} on {site} ({severity}): "
    if repost:
        fallback = f"🔁 also posted on {site}: {short_rating(alert.rating)} review of {business}: "
    if update is not None:
        fallback = ("✅ " if update.settled else "✏️ ") + "updated: " + fallback
    excerpt = visible_text(title + " " + body if title else body, single_line=True)
    text = inert_mrkdwn(fallback) + fit(excerpt, FALLBACK_EXCERPT, transform=inert_mrkdwn)
    if url:
        text += " " + slack_escape(url)
    if ping:
        text = f"{ping} {text}"
    rendered = [block.to_dict() for block in blocks]  # to_dict() runs slack-sdk's own Block Kit checks too
    assert len(rendered) <= BLOCKS_MAX and utf16_len(text) <= MESSAGE_TEXT_MAX
    return {"text": text, "blocks": rendered}


def build_draft_modal(alert: Alert, *, private_metadata: str) -> dict[str, Any]:
    """The "Edit draft" modal: the draft reply (the team's edit, else the generated one in the reviewer's language)
    in a text box; what the owner saves is kept with the review, never posted on the site."""
    language = visible_text(alert.language or "", single_line=True) or "unknown"
    excerpt = visible_text(f"{alert.title}: {alert.body}" if alert.title else alert.body, single_line=True)
    draft = visible_text(alert.draft_reply or "")
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": DRAFT_INPUT_ID, "multiline": True,
                               "max_length": DRAFT_INPUT_MAX}
    if draft:
        element["initial_value"] = draft[:DRAFT_INPUT_MAX]
    blocks: list[dict[str, Any]] = [
        SectionBlock(text=plain(fit(f"{short_rating(alert.rating)} · {visible_text(alert.site, single_line=True)} · "
                                    f"{excerpt}", 1000))).to_dict(),
        ContextBlock(elements=[plain(fit(f"Review #{alert.review_id} · language: {language} · repwatch saves the "
                                         "draft with the review; post it on the site yourself", 500))]).to_dict(),
        {"type": "input", "block_id": DRAFT_BLOCK_ID, "label": {"type": "plain_text", "text": "Reply", "emoji": False},
         "element": element},
    ]
    return {"type": "modal", "callback_id": DRAFT_CALLBACK_ID, "private_metadata": private_metadata,
            "title": {"type": "plain_text", "text": "Draft reply", "emoji": False},
            "submit": {"type": "plain_text", "text": "Save", "emoji": False},
            "close": {"type": "plain_text", "text": "Cancel", "emoji": False}, "blocks": blocks}


def _message(headline: str, lines: list[str], *, fallback: str, ping: str | None = None,
             link: str | None = None, link_label: str = "Open review") -> dict[str, Any]:
    """A short message: our headline, untrusted lines as plain text, an optional button; within Slack's limits."""
    blocks: list[Block] = []
    if ping:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"{ping} please look")))
    blocks.append(HeaderBlock(text=plain(fit(visible_text(headline, single_line=True), HEADER_MAX))))
    # Section text is capped at 3000; 45 sections keep us under the 50-block cap with room for the rest.
    chunk: list[str] = []
    sections: list[str] = []
    for line in (visible_text(line) for line in lines):
        if chunk and utf16_len(slack_escape("\n".join([*chunk, line]))) > SECTION_TEXT_MAX:
            sections.append("\n".join(chunk))
            chunk = []
        chunk.append(line)
    if chunk:
        sections.append("\n".join(chunk))
    blocks.extend(SectionBlock(text=plain(fit(section, SECTION_TEXT_MAX))) for section in sections[:BLOCKS_MAX - 5])
    url = safe_review_url(link)
    if url:
        blocks.append(ActionsBlock(elements=[
            ButtonElement(text=PlainTextObject(text=link_label, emoji=False), url=url, action_id="open_review")
        ]))
    text = fit(visible_text(fallback, single_line=True), FALLBACK_EXCERPT * 2, transform=inert_mrkdwn)
    if ping:
        text = f"{ping} {text}"
    rendered = [block.to_dict() for block in blocks]
    assert len(rendered) <= BLOCKS_MAX
    return {"text": text, "blocks": rendered}


def _one_line(alert: Alert, limit: int = 160) -> str:
    """★ rating · site · author: excerpt — the short form of an alert, for lists and threads."""
    excerpt = visible_text(f"{alert.title}: {alert.body}" if alert.title else alert.body, single_line=True)
    if len(excerpt) > limit:
        excerpt = excerpt[: limit - 1].rstrip() + "…"
    who = visible_text(alert.author, single_line=True) or "anonymous"
    return f"{short_rating(alert.rating)} · {visible_text(alert.site, single_line=True)} · {who}: {excerpt}"


def build_update_reply(update: AlertUpdate) -> dict[str, Any]:
    """The thread reply (or, without a thread, the new message) that says what changed on a review."""
    alert = update.alert
    # Marked by the team in repwatch ("marked resolved by ana: …") is no change on the site: the headline says so.
    by_team = bool(update.changes) and all(change.startswith("marked ") for change in update.changes)
    what = visible_text(update.changes[0].split(":", 1)[0], single_line=True) if by_team else f"changed on {alert.site}"
    headline = ("✅ " if update.settled else "✏️ ") + f"Review #{alert.review_id} {what}"
    said = list(update.changes)
    if by_team:  # what follows "marked resolved by ana": the note, if any
        said = [note.strip() for change in update.changes if ":" in change for note in [change.split(":", 1)[1]]]
    lines = [f"• {change}" for change in said] + [_one_line(alert, 300)]
    if update.settled:
        lines.append("No action needed now.")
    fallback = f"{headline}: {'; '.join(said)}" if said else headline
    return _message(headline, lines, fallback=fallback, link=alert.url)


def build_reminder(reminder: Reminder, *, mention: str | None = None) -> dict[str, Any]:
    alert = reminder.alert
    hours = reminder.waiting.total_seconds() / 3600
    headline = f"⏰ Still unanswered after {hours:.0f} h: {short_rating(alert.rating)} review on {alert.site}"
    lines = [
        f"{alert.business} · the reply deadline is {reminder.deadline.total_seconds() / 3600:g} h.",
        _one_line(alert, 300),
        f"Reply on the site, then `repwatch handle {alert.review_id}` if you answered elsewhere.",
    ]
    return _message(headline, lines, fallback=headline, ping=mention, link=alert.url, link_label="Reply on the site")


def build_spike(spike: Spike, *, mention: str | None = None) -> dict[str, Any]:
    where = f"{spike.business} on {spike.site}" if spike.source else f"{spike.business} (all sites)"
    headline = f"📈 Spike: {spike.count} negative reviews in 24 h for {where}"
    lines = [
        f"Usually {spike.mean:.1f} ± {spike.sd:.1f} a day over the previous 7 days; alert threshold {spike.threshold:.1f}.",
        f"Window ends {format_when(spike.until)}.",
    ]
    if spike.examples:
        lines.append("Examples:")
        lines += [f"• {_one_line(alert)}" for alert in spike.examples]
    return _message(headline, lines, fallback=headline, ping=mention,
                    link=spike.examples[0].url if spike.examples else None, link_label="Open the newest")


def build_summary(summary: FloodSummary, *, mention: str | None = None) -> dict[str, Any]:
    headline = f"🚨 {summary.count} negative reviews need a look"
    lines = [
        " · ".join(f"{name}: {count}" for name, count in summary.by_business),
        " · ".join(f"{SEVERITY_ICONS.get(name, '⚪')} {name}: {count}" for name, count in summary.by_severity),
    ]
    if summary.threaded:
        lines.append("Each review follows in this thread.")
    else:
        shown = summary.items[:40]
        lines += [f"• {_one_line(alert)} {safe_review_url(alert.url) or ''}".rstrip() for alert in shown]
        if summary.count > len(shown):
            lines.append(f"… and {summary.count - len(shown)} more: `repwatch reviews --negative`")
    return _message(headline, lines, fallback=f"{headline}: " + lines[0], ping=mention)


def build_health(health: SourceHealth, *, mention: str | None = None) -> dict[str, Any]:
    """For the operator; the error line is ours but may quote a site's words, so it is plain text like the rest."""
    headline = health_headline(health)
    lines = [f"Business: {health.business} · page: {health.url}"]
    if health.event == "bad":
        lines.append(f"{health.failures} crawls in a row failed. Last error: {health.error or 'unknown'}")
        lines.append("Last good crawl: " + (format_when(health.last_success_at) or "never"))
        lines.append("`repwatch sources health` shows every source; see docs/sources.md, “When a source goes wrong”.")
    elif health.event == "recovered":
        lines.append("The last crawl worked again; reviews missed meanwhile are fetched as it pages back.")
    else:
        lines.append(f"It usually gets about {health.usual_per_week or 0:.1f} new reviews a week. The crawl works, "
                     "so the page may have moved or changed its layout: open it and check.")
    return _message(headline, lines, fallback=headline, ping=mention if health.event == "bad" else None,
                    link=health.url, link_label="Open the page")


# --------------------------------------------------------------------------------------------------------------
# Delivery


# slack-sdk logs request URLs and bodies at DEBUG (for a webhook the URL is the secret). Its clients log through
# this logger, whose own level keeps that debug output from ever being produced, even under a DEBUG root logger.
# Its ERROR lines ("Failed to send a request to Slack API server: …") are silenced too: the DeliveryError raised
# with them is what repwatch reports, in one line of its own.
_SDK_LOGGER = logging.getLogger("alerts.slack.sdk")
_SDK_LOGGER.setLevel(logging.CRITICAL)


class SlackNotifier(Notifier):
    """Post each alert to Slack as a Block Kit message.

    Either a bot token and a channel (chat.postMessage; the bot must be in the channel, scope chat:write):
        kind: slack
        token: ${SLACK_BOT_TOKEN}
        channel: "#reviews"
    or an incoming webhook (posts to the channel chosen when the webhook was created):
        kind: slack
        webhook_url: ${SLACK_WEBHOOK_URL}
    Optional: mention: "<!here>" (added to critical alerts only), timeout: 10, min_interval: 1 (seconds between
    messages to one channel), api_url (a Slack-compatible server, e.g. the offline demo's).
    """

    kind: ClassVar[str] = "slack"
    Config: ClassVar[type[BaseModel]] = SlackConfig
    config: SlackConfig

    # Retrying: slack-sdk's retry handlers are switched off (retry_handlers=[]), and every failure becomes a
    # DeliveryError for the outbox, which reschedules retryable ones with backoff and honours retry_after.
    # Why not the sdk's: its RateLimitErrorRetryHandler crashes on a non-integer Retry-After and otherwise sleeps
    # for as long as Slack says (an hour would stall every other delivery); its connection handler re-POSTs after
    # a reset, which can post the alert twice while the outbox never learns an attempt was made. Bursts are
    # avoided up front by the pacer instead.

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        cfg = self.config
        self._secrets = [s for s in (_secret(cfg.token), _secret(cfg.webhook_url)) if s]
        if cfg.webhook_url is not None:
            hook = cfg.webhook_url.get_secret_value().strip()
            self._webhook: WebhookClient | None = WebhookClient(
                url=hook, timeout=cfg.timeout, retry_handlers=[], logger=_SDK_LOGGER  # type: ignore[arg-type]
            )
            self._webhook.proxy = None  # see _honour_no_proxy
            self._client: WebClient | None = None
            self._destination = f"Slack webhook ({urlsplit(hook).hostname})"
            self._pace_key = pace_key(hook)
            self._secrets.append(urlsplit(hook).path)
        else:
            self._client = WebClient(
                token=_secret(cfg.token),
                base_url=cfg.api_url,
                timeout=cfg.timeout,  # type: ignore[arg-type]  # urllib takes a float
                retry_handlers=[],
                logger=_SDK_LOGGER,
            )
            self._client.proxy = None  # see _honour_no_proxy
            self._webhook = None
            self._destination = f"Slack channel {cfg.channel}"
            self.threads = True  # chat.postMessage answers with the message's ts: replies can go under it
            self.edits = True  # and chat.update edits it: the work buttons' clicks show on the alert
        # _honour_no_proxy: slack-sdk copies HTTPS_PROXY into .proxy and then ignores NO_PROXY (a local Slack-shaped
        # server would be sent to the proxy). With .proxy None it uses plain urlopen, which reads both variables.

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        mention, always = (target.mention, True) if target.mention else (self.config.mention, False)
        return self._deliver(build_alert(alert, mention=mention, ping_always=always,
                                         in_thread=target.thread is not None, buttons=self.buttons), target)

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        mention = target.mention or self.config.mention
        if isinstance(notice, AlertUpdate):
            if notice.original and self._client is not None:
                # Edit the alert in place, so the channel shows the review as it is now, then say what changed
                # in its thread. Both are safe to repeat if the outbox retries after a failure in between.
                self._edit(notice.original, build_alert(notice.alert, update=notice, buttons=self.buttons))
                return self._deliver(build_update_reply(notice), replace(target, thread=notice.original))
            return self._deliver(build_update_reply(notice), replace(target, thread=None))
        if isinstance(notice, Reminder):
            # In the alert's thread and, so it is not missed, in the channel too (reply_broadcast).
            return self._deliver(build_reminder(notice, mention=mention), target, broadcast=True)
        if isinstance(notice, Spike):
            return self._deliver(build_spike(notice, mention=mention), target)
        if isinstance(notice, FloodSummary):
            return self._deliver(build_summary(notice, mention=target.mention), target)
        if isinstance(notice, SourceHealth):
            return self._deliver(build_health(notice, mention=mention), target)
        raise TypeError(f"unknown notice {type(notice).__name__}")

    @property
    def buttons(self) -> bool:
        """The work buttons go on alerts posted with the bot token (a click edits the message with chat.update)."""
        return self.config.buttons and self._client is not None

    def refresh(self, refresh: AlertRefresh) -> SendResult:
        """Edit a sent alert in place: who has it, its status and since when; the buttons stay."""
        self._edit(refresh.original, build_alert(refresh.alert, buttons=self.buttons))
        return SendResult(remote_id=refresh.original)

    # -- answering the work buttons (monitor/service/slack_actions.py): every call raises DeliveryError on failure

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal for the person who clicked (views.open; the trigger_id lives 3 seconds)."""
        self._call(lambda client: client.views_open(trigger_id=trigger_id, view=view))

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only `user` sees, in `channel` (chat.postEphemeral): the answer to a click that did nothing."""
        self._call(lambda client: client.chat_postEphemeral(channel=channel, user=user, text=text))

    def channel_members(self, channel: str) -> set[str]:
        """The member ids of a channel (conversations.members; scopes channels:read, groups:read)."""
        members: set[str] = set()
        cursor: str | None = None
        for _ in range(100):  # 100 pages of 1000: a channel bigger than that is not a team
            page = self._call(lambda client: client.conversations_members(channel=channel, limit=1000, cursor=cursor))
            members.update(m for m in page.get("members") or [] if isinstance(m, str))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return members

    def group_members(self, group: str) -> set[str]:
        """The member ids of a user group (usergroups.users.list; scope usergroups:read)."""
        page = self._call(lambda client: client.usergroups_users_list(usergroup=group))
        return {m for m in page.get("users") or [] if isinstance(m, str)}

    def respond(self, response_url: str, text: str) -> None:
        """An ephemeral answer through a click's response_url (the caller checked it is Slack's)."""
        hook = WebhookClient(url=response_url, timeout=self.config.timeout, retry_handlers=[],  # type: ignore[arg-type]
                             logger=_SDK_LOGGER)
        hook.proxy = None  # see _honour_no_proxy
        try:
            response = hook.send(text=text, response_type="ephemeral", replace_original=False)
        except (OSError, http.client.HTTPException, SlackClientError) as err:
            raise self._network_error(err) from None
        if not 200 <= response.status_code < 300:
            raise self._delivery_error(status=response.status_code, code=None, retry_after=None)

    def _call(self, call: Any) -> Any:
        if self._client is None:
            raise DeliveryError(f"{self._destination}: needs a bot token (token + channel) for this", retryable=False)
        try:
            return call(self._client)
        except SlackApiError as err:
            raise self._api_error(err) from None
        except (OSError, http.client.HTTPException, SlackClientError) as err:
            raise self._network_error(err) from None

    def _deliver(self, message: dict[str, Any], target: Target, *, broadcast: bool = False) -> SendResult:
        if self._webhook is not None:
            PACER.wait_turn(self._pace_key, self.config.min_interval)
            return self._send_webhook(message)
        channel, thread_ts = self.config.channel, None
        if target.thread and "/" in target.thread:
            channel, thread_ts = target.thread.split("/", 1)  # a reply goes where its parent is
        elif target.channel:
            channel = target.channel
        PACER.wait_turn(f"{self.config.api_url}#{channel}", self.config.min_interval)  # Slack's limit is per channel
        return self._post(message, channel=channel, thread_ts=thread_ts, broadcast=broadcast and thread_ts is not None)

    def _post(self, message: dict[str, Any], *, channel: str | None, thread_ts: str | None = None,
              broadcast: bool = False) -> SendResult:
        assert self._client is not None
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        if broadcast:
            extra["reply_broadcast"] = True
        try:
            response = self._client.chat_postMessage(
                channel=channel, text=message["text"], blocks=message["blocks"],  # type: ignore[arg-type]
                unfurl_links=False, unfurl_media=False, **extra,
            )
        except SlackApiError as err:
            raise self._api_error(err) from None
        except (OSError, http.client.HTTPException, SlackClientError) as err:
            raise self._network_error(err) from None
        channel, ts = response.get("channel"), response.get("ts")
        return SendResult(remote_id=f"{channel}/{ts}" if channel and ts else None)

    def _edit(self, remote_id: str, message: dict[str, Any]) -> None:
        assert self._client is not None
        channel, ts = remote_id.split("/", 1)
        PACER.wait_turn(f"{self.config.api_url}#{channel}", self.config.min_interval)
        try:
            self._client.chat_update(channel=channel, ts=ts, text=message["text"], blocks=message["blocks"])
        except SlackApiError as err:
            data = err.response.data if isinstance(err.response.data, dict) else {}
            if data.get("error") in ("message_not_found", "cant_update_message", "edit_window_closed"):
                return  # deleted in Slack, or no longer editable: the thread reply still tells the story
            raise self._api_error(err) from None
        except (OSError, http.client.HTTPException, SlackClientError) as err:
            raise self._network_error(err) from None

    def _send_webhook(self, message: dict[str, Any]) -> SendResult:
        assert self._webhook is not None
        try:
            response = self._webhook.send(
                text=message["text"], blocks=message["blocks"], unfurl_links=False, unfurl_media=False
            )
        except (OSError, http.client.HTTPException, SlackClientError) as err:
            raise self._network_error(err) from None
        # WebhookClient returns 4xx/5xx (429 included) instead of raising: every answer is checked here.
        if 200 <= response.status_code < 300:
            return SendResult(remote_id=None)
        code = (response.body or "").strip()
        raise self._delivery_error(
            status=response.status_code,
            code=code if _ERROR_CODE.fullmatch(code) else None,
            retry_after=header(response.headers, "Retry-After"),
        )

    def _api_error(self, err: SlackApiError) -> DeliveryError:
        response = err.response
        data = response.data if isinstance(response.data, dict) else {}
        code = data.get("error") if isinstance(data.get("error"), str) else None
        return self._delivery_error(
            status=response.status_code,
            code=code if code and _ERROR_CODE.fullmatch(code) else None,
            retry_after=header(response.headers or {}, "Retry-After"),
        )

    def _delivery_error(self, *, status: int, code: str | None, retry_after: Any) -> DeliveryError:
        """Slack's answer as a DeliveryError: 429 and 5xx are retryable, request and setup problems are not."""
        what = f"{self._destination}: HTTP {status}" + (f" {code}" if code else "")
        if status == 429 or code in ("ratelimited", "rate_limited"):
            seconds = parse_retry_after(retry_after)
            return DeliveryError(self._safe(f"{what}: rate limited, retry in {seconds:g}s"), retryable=True, retry_after=seconds)
        if status >= 500 or status == 408 or code in TRANSIENT_ERRORS:
            return DeliveryError(self._safe(f"{what}: Slack is having trouble, will retry"), retryable=True)
        hint = ERROR_HINTS.get(code or "")
        if hint is None and status in (403, 404, 410) and self._webhook is not None:
            hint = "the webhook URL is wrong or was removed"
        return DeliveryError(self._safe(what + (f": {hint}" if hint else "")), retryable=False)

    def _network_error(self, err: BaseException) -> DeliveryError:
        if isinstance(err, SlackClientError) and not isinstance(err, SlackApiError):
            # e.g. SlackRequestError("Invalid URL detected: <the url>"): a setup problem, and its text may hold the URL.
            return DeliveryError(self._safe(f"{self._destination}: request refused by slack-sdk ({type(err).__name__})"), retryable=False)
        reason: Any = err.reason if isinstance(err, URLError) else err
        if isinstance(reason, (TimeoutError,)) or "timed out" in str(reason):
            detail = f"no answer within {self.config.timeout:g}s"
        elif isinstance(reason, ConnectionRefusedError):
            detail = "connection refused"
        else:
            detail = f"{type(reason).__name__}: {reason}"
        return DeliveryError(self._safe(f"{self._destination}: could not reach Slack ({detail}), will retry"), retryable=True)

    def _safe(self, message: str) -> str:
        """Belt and braces: no secret survives into a message, whatever a library put into it."""
        return mask_secrets(message, *(secret for secret in self._secrets if len(secret) > 4))


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value().strip() if value is not None else None
