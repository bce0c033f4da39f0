"""Offline extraction: one saved page (bytes) → normalized Review items, for `repwatch extract`."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import HtmlResponse, Response, TextResponse

from spiders.base import ReviewSpider
from spiders.blocked import detect_block
from spiders.items import ReviewItem
from spiders.pipelines.normalize import normalize_review
from spiders.registry import load_spiders

# Used when a saved page comes with no URL and names none itself: links resolve, but say where they came from.
UNKNOWN_PAGE_URL = "file:///unknown-page.html"
_FENCE_OPEN = re.compile(rb"\A\s*```[\w+.-]*[^\S\n]*(?:\n|(?=<))")
_FENCE_CLOSE = re.compile(rb"\n?```\s*\Z")
_JSON_START = re.compile(rb"\A\s*[\[{]")
_CANONICAL = re.compile(
    rb"<link\b[^>]*\brel=[\"']?canonical[\"']?[^>]*\bhref=[\"']([^\"'>\s]+)"
    rb"|<meta\b[^>]*\bproperty=[\"']og:url[\"'][^>]*\bcontent=[\"']([^\"'>\s]+)",
    re.I,
)


class Blocked(Exception):
    """The page is a bot-protection challenge, not content; `vendor` names who sent it."""

    def __init__(self, vendor: str) -> None:
        super().__init__(f"blocked: {vendor}")
        self.vendor = vendor


def extract_reviews(
    body: bytes, url: str, spider: str = "auto", status: int = 200, headers: Any = None
) -> list[ReviewItem]:
    """The reviews on one saved page, normalized, in page order.

    Raises `Blocked` for a challenge page and `ValueError` when no spider fits (`spider="auto"`) or the named one
    does not exist. Problems within single reviews are counted on the spider, not raised.
    """
    body = strip_fences(body)
    vendor = detect_block(status, headers, body)
    if vendor:
        raise Blocked(vendor)
    url = page_url(url, body)
    name = choose_spider(url, body) if spider == "auto" else spider
    spider_instance = spider_for(name)(url=url)
    response = build_response(body, url, status, headers)
    reviews = []
    for review in spider_instance.parse_reviews(response):
        review = normalize_review(review)
        review.source = spider_instance.source
        reviews.append(review)
    return reviews


def choose_spider(url: str, body: bytes | str) -> str:
    """The spider for a page: by host first (`hosts` of each spider), then by content (a spider's `sniff`)."""
    spiders = load_spiders()
    host = (urlsplit(url).hostname or "").lower() if url else ""
    if host:
        for name, spider_class in spiders.items():
            if any(host == h or host.endswith("." + h) for h in spider_class.hosts):
                return name
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    response = build_response(strip_fences(body), url or UNKNOWN_PAGE_URL)
    for name, spider_class in spiders.items():
        sniff = getattr(spider_class, "sniff", None)
        if sniff is not None and sniff(response):
            return name
    raise ValueError(
        f"no spider recognises {url or 'this page'}: it has no known host and no review data we can read; "
        f"pass --spider NAME (one of: {', '.join(spiders)})"
    )


def strip_fences(body: bytes) -> bytes:
    """Remove a Markdown code fence around a saved page (```html ... ```), as pages pasted into notes arrive."""
    opened = _FENCE_OPEN.match(body)
    if not opened:
        return body
    return _FENCE_CLOSE.sub(b"", body[opened.end():])


def page_url(url: str, body: bytes) -> str:
    """The URL to resolve links against: the given one, else the page's canonical URL when it is a file."""
    if url and "://" not in url and not url.startswith("/"):
        url = "https://" + url  # `--url www.example.com/reviews`
    if url and not url.startswith("file:"):
        return url
    match = _CANONICAL.search(body[:256 * 1024])
    if match:
        found = (match.group(1) or match.group(2)).decode("latin-1")
        if found.startswith(("http://", "https://")):
            return found.replace("&amp;", "&")
    return url or UNKNOWN_PAGE_URL


def build_response(body: bytes, url: str, status: int = 200, headers: Any = None) -> Response:
    """An HtmlResponse for markup, a TextResponse for JSON; the charset comes from headers, BOM or meta."""
    response_class = TextResponse if _JSON_START.match(body) else HtmlResponse
    return response_class(url=url, body=body, status=status, headers=_plain_headers(headers))


def _plain_headers(headers: Any) -> dict[str, Any] | dict[bytes, Any] | None:
    """A plain dict of the given headers: str keys from a dict, bytes keys from Scrapy `Headers`."""
    if not headers:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    return {k: v for k, v in items}


def spider_for(name: str) -> type[ReviewSpider]:
    """The spider class registered under `name` (ValueError naming the known ones if there is none)."""
    spiders = load_spiders()
    if name not in spiders:
        raise ValueError(f"unknown spider {name!r}; known: {', '.join(spiders)} (or 'auto')")
    return spiders[name]
