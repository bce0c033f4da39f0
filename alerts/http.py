"""Posting to a webhook URL: its config, JSON over httpx, pacing, Retry-After, and HTTP failures as secret-free DeliveryErrors."""
from __future__ import annotations

import email.utils
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from alerts.base import DeliveryError
from alerts.text import visible_text
from models.vocab import mask_secrets

USER_AGENT = "repwatch-webhook/1"
# Seconds to wait when a destination says 429 but its Retry-After is missing or unreadable.
DEFAULT_RETRY_AFTER = 30.0
# A Retry-After beyond this is treated as this (a broken header must not park an alert for days).
MAX_RETRY_AFTER = 3600.0
# Only the start of an answer is read: it decides retry_after or a hint, and a hostile endpoint can't flood memory.
RESPONSE_READ_MAX = 64 * 1024
# A server's own words shown in an error (Discord's JSON `message`) are cut to this.
DETAIL_SHOWN = 120

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # httpx encodes header values as ASCII; no CR/LF (no injection)
# Headers repwatch sets itself: a config value would break the request or lie about the body.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})

# What a chat webhook's (Teams, Discord) refusal means; a JSON endpoint of your own gets its own hints.
CHAT_HINTS = {
    400: "the message was rejected (a bug in repwatch: please report it)",
    401: "the webhook's token is wrong or was revoked",
    403: "the webhook's token is wrong or was revoked",
}
_COMMON_HINTS = {
    404: "the webhook URL is wrong or the webhook was deleted",
    410: "the webhook URL is wrong or the webhook was deleted",
    405: "the URL does not accept POST",
    413: "the message is too large for the endpoint",
}


class WebhookTarget(BaseModel):
    """`url` (a secret: webhook URLs carry tokens), optional `headers` (values are secrets), `timeout`, `min_interval`."""

    # Without hide_input_in_errors pydantic would print the URL or a header value in a config error.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: SecretStr
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(10, gt=0, le=120)
    min_interval: float = Field(1.0, ge=0, le=60, description="seconds between sends to this URL")

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


def json_body(message: dict[str, Any]) -> bytes:
    """UTF-8 JSON; allow_nan=False: strict parsers on the other side must accept it."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# Pacing and Retry-After


class Pacer:
    """Spaces sends to one destination `interval` seconds apart, across every notifier in the process.

    Slack allows about one message per second per channel and answers a burst with 429; waiting our turn here
    is cheaper than a 429 and a rescheduled delivery. A slot is reserved under the lock, so threads queue up.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: dict[str, float] = {}

    def wait_turn(self, key: str, interval: float) -> None:
        if interval <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free.get(key, now))
            self._next_free[key] = start + interval
        if start > now:
            self._sleep(start - now)


PACER = Pacer()


def pace_key(url: str) -> str:
    """A URL as a pacing key that does not hold its token."""
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()


def parse_retry_after(value: Any, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float:
    """Seconds to wait from a Retry-After header: integer, decimal or HTTP-date; anything else -> the default."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return DEFAULT_RETRY_AFTER
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now()).total_seconds()
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def header(headers: Mapping[str, Any] | Any, name: str) -> Any:
    """A header by name, whatever the case of the mapping's keys."""
    for key in getattr(headers, "keys", lambda: [])():
        if key.lower() == name.lower():
            return headers[key]
    return None


# --------------------------------------------------------------------------------------------------------------
# Posting


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: its headers and the start of its body."""

    status: int
    headers: httpx.Headers
    body: bytes


class JsonEndpoint:
    """One configured URL: POST JSON bodies to it, paced, with every failure a DeliveryError that names no secret.

    `label` names the destination in errors ("Discord webhook" → "Discord webhook (host): HTTP 404 ..."); `hints`
    say what a refusal status means for this kind of endpoint.
    """

    def __init__(self, config: WebhookTarget, label: str, hints: Mapping[int, str]):
        self.config = config
        self.url = config.url.get_secret_value()
        parts = urlsplit(self.url)
        self.destination = f"{label} ({parts.hostname})"
        self.hints = hints
        self._pace_key = pace_key(self.url)
        self._headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        self._headers.update({key: value.get_secret_value() for key, value in config.headers.items()})
        # Everything that must never reach a log line: the URL and its parts (tokens live in path, query or
        # userinfo), and every configured header value; the longest first, so a part never hides its whole.
        secrets = [self.url, parts.path, parts.query, parts.password or "", parts.username or ""]
        secrets += [value.get_secret_value() for value in config.headers.values()]
        self._secrets = sorted({s for s in secrets if len(s) > 4 and s != "/"}, key=len, reverse=True)

    def post(self, body: bytes) -> Answer:
        """Send one body; a 2xx answer is returned, anything else raised as a DeliveryError."""
        PACER.wait_turn(self._pace_key, self.config.min_interval)
        try:
            # A client per send: alerts are few and paced, and nothing stays open between outbox runs.
            # follow_redirects=False: a redirected POST would go (with its auth header) somewhere not configured.
            with (
                httpx.Client(timeout=self.config.timeout, follow_redirects=False) as client,
                client.stream("POST", self.url, content=body, headers=self._headers) as response,
            ):
                answer = _read_capped(response)
                status, headers = response.status_code, response.headers
        except httpx.HTTPError as err:
            raise self._network_error(err) from None
        except (httpx.InvalidURL, UnicodeError, ValueError) as err:
            # e.g. an IDNA label httpx only rejects when connecting; the exception's text may hold the URL.
            raise DeliveryError(self.safe(f"{self.destination}: the URL cannot be used ({type(err).__name__})"),
                                retryable=False) from None
        if 200 <= status < 300:
            return Answer(status, headers, answer)
        raise self.error(status, headers, answer)

    def error(self, status: int, headers: httpx.Headers, answer: bytes, *, via: str = "HTTP") -> DeliveryError:
        """A refusal as a DeliveryError: 429, 408 and 5xx are retryable, other statuses are not."""
        what = f"{self.destination}: {via} {status}"
        data = json_object(answer)
        if status == 429:
            seconds = _retry_after(headers, data)
            return DeliveryError(self.safe(f"{what}: rate limited, retry in {seconds:g}s"), retryable=True, retry_after=seconds)
        if status >= 500 or status == 408:
            return DeliveryError(self.safe(f"{what}: the endpoint is having trouble, will retry"), retryable=True)
        detail = _detail(data)
        hint = self._hint(status)
        text = what + (f" ({detail})" if detail else "") + (f": {hint}" if hint else "")
        return DeliveryError(self.safe(text), retryable=False)

    def _hint(self, status: int) -> str | None:
        if 300 <= status < 400:
            return "the URL redirects; put the final URL in config (redirects are not followed)"
        return self.hints.get(status) or _COMMON_HINTS.get(status)

    def _network_error(self, err: httpx.HTTPError) -> DeliveryError:
        # httpx's own messages are not shown whole: some carry the request URL. Only a known shape is kept.
        if isinstance(err, httpx.TimeoutException):
            detail = f"no answer within {self.config.timeout:g}s"
        elif "CERTIFICATE_VERIFY_FAILED" in str(err):
            return DeliveryError(self.safe(f"{self.destination}: the server's TLS certificate is not trusted"), retryable=False)
        elif isinstance(err, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)):
            return DeliveryError(self.safe(f"{self.destination}: request refused by httpx ({type(err).__name__})"), retryable=False)
        elif isinstance(err, httpx.ConnectError):
            cause = err.__context__ or err.__cause__
            refused = "refused" in str(err).lower() or isinstance(cause, ConnectionRefusedError)
            detail = "connection refused" if refused else "could not connect"
        else:
            detail = type(err).__name__
        return DeliveryError(self.safe(f"{self.destination}: could not reach the endpoint ({detail}), will retry"), retryable=True)

    def safe(self, message: str) -> str:
        """Belt and braces: no secret survives into a message, whatever a server or library put into it."""
        return mask_secrets(message, *self._secrets)


def _read_capped(response: httpx.Response) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= RESPONSE_READ_MAX:
            break
    return bytes(data[:RESPONSE_READ_MAX])


def json_object(answer: bytes) -> dict[str, Any]:
    """The answer as a JSON object, or {} for anything else."""
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
    text = visible_text(message, single_line=True)
    if len(text) > DETAIL_SHOWN:
        text = text[: DETAIL_SHOWN - 1] + "…"
    code = data.get("code")
    return f"{text}, code {code}" if isinstance(code, int) and not isinstance(code, bool) else text
