"""HTTP cache policy for review pages: always revalidate with validators, never let a cached copy hide a block."""
from __future__ import annotations

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
