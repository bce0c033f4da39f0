"""HTTP caching for review pages: always revalidate, and never let a cached copy hide a block or an outage."""
from __future__ import annotations

from scrapy import Spider
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Request, Response


class RevalidatePolicy(RFC2616Policy):
    """Conditional GET on every crawl.

    Scrapy's RFC 2616 policy (DESIGN §7) treats a page with no Cache-Control and an old Last-Modified as fresh
    for days (new reviews missed) and refetches `no-cache` pages without validators. Review pages change
    without telling caches, so a cached copy is only ever used after the site answers 304 Not Modified.
    """

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        self._set_conditional_validators(request, cachedresponse)
        return False

    def is_cached_response_valid(self, cachedresponse: Response, response: Response, request: Request) -> bool:
        # The parent serves the cached page on any 5xx; a 503 challenge must reach the block check instead.
        return response.status == 304


class RevalidatingCacheMiddleware(HttpCacheMiddleware):
    """The stock cache middleware, minus "error recovery".

    On a download error Scrapy hands the spider the cached copy (`httpcache/errorrecovery`), so an unreachable
    site looks healthy and its source is never reported failing. We let the error through.
    """

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None) -> None:
        request.meta.pop("cached_response", None)
        return None
