"""What the API kinds share: rate-limit answers and headers, credentials from the environment, auth failures."""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import scrapy
from pydantic import field_validator
from scrapy.http import Response

from spiders.base import ReviewSpider, SourceOptions
from spiders.items import ReviewItem
from spiders.pipelines.normalize import parse_datetime
from spiders.politeness import HOSTS, RETRY_AFTER_CAP, parse_retry_after

# A 429 or 503 without Retry-After is asked again after 1, 2, 4, 8 s; after that the page counts as failed.
BACKOFF_BASE = 1.0
RATE_LIMIT_TRIES = 4
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name(value: str | None) -> str | None:
    """Validate an option that names an environment variable (a secret is never written in config.yaml)."""
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (give its name, like REDDIT_CLIENT_SECRET)")
    return value


class EnvNameOptions(SourceOptions):
    """Options with fields ending `_env`: each names the environment variable that holds a secret."""

    @field_validator("*")
    @classmethod
    def _env_names(cls, value: Any, info: Any) -> Any:
        if str(info.field_name).endswith("_env") and isinstance(value, str | type(None)):
            return env_name(value)
        return value


class BearerTokenOptions(EnvNameOptions):
    """Options of an API that may want a Bearer token: `access_token_env` names the variable that holds it."""

    access_token_env: str | None = None


class MissingCredential(Exception):
    """An environment variable a source's options name is not set."""


def credential(variable: str, option: str) -> str:
    """The secret in environment variable `variable` (named by `options.<option>`)."""
    value = os.environ.get(variable, "")
    if not value:
        raise MissingCredential(f"environment variable {variable} (options.{option}) is not set")
    return value


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reset_seconds(value: str, now: float) -> float | None:
    """A rate-limit reset header: seconds from now (Reddit), an epoch time (Bluesky), or an ISO time (Mastodon)."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        moment = parse_datetime(value)
        return None if moment is None else max(0.0, (moment - datetime.now(UTC)).total_seconds())
    if number > 1e9:  # an epoch time
        return max(0.0, number - now)
    return max(0.0, number)


def _header(response: Response, *names: str) -> str | None:
    for name in names:
        value = response.headers.get(name)
        if value is not None:
            return value.decode("latin-1")
    return None


class ApiSpider(ReviewSpider):
    """Base of the kinds that read a documented API (abstract: not a kind itself).

    The API's rules govern these requests, not robots.txt (meant for crawlers of pages): they are paced by the
    API's own rate-limit headers and answers. A 429 or 503 is waited out here (its Retry-After, else exponential
    backoff), not retried at once; a 401 or 403 that no bot wall sent is an authentication failure, one line.
    """

    abstract = True
    # Statuses Scrapy's RetryMiddleware must leave alone: this spider waits them out itself.
    custom_settings = {"RETRY_HTTP_CODES": [500, 502, 504, 522, 524, 408]}
    handle_httpstatus_list = [401, 403, 429, 503]
    # Seconds between two requests to the API when its answers carry no rate-limit headers.
    min_interval: float = 0.0
    obeys_robots_txt: ClassVar[bool] = False

    def api_headers(self) -> dict[str, str]:
        """Headers every API request carries (authorization, a User-Agent the API asks for)."""
        return {}

    def auth_hint(self) -> str:
        """What to check when the API refuses our credentials."""
        return "the API refused the request"

    def api_request(self, url: str, page: int, *, method: str = "GET", body: str | bytes | None = None,
                    headers: dict[str, str] | None = None, meta: dict[str, Any] | None = None) -> scrapy.Request:
        all_meta = {**self.page_meta(page), **(meta or {})}
        if not self.obeys_robots_txt:
            all_meta["dont_obey_robotstxt"] = True
        return scrapy.Request(
            url, method=method, body=body, headers={**self.api_headers(), **(headers or {})},
            callback=self.parse, errback=self.fetch_failed, meta=all_meta, dont_filter=True,
        )

    def follow_page(self, response: Response, next_url: str, page: int) -> scrapy.Request:
        return self.api_request(response.urljoin(next_url), page)

    def first_requests(self) -> Iterator[scrapy.Request]:
        yield self.api_request(self.start_url(), 1)

    def start_url(self) -> str:
        return self.url

    async def start(self) -> Any:
        try:
            for request in self.first_requests():
                yield request
        except MissingCredential as error:
            self.fail(str(error))

    def fail(self, message: str, url: str | None = None) -> None:
        """Record why the source could not be read (the run fails with this line when no page was read)."""
        self.stat("fetch_errors")
        self.crawler.stats.set_value("repwatch/last_error", f"{message} at {url}" if url else message)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[ReviewItem | scrapy.Request]:
        from spiders.blocked import detect_block

        vendor = detect_block(response.status, response.headers, response.body)
        if vendor and not vendor.startswith("http-"):
            return self._parse_page(response)  # a bot wall: named as blocked
        if response.status in (429, 503):
            return self._rate_limited(response)
        if response.status in (401, 403):
            self.fail(f"authentication failed (HTTP {response.status}): {self.auth_hint()}", response.url)
            return iter(())
        self._pace(response)
        return self._parse_page(response)

    def _rate_limited(self, response: Response) -> Iterator[scrapy.Request]:
        tries = response.meta.get("rate_limit_tries", 0)
        waited = parse_retry_after(response.headers.get(b"Retry-After"))
        seconds = waited if waited is not None else BACKOFF_BASE * 2 ** tries
        if tries >= RATE_LIMIT_TRIES or seconds > RETRY_AFTER_CAP:
            self.fail(f"rate-limited (HTTP {response.status}) after {tries + 1} tries, not read this run", response.url)
            return
        self.stat("api/rate_limited")
        HOSTS.hold(_host(response.url), seconds)
        assert response.request is not None  # a crawled answer always has its request
        yield response.request.replace(meta={**response.meta, "rate_limit_tries": tries + 1}, dont_filter=True)

    def _pace(self, response: Response) -> None:
        """Hold the API's host as its rate-limit headers ask: the remaining requests spread over the time left."""
        now = time.time()
        remaining = _header(response, "X-Ratelimit-Remaining", "RateLimit-Remaining")
        reset = _header(response, "X-Ratelimit-Reset", "RateLimit-Reset")
        seconds = self.min_interval  # without headers: the API's published limit
        if remaining is not None and reset is not None:
            try:
                left: float | None = float(remaining)
            except ValueError:
                left = None
            until_reset = _reset_seconds(reset, now)
            if left is not None and until_reset is not None:
                seconds = until_reset if left < 1 else until_reset / left
        if seconds > 0:
            seconds = min(seconds, RETRY_AFTER_CAP)
            self.crawler.stats.max_value("api/paced_seconds", round(seconds, 3))
            HOSTS.hold(_host(response.url), seconds)


def json_answer(response: Response) -> Any:
    """The JSON an API answered, or None when the body is not JSON (an HTML error page)."""
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError):
        return None


def epoch(value: Any) -> datetime | None:
    """Seconds since 1970 (int or float) → UTC datetime, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


class BearerTokenSpider(ApiSpider):
    """An API kind whose requests carry `Authorization: Bearer` when `options.access_token_env` names a token
    (abstract); `token_wanted_by` says who asks for one in the auth hint ("this AppView", "this instance")."""

    abstract = True
    options: BearerTokenOptions
    token_wanted_by: ClassVar[str] = "this API"

    def api_headers(self) -> dict[str, str]:
        if self.options.access_token_env is None:
            return {}
        return {"Authorization": "Bearer " + credential(self.options.access_token_env, "access_token_env")}

    def auth_hint(self) -> str:
        if self.options.access_token_env:
            return f"check the token in {self.options.access_token_env}"
        return f"{self.token_wanted_by} wants an access token (options.access_token_env)"
