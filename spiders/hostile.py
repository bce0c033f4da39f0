"""Hostile answers bounded, named and counted: oversized pages, compression bombs, redirect loops, unreadable markup."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lxml import etree
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.redirect import BaseRedirectMiddleware, MetaRefreshMiddleware, RedirectMiddleware
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import TextResponse
from w3lib.url import canonicalize_url

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

MiB = 1024 * 1024
_ANNOUNCED_SIZE = re.compile(r"Expected to receive (\d+) bytes")


class RefusedPage(IgnoreRequest):
    """A page we will not read. Its message is the one-line reason the source's outcome shows (see
    ReviewSpider.fetch_failed); IgnoreRequest, so RetryMiddleware leaves it alone and Scrapy logs no traceback."""


def _mib(size: int) -> str:
    return f"{size / MiB:.4g} MiB"


class PageSizeMiddleware:
    """Counts pages over DOWNLOAD_WARNSIZE (`repwatch/large_pages`, still read) and names a download Scrapy cancelled
    over DOWNLOAD_MAXSIZE (`repwatch/oversize_pages`).

    Sits between HttpCompressionMiddleware and RetryMiddleware: it sees bodies after decompression, and it names a
    cancelled download before RetryMiddleware could consider it.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats
        self.warnsize = crawler.settings.getint("DOWNLOAD_WARNSIZE")
        self.maxsize = crawler.settings.getint("DOWNLOAD_MAXSIZE")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageSizeMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        warnsize = request.meta.get("download_warnsize", self.warnsize)
        if warnsize and len(response.body) > warnsize:
            self.stats.inc_value("repwatch/large_pages")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        # Scrapy 2.19's HTTP/1.1 handler cancels a download for one reason of its own: the body is over the max size,
        # either announced in Content-Length (the message says so) or counted as it streamed (an empty message).
        # Anything else (a timeout, a refused connection) arrives as another exception and passes on unchanged.
        if not isinstance(exception, DownloadCancelledError):
            return None
        message = str(exception)
        if message and "max size" not in message:
            return None
        self.stats.inc_value("repwatch/oversize_pages")
        limit = f"the {_mib(request.meta.get('download_maxsize', self.maxsize))} download limit (DOWNLOAD_MAXSIZE)"
        announced = _ANNOUNCED_SIZE.match(message)
        if announced:
            reason = f"page of {int(announced.group(1)):,} bytes is over {limit}; not downloaded"
        else:
            reason = f"page grew past {limit} while downloading; download stopped"
        raise RefusedPage(reason) from exception


class BoundedDecompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's decompression, which stops inflating at DOWNLOAD_MAXSIZE (checked in 2.19: gzip, deflate, br and zstd
    are inflated 64 KiB at a time against the limit), with the refusal named and counted
    (`repwatch/decompression_bombs`) instead of a long log line."""

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None  # Scrapy 2.19 passes no spider
    ) -> Request | Response:
        try:
            return super().process_response(request, response)
        except IgnoreRequest as exc:
            inflated = getattr(exc.__cause__, "decompressed_size", None)
            if inflated is None:
                raise
            if self.stats is not None:  # None only without a crawler, as in Scrapy's own use of it
                self.stats.inc_value("repwatch/decompression_bombs")
            limit = getattr(exc.__cause__, "max_size", 0)
            encoding = b",".join(response.headers.getlist("Content-Encoding")).decode("latin-1")
            raise RefusedPage(
                f"compression bomb: {len(response.body):,} bytes of {encoding} inflate past the {_mib(limit)} download"
                " limit (DOWNLOAD_MAXSIZE); not read"
            ) from exc


class _LoopAwareRedirects(BaseRedirectMiddleware):
    """A redirect back to a URL already in this request's redirect chain ends it at once (`repwatch/redirect_loops`),
    and a chain over REDIRECT_MAX_TIMES is named (`repwatch/redirect_cap_reached`).

    Without this a loop A → B → A ends silently: the second A is a duplicate request, dropped by Scrapy's dupefilter
    with no error, and the source would fail with "no page was fetched" and no reason.
    """

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", ()), request.url]
        if canonicalize_url(redirected.url) in {canonicalize_url(url) for url in chain}:
            self.crawler.stats.inc_value("repwatch/redirect_loops")
            raise RefusedPage(f"redirect loop: {len(chain)} redirects lead back to {redirected.url}")
        try:
            return super()._redirect(redirected, request, reason)
        except IgnoreRequest as exc:
            self.crawler.stats.inc_value("repwatch/redirect_cap_reached")
            raise RefusedPage(
                f"more than {self.max_redirect_times} redirects in a row (REDIRECT_MAX_TIMES) from {chain[0]}"
            ) from exc


class LoopAwareRedirectMiddleware(_LoopAwareRedirects, RedirectMiddleware):
    """RedirectMiddleware (3xx) with redirect loops and over-long chains named and counted."""


class LoopAwareMetaRefreshMiddleware(_LoopAwareRedirects, MetaRefreshMiddleware):
    """MetaRefreshMiddleware (<meta http-equiv=refresh>) with redirect loops and over-long chains named and counted."""


def page_hazards(response: Response) -> list[str]:
    """Stat keys (under `repwatch/`) for what made a page hard to read; it was read anyway, as far as possible.

    Cheap on ordinary pages: it looks only at text already decoded and markup already parsed.
    """
    if not isinstance(response, TextResponse):
        return []
    hazards = []
    # Bytes invalid in the declared encoding are decoded as U+FFFD by Scrapy and parsel; a strict decode tells them
    # from a page that really contains U+FFFD, and is only tried when one is there.
    if "\ufffd" in response.text:
        try:
            response.body.decode(response.encoding)
        except (UnicodeDecodeError, LookupError):
            hazards.append("encoding_errors")
    # libxml2 stops at a resource limit (nesting deeper than 2048 elements, even with parsel's huge_tree) and keeps
    # the tree it had: what comes after the deep part is missing. Parsed markup only (no parse forced here).
    selector = getattr(response, "_cached_selector", None)
    root = getattr(selector, "root", None)
    if isinstance(root, etree._Element):
        parser = root.getroottree().parser
        if parser is not None and any(error.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for error in parser.error_log):
            hazards.append("truncated_html")
    return hazards


def visited_urls(response: Response) -> list[str]:
    """Canonical URLs that led to this page: the one asked for, each redirect, the one answered (for cycle checks)."""
    return [canonicalize_url(url) for url in (*response.meta.get("redirect_urls", ()), response.url)]
