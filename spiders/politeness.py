"""Politeness Scrapy 2.19 leaves out (DESIGN §7): robots.txt before every request, Crawl-delay, Retry-After,
backoff on 429/503 without Retry-After, and each source's own download slot."""
from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.core.downloader import Downloader, Slot
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from scrapy.robotstxt import RobotParser

logger = logging.getLogger(__name__)

# Longest Retry-After waited out inside a run; a site asking for more fails the source for this run (the next
# scheduled run tries again) instead of holding the whole crawl child, which has one timeout for every source.
RETRY_AFTER_CAP = 600.0
RETRY_AFTER_STATUSES = frozenset({429, 503})
# A 429 or 503 that does not say how long to wait: the retry waits BACKOFF_BASE · 2^(retries so far) seconds, at most
# BACKOFF_MAX (stock Scrapy retried at once, which is what makes a rate limiter ban a client). Settings of these names
# override them.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0


def parse_retry_after(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP-date), or None when absent or unreadable.

    A date in the past means "now" (0). Junk, negative numbers and dates without a zone are unreadable (None), and
    the caller falls back to its default retry.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if re.fullmatch(r"\d+", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def robots_token(user_agent: str, bot_name: str) -> str:
    """The product token robots.txt groups are matched against: `repwatch` in `repwatch/0.1 (+https://...)`.

    A browser-like User-Agent ("Mozilla/5.0 ...") names no crawler, so the bot's own name is used.
    """
    match = re.match(r"\s*([A-Za-z0-9_.-]+)", user_agent or "")
    token = match.group(1) if match else ""
    return bot_name if not token or token.lower() == "mozilla" else token


class HostGate:
    """Process-wide pacing per host (scheme://host:port): when it may be sent its next request.

    One gate for the whole crawl child, because the runner gives every source its own crawler and every crawler its
    own download slots: three sources on one host would each keep the delay on their own and together break it.
    """

    def __init__(self) -> None:
        self._last_sent: dict[str, float] = {}
        self._held_until: dict[str, float] = {}
        self.crawl_delays: dict[str, float] = {}  # from robots.txt, for crawlers that obey it

    def hold(self, host: str, seconds: float) -> None:
        """Send nothing to `host` for `seconds` (a Retry-After), whichever crawler asks."""
        self._held_until[host] = max(self._held_until.get(host, 0.0), time.monotonic() + seconds)

    async def turn(self, host: str, interval: float) -> float:
        """Wait until `host` may be sent a request `interval` s after the last one; returns the seconds waited."""
        waited = 0.0
        while True:
            now = time.monotonic()
            start = max(now, self._last_sent.get(host, -interval) + interval, self._held_until.get(host, 0.0))
            if start <= now:
                # Checked and claimed with no await in between: one event loop, so no other request slips in.
                self._last_sent[host] = now
                return waited
            # Sleep, then look again: a Retry-After hold may have been added meanwhile.
            await asyncio.sleep(start - now)
            waited += start - now


HOSTS = HostGate()


def _host(request: Request) -> str:
    url = urlparse_cached(request)
    return f"{url.scheme}://{url.netloc}"


class PoliteDownloader(Downloader):
    """Scrapy's downloader, with each send waiting its turn at the process-wide `HostGate`, and one download slot per
    source.

    The gate sits at the moment of sending (after the slot has released the request), not in a middleware: requests
    pass middlewares long before the slot sends them, so spacing taken there would not be the spacing on the wire.

    Scrapy keys its slots (download delay, concurrency, AutoThrottle) by host. Here they are keyed by the source: a
    source's `download_delay` and `concurrency` hold for all its requests whichever hosts they go to (an API's token
    host and its data host), and are its own, not another source's. A request whose meta names a `download_slot`
    keeps it. robots.txt's Crawl-delay and a Retry-After stay per host, across sources: the site asked for them.
    """

    def get_slot_key(self, request: Request) -> str:
        source = getattr(self.crawler.spider, "source", None)
        if request.meta.get(self.DOWNLOAD_SLOT) is None and source:
            return f"source:{source}"
        return super().get_slot_key(request)

    async def _download(self, slot: Slot, request: Request) -> Response:
        host = _host(request)
        obeys = self.settings.getbool("ROBOTSTXT_OBEY") and not request.meta.get("dont_obey_robotstxt")
        interval = HOSTS.crawl_delays.get(host, 0.0) if obeys else 0.0
        waited = await HOSTS.turn(host, interval)
        if waited:
            # Seconds, a float: StatsCollector.inc_value takes int counts.
            stats, key = self.crawler.stats, "politeness/waited_seconds"
            stats.set_value(key, stats.get_value(key, 0) + round(waited, 3))
        return await super()._download(slot, request)


# netloc -> parsed robots.txt (None: none to obey), or the Deferred of its download in progress
_ROBOTS: dict[str, Any] = {}


class RobotsFirstMiddleware(RobotsTxtMiddleware):
    """RobotsTxtMiddleware where every request to a host waits for its robots.txt, and Crawl-delay is recorded.

    Measured on Scrapy 2.19 (DESIGN §7): the requests that arrive while robots.txt downloads all await one Deferred
    through `asFuture`, which hands its result to the first of them and None ("no robots.txt") to the rest, so a
    burst of start URLs fetched disallowed pages. Here each waiter gets its own Deferred.
    """

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        # Shared by the crawl child's crawlers (one per source): one robots.txt fetch per host and crawl, not one per
        # source, and sources on one host all wait for it.
        self._parsers = _ROBOTS
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)

    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)  # first request to the host, or robots.txt already known
        mine: Deferred[RobotParser | None] = Deferred()

        def share(result: Any) -> Any:
            mine.callback(result)
            return result  # passed on unchanged to the next waiter

        pending.addBoth(share)
        return await maybe_deferred_to_future(mine)

    def _robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        token = self._robotstxt_useragent or self._default_useragent
        delay = robotparser.crawl_delay(token)
        if delay:
            host = _host(request)
            HOSTS.crawl_delays[host] = max(HOSTS.crawl_delays.get(host, 0.0), float(delay))
            self._stats.set_value("robotstxt/crawl_delay", float(delay))


def backoff_seconds(retries_so_far: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """How long the next retry of a 429/503 that named no wait waits: base, 2·base, 4·base … at most `cap`."""
    return min(cap, base * 2 ** max(0, retries_so_far))


class RetryAfterMiddleware(RetryMiddleware):
    """RetryMiddleware that waits as long as a 429 or 503 says in Retry-After before the retry (Scrapy ignores it),
    and backs off exponentially when it says nothing (Scrapy retried at once).

    The wait holds the whole host at the `HostGate` (the site asked us to back off, not just this URL) without
    blocking the reactor. When the retries are spent the answer goes on to the spider, whose block check names it.
    """

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None  # Scrapy 2.19 passes no spider
    ) -> Request | Response:
        if (
            response.status not in RETRY_AFTER_STATUSES
            or response.status not in self.retry_http_codes
            or request.meta.get("dont_retry", False)
        ):
            return super().process_response(request, response)
        stats = self.crawler.stats
        if b"Retry-After" not in response.headers:
            return self._back_off(request, response)
        seconds = parse_retry_after(response.headers.get(b"Retry-After"))
        if seconds is None:
            stats.inc_value("retry_after/unreadable")
            return self._back_off(request, response)
        if seconds > RETRY_AFTER_CAP:
            return self._over_cap(request, response, seconds)
        HOSTS.hold(_host(request), seconds)
        stats.inc_value("retry_after/count")
        stats.max_value("retry_after/max_seconds", seconds)
        return super().process_response(request, response)

    def _back_off(self, request: Request, response: Response) -> Request | Response:
        """No wait named: hold the host for the next step of the exponential backoff, if a retry is still due."""
        retries = int(request.meta.get("retry_times", 0))
        if retries < int(request.meta.get("max_retry_times", self.max_retry_times)):
            settings = self.crawler.settings
            seconds = backoff_seconds(
                retries, settings.getfloat("REPWATCH_BACKOFF_BASE", BACKOFF_BASE),
                settings.getfloat("REPWATCH_BACKOFF_MAX", BACKOFF_MAX),
            )
            HOSTS.hold(_host(request), seconds)
            stats = self.crawler.stats
            stats.inc_value("retry_backoff/count")
            stats.max_value("retry_backoff/max_seconds", seconds)
        return super().process_response(request, response)

    def _over_cap(self, request: Request, response: Response, seconds: float) -> Response:
        from spiders.blocked import detect_block

        self.crawler.stats.inc_value("retry_after/over_cap")
        vendor = detect_block(response.status, response.headers, response.body)
        if vendor and not vendor.startswith("http-"):
            return response  # a vendor's challenge: the spider's block check names it
        message = (
            f"HTTP {response.status} asks to wait {seconds:.0f} s (Retry-After), over the {RETRY_AFTER_CAP:.0f} s"
            f" this crawl waits: not crawled this run, at {request.url}"
        )
        logger.warning(message)
        # This source asks nothing more of the site this run, and its run fails with the reason (the errback records
        # it; spiders/runner.run_outcome). The host is not held: other sources on it would stall for that long.
        self._closing = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason=message))
        raise IgnoreRequest(message)
