"""Webhook notifier: each alert POSTed with httpx as repwatch's own JSON, a Microsoft Teams card or a Discord embed."""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from alerts.base import Alert, DeliveryError, Notifier, SendResult
from alerts.slack import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    PACER,
    SEVERITY_ICONS,
    alert_facts,
    ZERO_WIDTH_SPACE,
    clean_text,
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


def build_json(alert: Alert) -> dict[str, Any]:
    """repwatch's own webhook schema, version 1 (documented in the WebhookNotifier docstring and README).

    Text fields carry the review's text as found (untrusted: escape it wherever you display it); `url` is the
    review's http(s) link, or null when the site gave something else (never javascript:, file:, ...).
    """
    return {
        "repwatch_version": SCHEMA_VERSION,
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

    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "fallbackText": teams_inert(_plain_fit(headline, 300)),
        "body": body,
    }
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open review", "url": url}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


BUILDERS: dict[str, Callable[[Alert], dict[str, Any]]] = {"json": build_json, "teams": build_teams, "discord": build_discord}


def render(alert: Alert, fmt: str) -> bytes:
    """The request body for one alert in one format (UTF-8 JSON; allow_nan=False: strict parsers must accept it)."""
    body = json.dumps(BUILDERS[fmt](alert), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    assert fmt != "teams" or len(body) <= TEAMS_PAYLOAD_MAX
    return body


# --------------------------------------------------------------------------------------------------------------
# Delivery

_FORMAT_NAMES = {"json": "webhook", "teams": "Teams webhook", "discord": "Discord webhook"}
# Legacy Teams connectors answer 200 with this text when Teams itself refused the message (e.g. its own 429).
_TEAMS_FAILED = re.compile(rb"^Webhook message delivery failed.*?HTTP error (\d{3})", flags=re.DOTALL)


class WebhookNotifier(Notifier):
    """POST each alert as JSON to a URL: repwatch's own schema, a Microsoft Teams card, or a Discord embed.

        kind: webhook
        url: ${ALERT_WEBHOOK_URL}
        format: json              # json (default) | teams | discord
        headers:                  # optional, e.g. for your own endpoint
          Authorization: "Bearer ${ALERT_WEBHOOK_TOKEN}"

    format: json sends {"repwatch_version": 1, "review_id", "business", "source", "site", "url", "rating",
    "author", "title", "body", "published_at" (ISO 8601, UTC), "language", "label", "score", "severity", "why",
    "draft_reply"}; missing values are null and review text is as found on the site (escape it when you show it).
    format: teams posts an Adaptive Card to a Teams incoming webhook or Workflows URL; format: discord posts one
    embed and pings nobody. Optional: timeout: 10, min_interval (seconds between sends; default 2 for discord,
    else 1). 429 (with Retry-After), 5xx and network errors are retried by the outbox; other 4xx are not.
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

    def send(self, alert: Alert) -> SendResult:
        body = render(alert, self.config.format)
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
