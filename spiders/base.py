"""ReviewSpider: the base every site spider extends, and the registry of spiders by name."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import scrapy
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scrapy.http import Response
from w3lib.url import add_or_replace_parameters, canonicalize_url

from models.vocab import plugin_key
from spiders.items import ReviewItem

# What reading one review may raise on a page that is not what we expect: counted, never fatal to the page.
REVIEW_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)

# A DNS host name, as `allowed_hosts` lists them: labels of letters, digits and inner hyphens, joined by dots.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")

def with_query(url: str, wanted: dict[str, str]) -> str:
    """`url` with these query parameters set (others kept): for `normalize_url` hooks."""
    return str(add_or_replace_parameters(url, wanted))


# The crawl log (data_dir/logs/crawl.log, rotated; spiders/runner.py sets it up): one INFO line per page.
log = logging.getLogger("repwatch.crawl")


def json_document(response: Response) -> Any:
    """The JSON of an answer that is text and not HTML (an API's, a saved answer), or None when it is none."""
    from scrapy.http import HtmlResponse, TextResponse

    if not isinstance(response, TextResponse) or isinstance(response, HtmlResponse):
        return None
    try:
        return json.loads(response.text)
    except (ValueError, RecursionError):
        return None


def emit_progress(event: dict[str, Any]) -> None:
    """One line of JSON on stdout for the `repwatch crawl` that waits on this child (its progress display)."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


# name -> spider class; filled by ReviewSpider.__init_subclass__
SPIDERS: dict[str, type[ReviewSpider]] = {}


class SourceOptions(BaseModel):
    """The options every kind takes (a kind with options of its own extends this); unknown ones are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_hosts: tuple[str, ...] = Field(
        (), description="other hosts this source's pages may lead to (each with its subdomains); public addresses only"
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _bare_hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not _HOST_NAME.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name (no scheme, port or path: reviews.example.com)")
        return tuple(host.lower() for host in hosts)


class ReviewSpider(scrapy.Spider):
    """Base class: subclasses implement `parse_reviews` and `next_page`; paging and block checks live here.

    A subclass's docstring is the help `repwatch sources list` prints. Set `abstract = True` on a platform
    base class that should not be registered itself.
    """

    site_name: ClassVar[str] = ""  # how people call the site ("Trustpilot"); defaults to the name
    # True when one source's posts come from many sites (a feed of mentions): each post is answered on its own
    # link's site, so an alert names that host instead of site_name.
    many_sites: ClassVar[bool] = False
    abstract: ClassVar[bool] = True
    # A search for mentions or a feed: reading no review is a quiet day, not a kind that does not fit (`empty`).
    may_be_empty: ClassVar[bool] = False
    # Hosts this spider is made for; `--spider auto` tries them before sniffing content.
    hosts: ClassVar[tuple[str, ...]] = ()
    # Per-source options (config.yaml `options:`), validated when the config loads.
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    # The real page (saved by someone else) this spider was checked on, in a few words; None: documented
    # structure only. `repwatch sources list` shows it.
    verified_on: ClassVar[str | None] = None

    # Set from the crawl plan when the runner crawls (scrapy.Spider keeps unknown keyword arguments as attributes);
    # an offline extract has neither, and stores nothing.
    source_id: int
    baseline: bool  # the source's first crawl: its reviews are a silent baseline, never alerted on
    progress: bool = False  # set by the runner: report pages and reviews read as they come (emit_progress)

    @classmethod
    def fits_host(cls, host: str) -> bool:
        """Is `host` one of this spider's sites (or a subdomain of one)? Generic spiders (no `hosts`) fit none."""
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in cls.hosts)

    @classmethod
    def normalize_url(cls, url: str) -> str:
        """The URL to crawl for `url`: a site whose default order or language filter would hide new reviews gets
        the query that lists every review newest first (the crawl stops paging at known reviews). Default: as given."""
        return url

    @classmethod
    def crawl_url(cls, url: str) -> str:
        """The URL a crawl asks for: `normalize_url` on the spider's own sites; any other host (a copy of a page, a
        test server) has none of the site's defaults to undo, and is asked as given."""
        host = urlsplit(url).hostname or ""
        return cls.normalize_url(url) if cls.fits_host(host) else url

    # Blocked answers must reach `parse` (after RetryMiddleware has had its tries) so they can be named.
    handle_httpstatus_list = [403, 429, 503]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = plugin_key(SPIDERS, cls, "name", "spider")
        if name is not None:
            SPIDERS[name] = cls

    def __init__(
        self,
        url: str = "",
        source: str = "",
        known_ids: Iterable[str] = (),
        max_pages: int = 10,
        options: dict[str, Any] | None = None,
        render: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.source = source or self.name
        self.known_ids = frozenset(known_ids)
        self.max_pages = max_pages
        self.options = self.Options.model_validate(options or {})
        self.render = render  # fetch pages through headless Chromium (config `render: true`, spiders/render.py)
        self.problems: Counter[str] = Counter()  # used when there is no crawler (offline extract)
        self.paged: set[str] = set()  # canonical URLs of the pages read this crawl: a "next" back to one is a cycle
        self.pages_read = 0
        self.reviews_read = 0

    # --- what a site spider implements -------------------------------------------------------------

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        """Yield the reviews on this page (not those of 'related' or 'relevant' blocks). Pure: no requests."""
        raise NotImplementedError

    def next_page(self, response: Response) -> str | None:
        """URL of the next (older) page of reviews, or None on the last page."""
        return None

    # --- shared machinery ----------------------------------------------------------------------------

    def problem(self, key: str, count: int = 1) -> None:
        """Count a data-quality problem (DESIGN §5.7: counted, not raised)."""
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value(f"repwatch/problem/{key}", count)
        else:
            self.problems[key] += count

    def read_each(self, nodes: Iterable[Any], read: Callable[[Any], ReviewItem | None]) -> Iterator[ReviewItem]:
        """`read` every review node: one that fails is counted (`<spider>/unreadable_review`), a repeated id dropped."""
        seen: set[str] = set()
        for node in nodes:
            try:
                review = read(node)
            except REVIEW_ERRORS:
                self.problem(f"{self.name}/unreadable_review")
                continue
            if review is not None and review.external_id not in seen:
                seen.add(review.external_id)
                yield review

    def checked_rating(self, value: Any, *, scale: float = 5) -> float | None:
        """A site's rating mapped to 1-5, or None with `<spider>/missing_rating` or `<spider>/bad_rating` counted."""
        if value is None or (isinstance(value, str) and not value.strip()):
            self.problem(f"{self.name}/missing_rating")
            return None
        try:
            rating = float(value) * 5 / scale
        except (TypeError, ValueError, ZeroDivisionError):
            rating = math.nan
        if not 1 <= rating <= 5:  # NaN fails this too
            self.problem(f"{self.name}/bad_rating")
            return None
        return rating

    def stat(self, key: str, count: int = 1) -> None:
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value(f"repwatch/{key}", count)

    def record_evidence(self, response: Response) -> None:
        """Keep what a blocked or empty page looked like (URL, status, body hash) for the CrawlRun (first one wins)."""
        stats = self.crawler.stats
        if stats.get_value("repwatch/evidence_url") is None:
            stats.set_value("repwatch/evidence_url", response.url)
            stats.set_value("repwatch/evidence_status", response.status)
            stats.set_value("repwatch/evidence_sha256", hashlib.sha256(response.body).hexdigest())

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.url, callback=self.parse, errback=self.fetch_failed, meta=self.page_meta(1))

    def page_meta(self, page: int) -> dict[str, Any]:
        """Meta of the request for page `page`; playwright is imported only when this source renders."""
        if not self.render:
            return {"page": page}
        from spiders.render import render_meta

        return {"page": page, **render_meta()}

    def fetch_failed(self, failure: Any) -> None:
        """Remember why a page could not be fetched; the run's outcome is decided from these stats."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else self.url
        response = getattr(failure.value, "response", None)
        reason = f"HTTP {response.status}" if response is not None else failure.getErrorMessage() or failure.type.__name__
        # Twisted's ResponseFailed (under Scrapy's DownloadFailedError) prints as a list of Failure reprs: name them.
        if reasons := getattr(failure.value.__cause__, "reasons", None):
            reason = "; ".join(f"{r.type.__name__}: {r.getErrorMessage()}" for r in reasons)
        self.stat("fetch_errors")
        self.crawler.stats.set_value("repwatch/last_error", f"{reason} at {url}")
        log.warning("source %s: %s at %s", self.source, reason, url)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[ReviewItem | scrapy.Request]:
        # Not a generator function itself: for generator callbacks Scrapy 2.19 re-reads and re-parses the
        # callback's source on every response (its cache is keyed on a bound method that never lives long enough
        # to hit), ~0.6 ms a page measured here.
        return self._parse_page(response)

    def _parse_page(self, response: Response) -> Iterator[ReviewItem | scrapy.Request]:
        from spiders.blocked import detect_block
        from spiders.hostile import page_hazards, visited_urls

        vendor = detect_block(response.status, response.headers, response.body)
        page = response.meta.get("page", 1)
        if vendor:
            self.crawler.stats.set_value("repwatch/blocked", vendor)
            self.record_evidence(response)
            log.warning("source %s page %d: HTTP %d, blocked by %s: %s", self.source, page, response.status, vendor,
                        response.url)
            return
        self.stat("pages")
        self.paged.update(visited_urls(response))
        reviews = list(self.parse_reviews(response))
        for hazard in page_hazards(response):  # read anyway, as far as the parser allows; counted
            self.stat(hazard)
        if not reviews:
            self.stat("empty_pages")
            self.record_evidence(response)
        self.pages_read += 1
        self.reviews_read += len(reviews)
        log.info("source %s page %d: HTTP %d, %d reviews, %.2f s: %s", self.source, page, response.status, len(reviews),
                 response.meta.get("download_latency", 0.0), response.url)
        if self.progress:
            emit_progress({"source": self.source, "pages": self.pages_read, "reviews": self.reviews_read})
        for review in reviews:
            review.source = self.source
            yield review
        # Incremental crawl: pages are newest first, so a page of known reviews means the rest is known too (a page
        # in another order, meta `unordered`, proves nothing).
        if reviews and all(r.external_id in self.known_ids for r in reviews) and not response.meta.get("unordered"):
            self.stat("stopped_at_known")
            return
        next_url = self.next_page(response)
        if next_url and canonicalize_url(response.urljoin(next_url)) in self.paged:
            self.stat("pagination_cycle")  # a "next" back to a page read this crawl: the rest would repeat forever
            return
        if next_url and page >= self.max_pages:
            self.stat("page_cap_reached")
            return
        if next_url:
            yield self.follow_page(response, next_url, page + 1)

    def follow_page(self, response: Response, next_url: str, page: int) -> scrapy.Request:
        """The request for page `page` at `next_url` (an API kind may POST, or add its headers)."""
        return response.follow(next_url, callback=self.parse, errback=self.fetch_failed, meta=self.page_meta(page))
