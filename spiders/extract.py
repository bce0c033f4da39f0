"""`repwatch extract`: one page (a saved file, or a URL fetched within the crawl's limits) → normalized Review items."""
from __future__ import annotations

import asyncio
import difflib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from scrapy.http import HtmlResponse, Response, TextResponse

from spiders.base import ReviewSpider
from spiders.blocked import detect_block
from spiders.items import ReviewItem
from spiders.pipelines.normalize import normalize_review
from spiders.registry import load_spiders
from spiders.settings import DOWNLOAD_MAXSIZE, DOWNLOAD_TIMEOUT, REDIRECT_MAX_TIMES

# Used when a saved page comes with no URL and names none itself: links resolve, but say where they came from.
UNKNOWN_PAGE_URL = "file:///unknown-page.html"
_FENCE_OPEN = re.compile(rb"\A\s*```[\w+.-]*[^\S\n]*(?:\n|(?=<))")
_FENCE_CLOSE = re.compile(rb"\n?```\s*\Z")
_JSON_START = re.compile(rb"\A\s*[\[{]")
# The page's own URL as it names it, read by libxml2 (a regex over the raw markup was cubic on a 20 KB page of
# unclosed <link rel=canonical tags: 56 s).
_CANONICAL = etree.XPath(
    "//link[contains(concat(' ', translate(normalize-space(@rel), 'CANONIL', 'canonil'), ' '), ' canonical ')]/@href"
    " | //meta[translate(@property, 'OGURL', 'ogurl') = 'og:url']/@content"
)
_CANONICAL_SCAN = 256 * 1024  # the head is near the top
USER_AGENT = "repwatch-extract/0.1"


class Blocked(Exception):
    """The page is a bot-protection challenge, not content; `vendor` names who sent it."""

    def __init__(self, vendor: str) -> None:
        super().__init__(f"blocked: {vendor}")
        self.vendor = vendor


class PageError(Exception):
    """A page that cannot be read, or not within the crawl's limits (DOWNLOAD_TIMEOUT in all, DOWNLOAD_MAXSIZE on the
    wire and inflated): the message is the one line `repwatch extract` prints."""


@dataclass(frozen=True)
class Page:
    """A page to extract from: its bytes, the URL links resolve against, and how it was answered."""

    body: bytes
    url: str
    status: int = 200
    headers: dict[str, str] | None = None


def load_page(target: str, url: str | None = None) -> Page:
    """The page at `target`, an http(s) URL (fetched) or a saved file (`url`: where it was saved from)."""
    if target.startswith(("http://", "https://")):
        return fetch_page(target)
    path = Path(target)
    return Page(read_saved_page(path, name=target), url or path.resolve().as_uri())


def read_saved_page(path: Path, *, name: str | None = None, maxsize: int | None = None) -> bytes:
    """A saved page's bytes; a file over `maxsize` (DOWNLOAD_MAXSIZE; or endless, as /dev/zero) is refused after
    reading that much."""
    name = name or str(path)
    maxsize = DOWNLOAD_MAXSIZE if maxsize is None else maxsize
    try:
        with path.open("rb") as file:
            body = file.read(maxsize + 1)
    except OSError as exc:
        raise PageError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(body) > maxsize:
        raise PageError(f"cannot read {name}: over the {_mib(maxsize)} limit of a page (DOWNLOAD_MAXSIZE)")
    return body


def fetch_page(url: str, *, timeout: float | None = None, maxsize: int | None = None) -> Page:
    """GET `url` as a crawl would bound it: `timeout` seconds for the whole answer (DOWNLOAD_TIMEOUT; httpx's own
    timeouts are per read, and a server sending a byte a second never trips them), `maxsize` bytes on the wire and
    inflated (DOWNLOAD_MAXSIZE)."""
    import httpx

    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    maxsize = DOWNLOAD_MAXSIZE if maxsize is None else maxsize
    try:
        return asyncio.run(asyncio.wait_for(_fetch(url, timeout, maxsize), timeout))
    except TimeoutError:
        raise PageError(f"cannot fetch {url}: no whole answer within {timeout:g} s (DOWNLOAD_TIMEOUT)") from None
    except httpx.HTTPError as exc:
        raise PageError(f"cannot fetch {url}: {exc}") from None


async def _fetch(url: str, timeout: float, maxsize: int) -> Page:
    import httpx

    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    async with httpx.AsyncClient(
        follow_redirects=True, max_redirects=REDIRECT_MAX_TIMES, timeout=timeout, headers=headers
    ) as client, client.stream("GET", url) as response:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > maxsize:
            raise PageError(f"cannot fetch {url}: {int(length):,} bytes, over the {_mib(maxsize)} download limit"
                            " (DOWNLOAD_MAXSIZE)")
        inflater = _Inflater(response.headers.get("Content-Encoding", ""), maxsize, url)
        async for chunk in response.aiter_raw(64 * 1024):
            inflater.feed(chunk)
        return Page(inflater.body(), str(response.url), response.status_code, dict(response.headers))


class _Inflater:
    """A response body as it arrives, inflated (gzip or deflate) 64 KiB at a time against the limit, as the crawl's
    BoundedDecompressionMiddleware does: a compression bomb stops at the limit, not when memory runs out."""

    def __init__(self, encoding: str, limit: int, url: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip().lower() not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise PageError(f"cannot fetch {url}: Content-Encoding {encoding!r} is not gzip or deflate")
        # wbits 47: a zlib or a gzip header, whichever the stream has (servers label them loosely).
        self.decompressor = zlib.decompressobj(47) if codings else None
        self.limit, self.url = limit, url
        self.received = self.size = 0
        self.parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.limit:
            raise PageError(f"cannot fetch {self.url}: the page grew past the {_mib(self.limit)} download limit"
                            " (DOWNLOAD_MAXSIZE) while downloading")
        decompressor = self.decompressor
        self._add(self._inflate(lambda room: decompressor.decompress(chunk, room)) if decompressor else chunk)

    def body(self) -> bytes:
        if self.decompressor is not None:
            self._add(self._inflate(self.decompressor.flush))
        return b"".join(self.parts)

    def _inflate(self, step: Callable[[int], bytes]) -> bytes:
        """`step(room)` inflates at most `room` bytes: one byte past the limit is enough to know it is a bomb."""
        try:
            return step(self.limit - self.size + 1)
        except zlib.error as exc:
            raise PageError(f"cannot fetch {self.url}: its compressed body is corrupt ({exc})") from None

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise PageError(f"cannot fetch {self.url}: compression bomb, {self.received:,} bytes inflate past the"
                            f" {_mib(self.limit)} download limit (DOWNLOAD_MAXSIZE); not read")
        self.parts.append(data)


def _mib(size: int) -> str:
    return f"{size / 2**20:.4g} MiB"


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
    return _canonical_url(body) or url or UNKNOWN_PAGE_URL


def _canonical_url(body: bytes) -> str | None:
    """The first http(s) URL in the page's <link rel=canonical> or og:url, if it has one."""
    try:
        root = etree.fromstring(body[:_CANONICAL_SCAN], etree.HTMLParser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None:
        return None
    for found in _CANONICAL(root):
        found = str(found).strip()
        if found.startswith(("http://", "https://")):
            return found
    return None


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
        close = difflib.get_close_matches(name, spiders, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown spider {name!r}{hint}; known: {', '.join(spiders)} (or 'auto')")
    return spiders[name]
